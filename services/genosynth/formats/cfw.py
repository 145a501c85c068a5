"""The CFW/Dryad layout of the reference study (Parker et al. 2016): three text files.

- ``geno.txt``: space-separated, header ``id discard <snp ids...>``, one row per individual; dosages of
  ``alt`` in [0, 2], possibly non-integer (imputed), ``NA`` missing. ``discard`` is a per-individual flag
  (0/1, yes/no, TRUE/FALSE) stored as the binary sample column ``discard`` for QC.
- ``map.txt``: space-separated, header ``id chr pos ref alt quality`` (``quality``: imputation quality
  in [0, 1]); matched to the geno header by SNP ID, SNP order is the geno header's.
- ``pheno.csv``: comma-separated, ``id`` first, then numeric, binary and categorical columns with
  missing values (``NA`` or empty). Samples are matched to ``geno.txt`` by ID (partial overlap: warning,
  intersection kept). Numeric non-binary columns become the dataset's traits; binary and categorical
  columns are kept as sample columns (choose covariates at analysis time).

Dosages are imported and exported exactly (shortest float32 text). Export follows the Dryad convention the
study's own R code reads: ``discard`` is written ``no``/``yes`` (in ``geno.txt`` and as the second column of
``pheno.csv``), so ``subset(pheno, discard == "no")`` keeps the individuals QC kept; every file has a
header; ``geno.txt`` and ``map.txt`` are single-space separated. Import accepts both ``0/1`` and
``no/yes``, and ignores a ``discard`` column of ``pheno.csv`` (``geno.txt``'s flag is the one kept).
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from genosynth import storage
from genosynth.errors import InputError
from genosynth.formats.cohort import ParsedCohort, write_cohort
from genosynth.formats.dataset import Dataset, infer_column_kind
from genosynth.formats.text_tables import (
    GENOTYPE_MISSING_TOKENS,
    align_samples,
    check_column_count,
    check_unique,
    format_dosages,
    open_for_write,
    open_lines,
    parse_numbers,
    stack_rows,
)

MAP_COLUMNS = ["id", "chr", "pos", "ref", "alt", "quality"]
_DISCARD_VALUES = {"0": 0, "1": 1, "no": 0, "yes": 1, "false": 0, "true": 1, "n": 0, "y": 1}


def read_cfw_geno(path: str) -> tuple[list[str], np.ndarray, list[str], np.ndarray]:
    """Parse ``geno.txt``.

    Returns
    -------
    sample_ids : n IDs.
    discard : (n,) int64 flags.
    snp_ids : m SNP IDs (header order).
    dosages : (n, m) float32, NaN missing.
    """
    lines = open_lines(path)
    header_row = None
    for number, line in lines:
        if line.strip():
            header_row, header = number, line.split()
            break
    if header_row is None:
        raise InputError(path, "empty file (expected header 'id discard <snp ids...>')")
    if len(header) < 3 or header[0] != "id" or header[1] != "discard":
        raise InputError(path, f"expected header 'id discard <snp ids...>', found {' '.join(header[:3])!r}",
                         row=header_row)
    snp_ids = header[2:]
    check_unique(snp_ids, source=path, what="SNP ID", rows=[header_row] * len(snp_ids))
    sample_ids: list[str] = []
    discard: list[int] = []
    rows: list[np.ndarray] = []
    for number, line in lines:
        tokens = line.split()
        if not tokens:
            continue
        check_column_count(tokens, len(header), source=path, row=number,
                           layout=f"id, discard and {len(snp_ids)} dosages")
        flag = _DISCARD_VALUES.get(tokens[1].lower())
        if flag is None:
            raise InputError(path, f"expected a discard flag (0/1, yes/no, TRUE/FALSE), found {tokens[1]!r}",
                             row=number, column="discard")
        rows.append(parse_numbers(tokens[2:], source=path, row=number, column_names=snp_ids,
                                  missing=GENOTYPE_MISSING_TOKENS, low=0.0, high=2.0,
                                  what="a dosage").astype(np.float32))
        sample_ids.append(tokens[0])
        discard.append(flag)
    if not rows:
        raise InputError(path, "no individuals after the header")
    check_unique(sample_ids, source=path, what="sample ID", rows=None)
    return sample_ids, np.asarray(discard, dtype=np.int64), snp_ids, stack_rows(rows)


def read_cfw_map(path: str) -> pd.DataFrame:
    """Parse ``map.txt`` into ``id chr pos ref alt quality`` (pos nullable, quality float)."""
    lines = open_lines(path)
    header = None
    for number, line in lines:
        if line.strip():
            header = line.split()
            if header != MAP_COLUMNS:
                raise InputError(path, f"expected header {' '.join(MAP_COLUMNS)!r}, found {line.strip()!r}",
                                 row=number)
            break
    if header is None:
        raise InputError(path, "empty file")
    records = []
    rows = []
    for number, line in lines:
        tokens = line.split()
        if not tokens:
            continue
        check_column_count(tokens, 6, source=path, row=number, layout=" ".join(MAP_COLUMNS))
        pos = parse_numbers([tokens[2]], source=path, row=number, column_names=["pos"], low=0.0,
                            what="a base-pair position")[0]
        quality = parse_numbers([tokens[5]], source=path, row=number, column_names=["quality"], low=0.0,
                                high=1.0, what="an imputation quality")[0]
        records.append((tokens[0], tokens[1], None if np.isnan(pos) else int(pos), tokens[3], tokens[4],
                        quality))
        rows.append(number)
    frame = pd.DataFrame.from_records(records, columns=MAP_COLUMNS)
    check_unique(list(frame["id"]), source=path, what="SNP ID", rows=rows)
    frame["pos"] = pd.array(frame["pos"], dtype="Int64")
    return frame


def read_cfw_pheno(path: str) -> pd.DataFrame:
    """Parse ``pheno.csv``: ``id`` first; numeric columns as float, others as strings; NA/empty missing."""
    if not storage.exists(path):
        raise InputError(path, "file not found")
    try:
        with storage.open_input(path, "rb") as handle:
            frame = pd.read_csv(handle, dtype={"id": str}, na_values=["NA", ""], keep_default_na=True)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(path, f"not a comma-separated table ({str(exc).splitlines()[0]})") from exc
    except pd.errors.EmptyDataError as exc:
        raise InputError(path, "empty file") from exc
    if frame.columns[0] != "id":
        raise InputError(path, f"expected 'id' as the first column, found {frame.columns[0]!r}", row=1)
    if frame["id"].isna().any():
        row = int(np.flatnonzero(frame["id"].isna())[0]) + 2
        raise InputError(path, "expected a sample ID, found nothing", row=row, column="id")
    check_unique(list(frame["id"]), source=path, what="sample ID",
                 rows=list(range(2, len(frame) + 2)))
    return frame


def parse_cfw(geno: str, map_file: str, pheno: str) -> ParsedCohort:
    """Parse and validate a CFW trio; nothing is written."""
    sample_ids, discard, snp_ids, dosages = read_cfw_geno(geno)
    snp_map = read_cfw_map(map_file)
    by_id = snp_map.set_index("id")
    absent = [s for s in snp_ids if s not in by_id.index]
    if absent:
        raise InputError(map_file, f"no map row for SNP {absent[0]!r} of {geno} ({len(absent)} SNPs missing)")
    variants = by_id.loc[snp_ids].reset_index()
    phenotypes = read_cfw_pheno(pheno)
    alignment = align_samples(sample_ids, list(phenotypes["id"]), genotype_source=geno,
                              phenotype_source=pheno)
    pheno_rows = phenotypes.iloc[alignment.phenotype_index].reset_index(drop=True)
    samples = pd.concat([
        pheno_rows[["id"]],
        pd.DataFrame({"discard": discard[alignment.genotype_index]}),
        pheno_rows.drop(columns=["id", "discard"], errors="ignore"),
    ], axis=1)
    kinds = {c: infer_column_kind(phenotypes[c]) for c in samples.columns if c not in ("id", "discard")}
    kinds["discard"] = "binary"
    traits = [c for c, kind in kinds.items() if kind == "numeric"]
    snp_major = dosages.T if len(alignment.genotype_index) == len(sample_ids) else \
        dosages[alignment.genotype_index].T
    return ParsedCohort(
        samples=samples, variants=variants, snp_major=snp_major, traits=traits, column_kinds=kinds,
        provenance={
            "format": "cfw",
            "files": {"geno": os.path.basename(geno), "map": os.path.basename(map_file),
                      "pheno": os.path.basename(pheno)},
            "sample_alignment": alignment.summary(),
            "discarded_flagged": int(discard[alignment.genotype_index].sum()),
        },
    )


def import_cfw(geno: str, map_file: str, pheno: str, out_url: str) -> Dataset:
    """Import ``geno.txt`` + ``map.txt`` + ``pheno.csv`` into an internal dataset at ``out_url``."""
    return write_cohort(parse_cfw(geno, map_file, pheno), out_url)


def export_cfw(dataset: Dataset, out_dir: str) -> dict[str, str]:
    """Write ``OUT/geno.txt``, ``OUT/map.txt`` and ``OUT/pheno.csv`` (dosages exact).

    Holds the (n, m) float32 dosage matrix in memory: ``geno.txt`` is individual-major.
    """
    paths = {"geno": storage.join(out_dir, "geno.txt"), "map": storage.join(out_dir, "map.txt"),
             "pheno": storage.join(out_dir, "pheno.csv")}
    variants = dataset.variants
    samples = dataset.samples
    dosages = dataset.dosages()
    flags = samples["discard"].fillna(0).astype(bool).to_numpy() if "discard" in samples else \
        np.zeros(dataset.n_samples, dtype=bool)
    discard = np.where(flags, "yes", "no")
    with open_for_write(paths["geno"]) as handle:
        handle.write(" ".join(["id", "discard", *variants["id"]]) + "\n")
        for i, sample in enumerate(dataset.sample_ids):
            handle.write(f"{sample} {discard[i]} " + " ".join(format_dosages(dosages[i])) + "\n")
    with open_for_write(paths["map"]) as handle:
        handle.write(" ".join(MAP_COLUMNS) + "\n")
        for rs, chrom, pos, ref, alt, quality in zip(variants["id"], variants["chr"], variants["pos"],
                                                     variants["ref"], variants["alt"], variants["quality"],
                                                     strict=True):
            pos_text = "NA" if pd.isna(pos) else str(int(pos))
            quality_text = "NA" if pd.isna(quality) else repr(float(quality))
            handle.write(f"{rs} {chrom} {pos_text} {ref} {alt} {quality_text}\n")
    pheno = samples.drop(columns=["discard"], errors="ignore")
    pheno.insert(1, "discard", discard)
    storage.write_text(paths["pheno"], pheno.to_csv(index=False, na_rep="NA", float_format=None))
    return paths
