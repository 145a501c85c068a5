"""BIMBAM mean-genotype files, as GEMMA reads them: ``.geno.txt``, ``.pheno.txt``, ``.anno.txt``.

- geno: one line per SNP, ``rs, A1, A0, d1, d2, ..., dn`` (comma and/or whitespace separated); ``di`` is
  individual i's expected count of allele ``A1`` in [0, 2], ``NA`` when missing. GEMMA's betas are per
  copy of ``A1``, so genosynth stores ``alt = A1`` and ``ref = A0`` and keeps the dosage as is: our
  effect signs match GEMMA's.
- pheno: one line per individual (same order as the geno columns), one whitespace-separated column per
  trait, ``NA`` (or ``-9``) missing. BIMBAM has no sample IDs: samples are matched by position.
- anno: ``rs pos chr [cM]``; SNPs missing from it, or with ``NA`` position/chromosome, are kept with
  ``pos`` <NA> and ``chr`` as given (``"NA"`` when absent).

SNP order is the geno file's order.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd

from genosynth.errors import InputError
from genosynth.formats.cohort import ParsedCohort, write_cohort
from genosynth.formats.dataset import Dataset
from genosynth.formats.text_tables import (
    GENOTYPE_MISSING_TOKENS,
    check_column_count,
    check_unique,
    format_dosages,
    open_for_write,
    open_lines,
    parse_numbers,
    stack_rows,
)


def read_bimbam_geno(path: str, n_samples: int | None = None) -> tuple[pd.DataFrame, np.ndarray, list[int]]:
    """Parse a BIMBAM mean-genotype file.

    Returns
    -------
    alleles : DataFrame, m rows: ``id``, ``alt`` (A1, the counted allele), ``ref`` (A0).
    snp_major : (m, n) float32 dosages of A1, NaN missing.
    rows : line number of each SNP (for messages).
    """
    ids: list[str] = []
    alt: list[str] = []
    ref: list[str] = []
    rows: list[int] = []
    values: list[np.ndarray] = []
    for number, line in open_lines(path):
        tokens = line.replace(",", " ").split()
        if not tokens:
            continue
        if n_samples is None:
            n_samples = len(tokens) - 3
            if n_samples < 1:
                raise InputError(path, f"expected 'rs, A1, A0, d1, ...' with at least one dosage, found "
                                 f"{len(tokens)} fields", row=number)
        check_column_count(tokens, n_samples + 3, source=path, row=number,
                           layout=f"rs, A1, A0 and {n_samples} dosages")
        values.append(parse_numbers(
            tokens[3:], source=path, row=number, first_column=4, missing=GENOTYPE_MISSING_TOKENS,
            low=0.0, high=2.0, what="a dosage",
        ).astype(np.float32))
        ids.append(tokens[0])
        alt.append(tokens[1])
        ref.append(tokens[2])
        rows.append(number)
    if not ids:
        raise InputError(path, "no SNP lines (expected 'rs, A1, A0, d1, d2, ...')")
    check_unique(ids, source=path, what="SNP ID", rows=rows)
    alleles = pd.DataFrame({"id": ids, "alt": alt, "ref": ref})
    return alleles, stack_rows(values), rows


def read_bimbam_pheno(path: str, trait_names: Sequence[str] | None = None) -> pd.DataFrame:
    """Parse a BIMBAM phenotype file into a DataFrame of traits (float64, NaN missing), one row per line.

    ``trait_names`` must have one name per column; default ``trait1``, ``trait2``, ...
    """
    rows: list[np.ndarray] = []
    n_columns: int | None = None
    for number, line in open_lines(path):
        tokens = line.split()
        if not tokens:
            continue
        if n_columns is None:
            n_columns = len(tokens)
            if trait_names is not None and len(trait_names) != n_columns:
                raise InputError(path, f"--trait-names gives {len(trait_names)} names "
                                 f"({', '.join(trait_names)}) but the file has {n_columns} phenotype columns",
                                 row=number)
        check_column_count(tokens, n_columns, source=path, row=number, layout="one value per trait")
        names = list(trait_names) if trait_names is not None else None
        rows.append(parse_numbers(tokens, source=path, row=number, column_names=names,
                                  what="a phenotype value"))
    if n_columns is None:
        raise InputError(path, "no phenotype lines")
    names = list(trait_names) if trait_names is not None else [f"trait{j + 1}" for j in range(n_columns)]
    check_unique(names, source=path, what="trait name")
    return pd.DataFrame(np.vstack(rows), columns=names)


def read_bimbam_anno(path: str) -> dict[str, tuple[str, int | None, float | None]]:
    """Parse an annotation file ``rs pos chr [cM]`` into ``{rs: (chr, pos or None, cM or None)}``."""
    out: dict[str, tuple[str, int | None, float | None]] = {}
    for number, line in open_lines(path):
        tokens = line.replace(",", " ").split()
        if not tokens:
            continue
        if len(tokens) < 2:
            raise InputError(path, f"expected 'rs pos chr [cM]', found {len(tokens)} field(s)", row=number)
        pos = _optional_int(tokens[1], source=path, row=number, column="pos")
        chrom = tokens[2] if len(tokens) > 2 else "NA"
        cm = None
        if len(tokens) > 3 and tokens[3] not in ("NA", "na", "."):
            try:
                cm = float(tokens[3])
            except ValueError:
                raise InputError(path, f"expected a cM position or NA, found {tokens[3]!r}",
                                 row=number, column="cM") from None
        out.setdefault(tokens[0], (chrom, pos, cm))
    return out


def _optional_int(token: str, *, source: str, row: int, column: str) -> int | None:
    if token in ("NA", "na", ".", "-9"):
        return None
    try:
        value = float(token)
    except ValueError:
        raise InputError(source, f"expected a base-pair position or NA, found {token!r}",
                         row=row, column=column) from None
    if value != int(value) or value < 0:
        raise InputError(source, f"expected a non-negative integer position, found {token!r}",
                         row=row, column=column)
    return int(value)


def parse_bimbam(
    geno: str,
    pheno: str,
    anno: str | None = None,
    *,
    trait_names: Sequence[str] | None = None,
    sample_ids: Sequence[str] | None = None,
) -> ParsedCohort:
    """Parse and validate a BIMBAM trio (nothing is written)."""
    traits = read_bimbam_pheno(pheno, trait_names)
    n = len(traits)
    alleles, snp_major, _ = read_bimbam_geno(geno)
    if snp_major.shape[1] != n:
        raise InputError(pheno, f"expected {snp_major.shape[1]} phenotype rows (one per individual in "
                         f"{geno}), found {n}")
    if sample_ids is None:
        width = len(str(n))
        sample_ids = [f"ind{i + 1:0{width}d}" for i in range(n)]
    elif len(sample_ids) != n:
        raise InputError(pheno, f"expected {len(sample_ids)} individuals (sample IDs given), found {n}")
    annotation = read_bimbam_anno(anno) if anno else {}
    chrom = [annotation.get(rs, ("NA", None, None))[0] for rs in alleles["id"]]
    pos = [annotation.get(rs, ("NA", None, None))[1] for rs in alleles["id"]]
    cm = [annotation.get(rs, ("NA", None, None))[2] for rs in alleles["id"]]
    variants = pd.DataFrame({
        "id": alleles["id"],
        "chr": chrom,
        "pos": pd.array(pos, dtype="Int64"),
        "ref": alleles["ref"],
        "alt": alleles["alt"],
        "quality": np.nan,
        "cm": np.asarray([np.nan if v is None else v for v in cm], dtype=np.float64),
    })
    samples = pd.concat([pd.DataFrame({"id": list(sample_ids)}), traits], axis=1)
    provenance = {
        "format": "bimbam",
        "files": {"geno": os.path.basename(geno), "pheno": os.path.basename(pheno),
                  "anno": os.path.basename(anno) if anno else None},
        "allele_coding": "dosage counts alt = BIMBAM A1 (GEMMA's coding)",
        "snps_without_position": int(variants["pos"].isna().sum()),
        "snps_missing_from_anno": int(sum(rs not in annotation for rs in alleles["id"])) if anno else None,
    }
    return ParsedCohort(samples=samples, variants=variants, snp_major=snp_major,
                        traits=list(traits.columns), provenance=provenance)


def import_bimbam(
    geno: str,
    pheno: str,
    anno: str | None,
    out_url: str,
    *,
    trait_names: Sequence[str] | None = None,
    sample_ids: Sequence[str] | None = None,
    provenance: dict | None = None,
) -> Dataset:
    """Import a BIMBAM trio into an internal dataset at ``out_url``.

    Everything is parsed and validated before the first byte is written; the descriptor goes last.
    Traits are named ``trait1..traitK`` in file column order unless ``trait_names`` is given; samples
    are ``ind1..indN`` unless ``sample_ids`` is given.

    Examples
    --------
    >>> ds = import_bimbam("x.geno.txt.gz", "x.pheno.txt.gz", "x.anno.txt.gz", "out/x")  # doctest: +SKIP
    >>> ds.dosages(0, 10).shape  # doctest: +SKIP
    (1940, 10)
    """
    cohort = parse_bimbam(geno, pheno, anno, trait_names=trait_names, sample_ids=sample_ids)
    cohort.provenance.update(provenance or {})
    return write_cohort(cohort, out_url)


def export_bimbam(dataset: Dataset, prefix: str, *, batch_size: int = 4096) -> dict[str, str]:
    """Write ``PREFIX.geno.txt``, ``PREFIX.pheno.txt`` and ``PREFIX.anno.txt`` that GEMMA reads.

    Dosages are written exactly (shortest float32 text), missing as ``NA``; phenotypes are the dataset's
    traits in order (then other numeric columns are not written: BIMBAM has no header to name them).
    Returns the three paths.
    """
    paths = {kind: f"{prefix}.{kind}.txt" for kind in ("geno", "pheno", "anno")}
    variants = dataset.variants
    with open_for_write(paths["geno"]) as handle:
        for start, block in dataset.iter_dosages(batch_size):
            for j in range(block.shape[1]):
                row = block[:, j]
                rs = variants["id"].iat[start + j]
                head = f"{rs}, {variants['alt'].iat[start + j]}, {variants['ref'].iat[start + j]}, "
                handle.write(head + ", ".join(format_dosages(row)) + "\n")
    traits = dataset.samples[dataset.traits].to_numpy(dtype=np.float64)
    with open_for_write(paths["pheno"]) as handle:
        for row in traits:
            handle.write("\t".join("NA" if np.isnan(v) else repr(float(v)) for v in row) + "\n")
    with open_for_write(paths["anno"]) as handle:
        cms = variants["cm"] if "cm" in variants else pd.Series(np.zeros(len(variants)))
        for rs, pos, chrom, cm in zip(variants["id"], variants["pos"], variants["chr"], cms, strict=True):
            pos_text = "NA" if pd.isna(pos) else str(int(pos))
            cm_text = "NA" if pd.isna(cm) else repr(float(cm))
            handle.write(f"{rs}\t{pos_text}\t{chrom}\t{cm_text}\n")
    return paths
