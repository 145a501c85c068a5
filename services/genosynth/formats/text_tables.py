"""Shared pieces of the text-format importers: reading lines, parsing numbers with precise errors,
and aligning sample IDs between genotype and phenotype files.

Every parser here reports bad input as :class:`~genosynth.errors.InputError` naming the file, the
1-based row (line number) and the column, with what was expected and what was found.
"""

from __future__ import annotations

import functools
import io
import math
import os
import unicodedata
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import fsspec
import numpy as np

from genosynth import storage
from genosynth.errors import InputError

# Tokens that mean "missing" in phenotype and genotype text files (GEMMA, PLINK, R exports), matched as
# written: "-9" (PLINK's missing phenotype) is missing, "-9.0" is a number.
MISSING_TOKENS = frozenset({"NA", "na", "NaN", "nan", "", ".", "-9"})
GENOTYPE_MISSING_TOKENS = frozenset({"NA", "na", "NaN", "nan", "."})


class SampleAlignmentWarning(UserWarning):
    """Genotype and phenotype files share only some sample IDs; the intersection is kept."""


def open_lines(path: str) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, line)`` (1-based, newline stripped) of a text file, ``.gz`` aware.

    A missing file is an :class:`InputError`.
    """
    if not storage.exists(path):
        raise InputError(path, "file not found")
    with fsspec.open(path, "rt", compression="infer", encoding="utf-8") as handle:
        try:
            for number, line in enumerate(handle, start=1):
                yield number, line.rstrip("\r\n")
        except UnicodeDecodeError as exc:
            raise InputError(path, f"not a UTF-8 text file ({exc.reason})") from exc
        except (EOFError, OSError) as exc:
            # A truncated gzip stream surfaces here.
            raise InputError(path, f"unreadable or truncated file ({exc})") from exc


def parse_numbers(
    tokens: Sequence[str],
    *,
    source: str,
    row: int,
    column_names: Sequence[str] | None = None,
    first_column: int = 1,
    missing: frozenset[str] = MISSING_TOKENS,
    low: float | None = None,
    high: float | None = None,
    what: str = "a number",
) -> np.ndarray:
    """Parse ``tokens`` into float64 with NaN for missing tokens, checking an optional ``[low, high]``.

    Parameters
    ----------
    tokens : sequence of str, length k
    source, row : where the tokens came from (for error messages).
    column_names : names of the k columns for messages; default: field numbers from ``first_column``.
    missing : tokens read as NaN, each compared as written: with the default set the token ``-9`` is
        missing while ``-9.0`` or ``-9e0`` is the number -9, in every row whatever its other tokens.
    low, high : inclusive bounds for non-missing values.

    Returns
    -------
    values : (k,) float64

    Only ASCII numbers are numbers: Python would read ``'２'`` (fullwidth) or ``'١'`` (Arabic-Indic) as
    digits; they are refused here like any other text.
    """
    if not "".join(tokens).isascii():
        j = next(j for j, token in enumerate(tokens) if not token.isascii())
        raise InputError(
            source, f"expected {what} written in ASCII digits, found {tokens[j]!r}", row=row,
            column=_column_label(column_names, j, first_column),
        )
    try:
        values = np.asarray(tokens, dtype=np.float64)
        # Missing tokens that parse as numbers (PLINK's "-9") are missing only as written: the rule is per
        # token, so "-9.0" stays the number -9 whatever else the row holds.
        numeric_missing = _numeric_missing(missing)
        if numeric_missing:
            values[np.isin(np.asarray(tokens, dtype=str), numeric_missing)] = np.nan
    except ValueError:
        values = np.empty(len(tokens), dtype=np.float64)
        for j, token in enumerate(tokens):
            if token in missing:
                values[j] = np.nan
                continue
            try:
                values[j] = float(token)
            except ValueError:
                raise InputError(
                    source, f"expected {what} or NA, found {token!r}", row=row,
                    column=_column_label(column_names, j, first_column),
                ) from None
    bad = np.zeros(values.shape, dtype=bool)
    if low is not None:
        bad |= values < low
    if high is not None:
        bad |= values > high
    bad |= np.isinf(values)
    if bad.any():
        j = int(np.flatnonzero(bad)[0])
        raise InputError(
            source, f"expected {what} in [{low}, {high}], found {tokens[j]!r}", row=row,
            column=_column_label(column_names, j, first_column),
        )
    return values


@functools.cache
def _numeric_missing(missing: frozenset[str]) -> list[str]:
    """The tokens of ``missing`` that would parse as a finite number (e.g. ``"-9"``)."""
    out = []
    for token in sorted(missing):
        try:
            if math.isfinite(float(token)):
                out.append(token)
        except ValueError:
            pass
    return out


def _column_label(names: Sequence[str] | None, j: int, first_column: int) -> str:
    if names is not None:
        return str(names[j])
    return f"field {j + first_column}"


def check_column_count(tokens: Sequence[str], expected: int, *, source: str, row: int, layout: str) -> None:
    """Raise when a row has the wrong number of fields; ``layout`` says what a row should hold."""
    if len(tokens) != expected:
        raise InputError(source, f"expected {expected} fields ({layout}), found {len(tokens)}", row=row)


# Characters an ID must not hold: controls, invisible format characters (zero-width space, joiners, BOM),
# separators, private-use and unassigned code points. Two IDs that print alike must be the same ID.
_BAD_ID_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp"})


def check_unique(ids: Sequence[str], *, source: str, what: str, rows: Sequence[int] | None = None) -> None:
    """Raise on the first repeated ID (naming both rows), or an ID holding an invisible character."""
    for j, name in enumerate(ids):
        if name.isascii() and name.isprintable():
            continue
        bad = next((c for c in name if unicodedata.category(c) in _BAD_ID_CATEGORIES), None)
        if bad is not None:
            here = rows[j] if rows is not None else j + 1
            raise InputError(source, f"{what} {name!r} holds the invisible or control character "
                             f"U+{ord(bad):04X} ({unicodedata.name(bad, 'unnamed')}); expected printable "
                             "characters only", row=here)
    seen: dict[str, int] = {}
    for j, name in enumerate(ids):
        if name in seen:
            first = rows[seen[name]] if rows is not None else seen[name] + 1
            here = rows[j] if rows is not None else j + 1
            raise InputError(source, f"duplicate {what} {name!r} (first seen on row {first})", row=here)
        seen[name] = j


@dataclass
class SampleAlignment:
    """How genotyped samples were matched to phenotyped samples.

    ``genotype_index`` and ``phenotype_index`` (same length m) select the kept samples, in genotype
    file order.
    """

    genotype_index: np.ndarray
    phenotype_index: np.ndarray
    n_genotyped: int
    n_phenotyped: int
    only_genotyped: list[str]
    only_phenotyped: list[str]

    def summary(self) -> dict[str, object]:
        return {
            "kept": len(self.genotype_index),
            "genotyped": self.n_genotyped,
            "phenotyped": self.n_phenotyped,
            "only_genotyped": len(self.only_genotyped),
            "only_phenotyped": len(self.only_phenotyped),
            "examples_only_genotyped": self.only_genotyped[:5],
            "examples_only_phenotyped": self.only_phenotyped[:5],
        }


def align_samples(
    genotype_ids: Sequence[str], phenotype_ids: Sequence[str], *, genotype_source: str, phenotype_source: str
) -> SampleAlignment:
    """Match samples by ID; keep the intersection in genotype order.

    No shared ID is an :class:`InputError`; a partial overlap emits a :class:`SampleAlignmentWarning`
    with the counts and a few example IDs on each side.
    """
    pheno_pos = {name: j for j, name in enumerate(phenotype_ids)}
    geno_set = set(genotype_ids)
    genotype_index = [i for i, name in enumerate(genotype_ids) if name in pheno_pos]
    phenotype_index = [pheno_pos[genotype_ids[i]] for i in genotype_index]
    only_geno = [name for name in genotype_ids if name not in pheno_pos]
    only_pheno = [name for name in phenotype_ids if name not in geno_set]
    alignment = SampleAlignment(
        genotype_index=np.asarray(genotype_index, dtype=np.int64),
        phenotype_index=np.asarray(phenotype_index, dtype=np.int64),
        n_genotyped=len(genotype_ids),
        n_phenotyped=len(phenotype_ids),
        only_genotyped=only_geno,
        only_phenotyped=only_pheno,
    )
    if not genotype_index:
        raise InputError(
            phenotype_source,
            f"no sample ID in common with {genotype_source} (expected overlapping IDs; found e.g. "
            f"{_examples(phenotype_ids)} here and {_examples(genotype_ids)} there)",
        )
    if only_geno or only_pheno:
        warnings.warn(
            f"{phenotype_source}: {len(genotype_index)} samples kept of {len(genotype_ids)} genotyped and "
            f"{len(phenotype_ids)} phenotyped; {len(only_geno)} genotyped only "
            f"(e.g. {_examples(only_geno)}), "
            f"{len(only_pheno)} phenotyped only (e.g. {_examples(only_pheno)})",
            SampleAlignmentWarning,
            stacklevel=2,
        )
    return alignment


def _examples(ids: Sequence[str], k: int = 3) -> str:
    shown = ", ".join(repr(str(x)) for x in list(ids)[:k])
    return shown or "none"


def local_path(path: str) -> str:
    """A local filesystem path for ``path`` (``file://`` stripped), for libraries that need one."""
    return path[len("file://"):] if path.startswith("file://") else os.fspath(path)


_CALL_TEXT = np.array(["0", "1", "2", "NA"])


def format_dosages(row: np.ndarray) -> list[str]:
    """Text of one row of dosages: ``0/1/2`` for hard calls, shortest float32 text otherwise, ``NA``.

    The float32 text reads back to the identical float32, so text exports round-trip exactly.
    """
    missing = np.isnan(row)
    rounded = np.where(missing, 3, np.rint(row))
    codes = np.clip(rounded, 0, 3).astype(np.int64)
    text = _CALL_TEXT[codes]
    fractional = np.flatnonzero(~missing & (row != rounded))
    if fractional.size == 0:
        return text.tolist()
    # Only the (few) non-integer dosages need float formatting; the rest is a table lookup.
    text = text.astype(object)
    text[fractional] = [str(v) for v in row[fractional].astype(np.float32)]
    return text.tolist()


def open_for_write(path: str) -> io.TextIOBase:
    """Open a text file for writing at a local path or fsspec URL, creating local parent folders."""
    fs, inner = storage.filesystem(path)
    parent = inner.rsplit("/", 1)[0] if "/" in inner else ""
    if parent and storage.is_local(fs):
        fs.makedirs(parent, exist_ok=True)
    return fs.open(inner, "wt", encoding="utf-8")


def stack_rows(rows: list[np.ndarray]) -> np.ndarray:
    """Stack equal-length 1-D rows into a (len(rows), k) array, freeing each row once copied.

    ``np.vstack`` would hold the rows and the result at once (twice the memory of a CFW-sized matrix).
    """
    out = np.empty((len(rows), rows[0].shape[0]), dtype=rows[0].dtype)
    for i in range(len(rows)):
        out[i] = rows[i]
        rows[i] = None  # type: ignore[call-overload]
    return out
