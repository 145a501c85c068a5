"""PLINK 1 binary files (``.bed``/``.bim``/``.fam``) through bed-reader.

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
from collections.abc import Sequence

import numpy as np
import pandas as pd

from genosynth.errors import InputError
from genosynth.formats.cohort import ParsedCohort, write_cohort
from genosynth.formats.dataset import Dataset
from genosynth.formats.text_tables import (
    align_samples,
    check_column_count,
    check_unique,
    local_path,
    open_lines,
    parse_numbers,
)

BED_MAGIC = bytes([0x6C, 0x1B, 0x01])


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
    """Check a SNP-major ``.bed`` against the ``.fam``/``.bim`` counts.

    Magic bytes; exact size ``3 + m * ceil(n / 4)``; and, when ``n`` is not a multiple of 4, the padding
    bits of each SNP's last byte, which PLINK writes as zeros: set padding means the ``.bed`` holds more
    samples than the ``.fam`` lists (genotypes would be paired with the wrong people).
    """
    if not os.path.exists(path):
        raise InputError(path, "file not found")
    expected = 3 + n_snps * ((n_samples + 3) // 4)
    found = os.path.getsize(path)
    with open(path, "rb") as handle:
        magic = handle.read(3)
    if magic != BED_MAGIC:
        raise InputError(path, f"not a SNP-major PLINK 1 .bed (expected magic bytes 6c 1b 01, found "
                         f"{magic.hex(' ') or 'nothing'})")
    if found != expected:
        state = "truncated" if found < expected else "too long"
        raise InputError(path, f"{state}: expected {expected} bytes for {n_samples} samples x {n_snps} SNPs, "
                         f"found {found}")
    used = n_samples % 4
    if used and n_snps:
        width = (n_samples + 3) // 4
        last = np.memmap(path, dtype=np.uint8, mode="r", offset=3, shape=(n_snps, width))[:, -1]
        padded = int(np.count_nonzero(last & np.uint8((0xFF << (2 * used)) & 0xFF)))
        if padded:
            raise InputError(path, f"padding bits are set in {padded} of {n_snps} SNPs: the .bed holds more "
                             f"samples than the {n_samples} rows of {fam} (expected zero padding after the "
                             "last sample of each SNP)")


def parse_plink(bfile: str, pheno: str | None = None) -> ParsedCohort:
    """Parse and validate a PLINK 1 fileset (and optional phenotype file); nothing is written."""
    from bed_reader import open_bed

    bfile = local_path(bfile)
    bed, bim, fam = (f"{bfile}.{ext}" for ext in ("bed", "bim", "fam"))
    iids, fam_traits = read_fam(fam)
    variants = read_bim(bim)
    check_bed(bed, len(iids), len(variants), fam=fam)
    with open_bed(bed, iid_count=len(iids), sid_count=len(variants), count_A1=True, num_threads=2) as reader:
        # bed-reader returns (n, m); keep SNP-major rows as a transposed view (no copy).
        calls = reader.read(dtype="int8", order="C", num_threads=2)
    samples = pd.concat([pd.DataFrame({"id": iids}), fam_traits], axis=1)
    cohort = ParsedCohort(
        samples=samples, variants=variants, snp_major=calls.T, traits=list(fam_traits.columns),
        provenance={"format": "plink", "files": {"bfile": os.path.basename(bfile)},
                    "allele_coding": "dosage counts alt = PLINK A1 (.bim column 5)",
                    "snps_without_position": int(variants["pos"].isna().sum())},
    )
    if pheno is None:
        return cohort
    pheno_ids, pheno_values = read_pheno_file(pheno)
    alignment = align_samples(iids, pheno_ids, genotype_source=fam, phenotype_source=pheno)
    kept = cohort.take_samples(alignment.genotype_index)
    kept.samples = pd.concat([
        pd.DataFrame({"id": [iids[i] for i in alignment.genotype_index]}),
        pheno_values.iloc[alignment.phenotype_index].reset_index(drop=True),
    ], axis=1)
    kept.traits = list(pheno_values.columns)
    kept.provenance = {**cohort.provenance, "pheno": os.path.basename(pheno),
                       "sample_alignment": alignment.summary()}
    return kept


def import_plink(bfile: str, out_url: str, *, pheno: str | None = None) -> Dataset:
    """Import ``PREFIX.{bed,bim,fam}`` (and an optional phenotype file) into a dataset at ``out_url``."""
    return write_cohort(parse_plink(bfile, pheno), out_url)


def export_plink(dataset: Dataset, prefix: str, *, batch_size: int = 4096) -> dict[str, str]:
    """Write ``PREFIX.bed/.bim/.fam`` (hard calls) and ``PREFIX.pheno`` (traits with a header).

    Non-integer dosages are rounded to the nearest call: PLINK 1 holds hard calls only.
    """
    from bed_reader import create_bed

    prefix = local_path(prefix)
    os.makedirs(os.path.dirname(os.path.abspath(prefix)), exist_ok=True)
    paths = {ext: f"{prefix}.{ext}" for ext in ("bed", "bim", "fam", "pheno")}
    variants = dataset.variants
    with create_bed(paths["bed"], iid_count=dataset.n_samples, sid_count=dataset.n_variants,
                    count_A1=True) as writer:
        for _, block in dataset.iter_dosages(batch_size):
            calls = np.rint(block)
            for j in range(calls.shape[1]):
                writer.write(calls[:, j])
    # bed-reader wrote placeholder .fam/.bim; replace them with ours (all traits, alleles, positions).
    ids = dataset.sample_ids
    traits = dataset.samples[dataset.traits].to_numpy(dtype=np.float64)
    with open(paths["fam"], "w", encoding="utf-8") as handle:
        for iid, row in zip(ids, traits, strict=True):
            values = " ".join(_pheno_text(v, "-9") for v in row) if row.size else "-9"
            handle.write(f"{iid} {iid} 0 0 0 {values}\n")
    cms = variants["cm"] if "cm" in variants else pd.Series(np.zeros(len(variants)))
    with open(paths["bim"], "w", encoding="utf-8") as handle:
        for rs, chrom, pos, cm, alt, ref in zip(variants["id"], variants["chr"], variants["pos"], cms,
                                                variants["alt"], variants["ref"], strict=True):
            cm_text = "0" if pd.isna(cm) else repr(float(cm))
            pos_text = "-9" if pd.isna(pos) else str(int(pos))
            chrom = "0" if chrom == "NA" else chrom  # PLINK's code for an unknown chromosome
            handle.write(f"{chrom}\t{rs}\t{cm_text}\t{pos_text}\t{alt}\t{ref}\n")
    with open(paths["pheno"], "w", encoding="utf-8") as handle:
        handle.write(" ".join(["FID", "IID", *dataset.traits]) + "\n")
        for iid, row in zip(ids, traits, strict=True):
            handle.write(" ".join([iid, iid, *(_pheno_text(v, "NA") for v in row)]) + "\n")
    return paths


def _pheno_text(value: float, missing: str) -> str:
    return missing if np.isnan(value) else repr(float(value))


def sample_ids_of(path: str) -> Sequence[str]:
    """IIDs of a ``.fam`` (e.g. to name the samples of a BIMBAM file of the same cohort)."""
    return read_fam(path)[0]
