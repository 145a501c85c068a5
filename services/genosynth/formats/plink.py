"""PLINK 1 binary files (``.bed``/``.bim``/``.fam``) at a local prefix or any fsspec URL prefix.

- The ``.bed`` is read and written SNP block by SNP block (:mod:`genosynth.formats.bed`), so import and
  export hold one block, never the whole genotype matrix, and work on ``gs://`` as on local paths.

- Dosage = count of allele A1 (the ``.bim``'s 5th column, PLINK's and GEMMA's convention): genosynth
  stores ``alt = A1``, ``ref = A2``.
- ``.bim`` positions <= 0 (PLINK's "unknown", e.g. ``-9`` in mouse_hs1940) become <NA>; chromosome ``0``
  is kept as given.
- ``.fam``: ``FID IID father mother sex pheno [pheno2 ...]``; every phenotype column that holds at least
  one value (``-9``/``NA`` are missing) becomes a trait ``trait1``, ``trait2``, ... Samples are named by
  IID. A ``--pheno`` file (``FID IID v1 v2 ...``, optional header naming the columns) replaces the
  ``.fam`` phenotypes; samples are matched by IID (partial overlap: a warning, the intersection kept).
- Export writes hard calls (dosages rounded), the traits as ``.fam`` phenotype columns (as GEMMA's
  ``-n`` reads them), and ``PREFIX.pheno`` with a header so names survive a round trip.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from genosynth import storage
from genosynth.errors import InputError
from genosynth.formats.bed import MISSING, BedReader, BedWriter
from genosynth.formats.cohort import ParsedCohort
from genosynth.formats.dataset import DEFAULT_CHUNK_SIZE, Dataset, DatasetWriter
from genosynth.formats.text_tables import (
    align_samples,
    check_column_count,
    check_unique,
    local_path,
    open_lines,
    parse_numbers,
)

BLOCK_SNPS = 4096  # SNPs per streamed .bed block: 4096 x ceil(n / 4) bytes


def _text_bytes(lines: list[str]) -> bytes:
    """Lines joined by newlines, with a final newline, as UTF-8 (the .fam, .bim and phenotype files)."""
    return "".join(f"{line}\n" for line in lines).encode("utf-8")


def read_fam(path: str) -> tuple[list[str], pd.DataFrame]:
    """Sample IIDs and the phenotype columns (``trait1..``, all-missing columns dropped) of a ``.fam``."""
    iids: list[str] = []
    rows: list[np.ndarray] = []
    width: int | None = None
    for number, line in open_lines(path):
        tokens = line.split()
        if not tokens:
            continue
        if width is None:
            width = len(tokens)
            if width < 5:
                raise InputError(path, f"expected at least 5 fields (FID IID father mother sex [pheno...]), "
                                 f"found {width}", row=number)
        check_column_count(tokens, width, source=path, row=number,
                           layout="FID IID father mother sex pheno...")
        iids.append(tokens[1])
        rows.append(parse_numbers(tokens[5:], source=path, row=number, first_column=6,
                                  what="a phenotype value"))
    if width is None:
        raise InputError(path, "no samples")
    check_unique(iids, source=path, what="sample IID")
    values = np.vstack(rows) if rows and width > 5 else np.zeros((len(iids), 0))
    observed = ~np.all(np.isnan(values), axis=0)
    traits = pd.DataFrame(values[:, observed], columns=[f"trait{j + 1}" for j in range(int(observed.sum()))])
    return iids, traits


def read_bim(path: str) -> pd.DataFrame:
    """Variants of a ``.bim``: ``id chr pos ref alt cm`` (``alt`` = A1, the counted allele)."""
    chrom, ids, cm, pos, a1, a2, rows = [], [], [], [], [], [], []
    for number, line in open_lines(path):
        tokens = line.split()
        if not tokens:
            continue
        check_column_count(tokens, 6, source=path, row=number, layout="chr snp cM bp A1 A2")
        try:
            position = int(float(tokens[3]))
        except ValueError:
            raise InputError(path, f"expected a base-pair position, found {tokens[3]!r}", row=number,
                             column="bp") from None
        try:
            morgans = float(tokens[2])
        except ValueError:
            raise InputError(path, f"expected a cM position, found {tokens[2]!r}", row=number,
                             column="cM") from None
        chrom.append(tokens[0])
        ids.append(tokens[1])
        cm.append(morgans)
        pos.append(position if position > 0 else None)
        a1.append(tokens[4])
        a2.append(tokens[5])
        rows.append(number)
    if not ids:
        raise InputError(path, "no SNPs")
    check_unique(ids, source=path, what="SNP ID", rows=rows)
    return pd.DataFrame({
        "id": ids, "chr": chrom, "pos": pd.array(pos, dtype="Int64"), "ref": a2, "alt": a1,
        "quality": np.nan, "cm": np.asarray(cm, dtype=np.float64),
    })


def read_pheno_file(path: str) -> tuple[list[str], pd.DataFrame]:
    """A PLINK-style phenotype file ``FID IID v1 v2 ...`` (``-9``/``NA`` missing; header optional)."""
    iids: list[str] = []
    rows: list[np.ndarray] = []
    names: list[str] | None = None
    width: int | None = None
    for number, line in open_lines(path):
        tokens = line.split()
        if not tokens:
            continue
        if width is None:
            width = len(tokens)
            if width < 3:
                raise InputError(path, f"expected 'FID IID v1 [v2 ...]', found {width} fields", row=number)
            if tokens[0].upper() in ("FID", "#FID") and tokens[1].upper() == "IID":
                names = tokens[2:]
                continue
        check_column_count(tokens, width, source=path, row=number, layout="FID IID and one value per trait")
        iids.append(tokens[1])
        rows.append(parse_numbers(tokens[2:], source=path, row=number, column_names=names, first_column=3,
                                  what="a phenotype value"))
    if width is None or not rows:
        raise InputError(path, "no phenotype rows")
    check_unique(iids, source=path, what="sample IID")
    names = names or [f"trait{j + 1}" for j in range(width - 2)]
    check_unique(names, source=path, what="phenotype name")
    return iids, pd.DataFrame(np.vstack(rows), columns=names)


def check_bed(path: str, n_samples: int, n_snps: int, *, fam: str = ".fam") -> None:
    """Check a SNP-major ``.bed`` (local path or fsspec URL) against the ``.fam``/``.bim`` counts.

    Magic bytes; exact size ``3 + m * ceil(n / 4)``; and, when ``n`` is not a multiple of 4, the padding
    bits of each SNP's last byte, which PLINK writes as zeros: set padding means the ``.bed`` holds more
    samples than the ``.fam`` lists (genotypes would be paired with the wrong people). Read SNP block by
    SNP block, so memory is one block's.
    """
    with BedReader(path, n_samples, n_snps, fam=fam) as reader:
        for start in range(0, n_snps, BLOCK_SNPS):
            reader.records(start, min(start + BLOCK_SNPS, n_snps))


@dataclass
class PlinkInput:
    """A validated PLINK fileset: samples (after ``--pheno`` alignment), variants, and which ``.bed``
    columns (samples) to keep, in order."""

    bed: str
    fam: str
    n_fam: int
    samples: pd.DataFrame
    variants: pd.DataFrame
    traits: list[str]
    keep: np.ndarray | None
    provenance: dict


def parse_plink_input(bfile: str, pheno: str | None = None) -> PlinkInput:
    """Parse and validate a PLINK 1 fileset at a local prefix or fsspec URL prefix; nothing is written.

    The ``.bed`` is checked in full (magic, size, padding) block by block, without holding it.
    """
    bed, bim, fam = (f"{bfile}.{ext}" for ext in ("bed", "bim", "fam"))
    iids, fam_traits = read_fam(fam)
    variants = read_bim(bim)
    check_bed(bed, len(iids), len(variants), fam=fam)
    samples = pd.concat([pd.DataFrame({"id": iids}), fam_traits], axis=1)
    provenance = {"format": "plink", "files": {"bfile": bfile.rstrip("/").rsplit("/", 1)[-1]},
                  "allele_coding": "dosage counts alt = PLINK A1 (.bim column 5)",
                  "snps_without_position": int(variants["pos"].isna().sum())}
    parsed = PlinkInput(bed=bed, fam=fam, n_fam=len(iids), samples=samples, variants=variants,
                        traits=list(fam_traits.columns), keep=None, provenance=provenance)
    if pheno is None:
        return parsed
    pheno_ids, pheno_values = read_pheno_file(pheno)
    alignment = align_samples(iids, pheno_ids, genotype_source=fam, phenotype_source=pheno)
    parsed.keep = np.asarray(alignment.genotype_index)
    parsed.samples = pd.concat([
        pd.DataFrame({"id": [iids[i] for i in alignment.genotype_index]}),
        pheno_values.iloc[alignment.phenotype_index].reset_index(drop=True),
    ], axis=1)
    parsed.traits = list(pheno_values.columns)
    parsed.provenance = {**provenance, "pheno": pheno.rstrip("/").rsplit("/", 1)[-1],
                         "sample_alignment": alignment.summary()}
    return parsed


def iter_plink_dosages(parsed: PlinkInput, block: int = BLOCK_SNPS) -> Iterator[np.ndarray]:
    """Dosage blocks ``(n_kept, k)`` float32 (NaN missing) of a parsed fileset, in SNP order."""
    with BedReader(parsed.bed, parsed.n_fam, len(parsed.variants), fam=parsed.fam) as reader:
        for _, calls in reader.blocks(block):
            if parsed.keep is not None:
                calls = calls[:, parsed.keep]
            dosages = calls.T.astype(np.float32)
            dosages[calls.T == MISSING] = np.nan
            yield dosages


def parse_plink(bfile: str, pheno: str | None = None) -> ParsedCohort:
    """Parse a PLINK 1 fileset into memory (small cohorts; :func:`import_plink` streams instead)."""
    parsed = parse_plink_input(bfile, pheno)
    blocks = list(iter_plink_dosages(parsed))
    snp_major = np.concatenate(blocks, axis=1).T if blocks else np.zeros((0, len(parsed.samples)), np.float32)
    return ParsedCohort(samples=parsed.samples, variants=parsed.variants, snp_major=snp_major,
                        traits=parsed.traits, provenance=parsed.provenance)


def import_plink(bfile: str, out_url: str, *, pheno: str | None = None,
                 chunk_size: int = DEFAULT_CHUNK_SIZE) -> Dataset:
    """Import ``PREFIX.{bed,bim,fam}`` (and an optional phenotype file) into a dataset at ``out_url``.

    ``bfile`` is a local prefix or an fsspec URL prefix (``gs://bucket/cohort``); the ``.bed`` is validated,
    then streamed into the dataset SNP block by SNP block (memory flat in the number of SNPs).
    """
    parsed = parse_plink_input(bfile, pheno)
    with storage.staged_output(out_url):
        writer = DatasetWriter(out_url, n_samples=len(parsed.samples), chunk_size=chunk_size)
        for dosages in iter_plink_dosages(parsed):
            writer.add(dosages)
        return writer.commit(parsed.samples, parsed.variants, traits=parsed.traits,
                             provenance=parsed.provenance)


def write_plink_tables(prefix: str, samples: pd.DataFrame, traits: Sequence[str],
                       variants: pd.DataFrame, covariates: Sequence[str] = ()) -> dict[str, str]:
    """Write ``PREFIX.fam`` (traits as phenotype columns), ``PREFIX.bim`` and ``PREFIX.pheno`` (traits,
    then ``covariates``, with a header: usable as PLINK 2's ``--pheno`` and ``--covar``) at a local prefix
    or fsspec URL prefix."""
    paths = {ext: f"{prefix}.{ext}" for ext in ("bed", "bim", "fam", "pheno")}
    ids = samples["id"].astype(str).to_numpy()
    values = samples[list(traits)].to_numpy(dtype=np.float64) if traits else np.zeros((len(ids), 0))
    fam_lines = [f"{iid} {iid} 0 0 0 " + (" ".join(_pheno_text(v, "-9") for v in row) if row.size else "-9")
                 for iid, row in zip(ids, values, strict=True)]
    storage.write_bytes(paths["fam"], _text_bytes(fam_lines))
    cms = variants["cm"] if "cm" in variants else pd.Series(np.zeros(len(variants)))
    bim_lines = []
    for rs, chrom, pos, cm, alt, ref in zip(variants["id"], variants["chr"], variants["pos"], cms,
                                            variants["alt"], variants["ref"], strict=True):
        cm_text = "0" if pd.isna(cm) else repr(float(cm))
        pos_text = "-9" if pd.isna(pos) else str(int(pos))
        chrom = "0" if chrom == "NA" else chrom  # PLINK's code for an unknown chromosome
        bim_lines.append(f"{chrom}\t{rs}\t{cm_text}\t{pos_text}\t{alt}\t{ref}")
    storage.write_bytes(paths["bim"], _text_bytes(bim_lines))
    columns = [*traits, *covariates]
    table = samples[columns].to_numpy(dtype=np.float64) if columns else np.zeros((len(ids), 0))
    pheno_lines = [" ".join(["FID", "IID", *columns])]
    pheno_lines += [" ".join([iid, iid, *(_pheno_text(v, "NA") for v in row)])
                    for iid, row in zip(ids, table, strict=True)]
    storage.write_bytes(paths["pheno"], _text_bytes(pheno_lines))
    return paths


def export_plink(dataset: Dataset, prefix: str, *, batch_size: int = BLOCK_SNPS) -> dict[str, str]:
    """Write ``PREFIX.bed/.bim/.fam`` (hard calls) and ``PREFIX.pheno`` (traits with a header).

    ``prefix`` is a local prefix or an fsspec URL prefix; the ``.bed`` is written SNP block by SNP block.
    Non-integer dosages are rounded to the nearest call: PLINK 1 holds hard calls only.
    """
    prefix = local_path(prefix)
    fs, inner = storage.filesystem(prefix)
    if storage.is_local(fs):
        os.makedirs(os.path.dirname(os.path.abspath(inner)), exist_ok=True)
    with BedWriter(f"{prefix}.bed", dataset.n_samples) as writer:
        for _, block in dataset.iter_dosages(batch_size):
            writer.add(block.T)
    return write_plink_tables(prefix, dataset.samples, dataset.traits, dataset.variants)


def _pheno_text(value: float, missing: str) -> str:
    return missing if np.isnan(value) else repr(float(value))


def sample_ids_of(path: str) -> Sequence[str]:
    """IIDs of a ``.fam`` (e.g. to name the samples of a BIMBAM file of the same cohort)."""
    return read_fam(path)[0]
