"""Pipeline step ``compare``: fidelity and privacy of the synthetic cohort, and the privacy gate.

Reads ``prep/train``, ``prep/holdout``, ``synthetic/``, ``gwas/real.parquet`` and ``gwas/synthetic.parquet``;
writes ``compare/metrics.json`` (the numbers), ``compare/details.json`` (curves and distributions for the
report), then ``compare/gate.json`` and, last, the release decision ``compare/release.json``.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pandas as pd

from genosynth import compare_records, run_layout, storage
from genosynth.compare import association, gate, phenotypes, privacy, structure
from genosynth.compare.gate import thresholds_from_config
from genosynth.compare.genotypes import even_subsample, load_cohort
from genosynth.compare_records import CompareMetrics, clean_json
from genosynth.errors import InputError
from genosynth.formats.dataset import Dataset
from genosynth.genetics.kinship import centred_kinship
from genosynth.genetics.relatedness import kinship_spectrum
from genosynth.run_config import RunConfig

DETAILS = run_layout.COMPARE_DETAILS
# Structure metrics (LD, kinship, PCA) run on at most MAX_SNPS evenly spaced SNPs and MAX_SAMPLES evenly
# spaced individuals per cohort; above MAX_SAMPLES they are a sample and carry jackknife SEs
# (structure.subsample_standard_errors). Privacy metrics use every individual, chunk by chunk
# (privacy.neighbours: memory O(chunk x n)), on a SNP subsample whose size keeps train x synthetic pairs
# x SNPs at PRIVACY_PAIR_SNPS (20,000 SNPs up to 4,000 x 4,000 people, as before; never under
# MIN_PRIVACY_SNPS). Identical genomes are still detected on every SNP (fingerprints).
MAX_SNPS = 20_000
MAX_SAMPLES = 4_000
PRIVACY_PAIR_SNPS = MAX_SAMPLES * MAX_SAMPLES * MAX_SNPS
MIN_PRIVACY_SNPS = 2_000
PCA_SCORES_KEPT = 4
KINSHIP_BINS = np.linspace(-0.5, 0.5, 101)
KINSHIP_EIGENVALUES = 20  # leading eigenvalues of the centred kinship, as shares of its trace


def _open(run_url: str, key: str) -> Dataset:
    return Dataset.open(run_layout.url(run_url, key))


def _read_table(run_url: str, key: str) -> pd.DataFrame:
    url = run_layout.url(run_url, key)
    if not storage.exists(url):
        raise InputError(url, "GWAS table not found: run the gwas steps first")
    table = pd.read_parquet(io.BytesIO(storage.read_bytes(url)))
    missing = [c for c in ("trait", "snp", "chr", "pos", "beta", "p") if c not in table.columns]
    if missing:
        raise InputError(url, f"expected GWAS columns trait snp chr pos beta p, found no {missing[0]!r}",
                         column=missing[0])
    return table


def _histogram(values: np.ndarray, bins: np.ndarray) -> list[int]:
    clipped = np.clip(values[np.isfinite(values)], bins[0], bins[-1])
    return np.histogram(clipped, bins=bins)[0].tolist()


def privacy_snps(n_train: int, n_synthetic: int, n_snps: int) -> int:
    """SNPs of the privacy metrics' subsample: ``PRIVACY_PAIR_SNPS / (n_train n_synthetic)`` within
    ``[MIN_PRIVACY_SNPS, MAX_SNPS]``, and never more than the dataset has."""
    budget = PRIVACY_PAIR_SNPS // max(n_train * n_synthetic, 1)
    return int(min(n_snps, MAX_SNPS, max(MIN_PRIVACY_SNPS, budget)))


def compute(run_url: str, *, seed: int = 0) -> tuple[CompareMetrics, dict[str, Any]]:
    """Every comparison metric of the run (``metrics``, the record of ``compare/metrics.json``) and the plot
    data (``details``).

    ``seed`` (the run's) fixes the subsamples that balance cohort sizes for AATS.
    """
    train = _open(run_url, run_layout.PREP_TRAIN)
    holdout = _open(run_url, run_layout.PREP_HOLDOUT)
    synthetic = _open(run_url, run_layout.SYNTHETIC)
    real_ids = train.variants["id"].astype(str).to_numpy()
    synth_ids = synthetic.variants["id"].astype(str).to_numpy()
    if len(real_ids) != len(synth_ids) or not np.array_equal(real_ids, synth_ids):
        raise InputError(synthetic.url, f"variants differ from prep/train ({len(synth_ids)} vs "
                         f"{len(real_ids)} SNPs): synthetic and real cohorts must share SNPs in order")
    holdout_ids = holdout.variants["id"].astype(str).to_numpy()
    if not np.array_equal(real_ids, holdout_ids):
        raise InputError(holdout.url, "variants differ from prep/train")

    gwas_real = _read_table(run_url, run_layout.GWAS_REAL)
    gwas_synth = _read_table(run_url, run_layout.GWAS_SYNTHETIC)

    sources = (("train", train), ("holdout", holdout), ("synthetic", synthetic))
    privacy_index = even_subsample(train.n_variants, privacy_snps(train.n_samples, synthetic.n_samples,
                                                                  train.n_variants))
    snp_index = even_subsample(train.n_variants, MAX_SNPS)
    cohorts = {name: load_cohort(ds, privacy_index, name=name) for name, ds in sources}
    subsampled = max(train.n_samples, synthetic.n_samples) > MAX_SAMPLES
    if subsampled or len(privacy_index) != len(snp_index):
        shown = {name: load_cohort(ds, snp_index, name=name,
                                   sample_index=even_subsample(ds.n_samples, MAX_SAMPLES))
                 for name, ds in sources if name != "holdout"}
    else:
        shown = cohorts
    real_calls, synth_calls = shown["train"].calls(), shown["synthetic"].calls()
    within_real = privacy.pair_statistics(real_calls, real_calls)
    within_synth = privacy.pair_statistics(synth_calls, synth_calls)
    reuse = {"train_train": within_real, "synth_synth": within_synth} if shown is cohorts else {}
    pairs = privacy.compute_pairs(cohorts["train"], cohorts["holdout"], cohorts["synthetic"], **reuse)

    # --- association ------------------------------------------------------------------------------
    assoc = association.association_metrics(gwas_real, gwas_synth)

    # --- structure --------------------------------------------------------------------------------
    variants = train.variants.iloc[snp_index]
    chrom = variants["chr"].astype(str).to_numpy()
    pos = pd.to_numeric(variants["pos"], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    real_dosages, synth_dosages = shown["train"].dosages, shown["synthetic"].dosages
    snp_sets = structure.ld_pairs(real_dosages, chrom, pos, structure.LD_SNPS_PER_CHROMOSOME)
    ld_real = structure.ld_decay(real_dosages, snp_sets)
    ld_synth = structure.ld_decay(synth_dosages, snp_sets)
    king_matrix_real, king_matrix_synth = within_real.king, within_synth.king
    king_real = structure.off_diagonal(king_matrix_real)
    king_synth = structure.off_diagonal(king_matrix_synth)
    kinship_real = centred_kinship(real_dosages)
    kinship_synth = centred_kinship(synth_dosages)
    grm_real, grm_synth = structure.off_diagonal(kinship_real), structure.off_diagonal(kinship_synth)
    pca_metrics, pca_scores = structure.pca_comparison(real_dosages, synth_dosages)
    errors = (structure.subsample_standard_errors(real_dosages, synth_dosages, snp_sets, king_matrix_real,
                                                  king_matrix_synth, kinship_real, kinship_synth)
              if subsampled else {})
    struct = {
        "allele_frequency": structure.allele_frequency_metrics(train.variants["af"].to_numpy(float),
                                                               synthetic.variants["af"].to_numpy(float)),
        "ld_decay": {"real": ld_real, "synthetic": ld_synth, **structure.ld_decay_distance(ld_real, ld_synth),
                     "snps_per_chromosome": structure.LD_SNPS_PER_CHROMOSOME},
        "kinship_king": structure.kinship_quantiles(king_real, king_synth),
        "kinship_centred": structure.kinship_quantiles(grm_real, grm_synth),
        "kinship_spectrum": {"real": kinship_spectrum(kinship_real, KINSHIP_EIGENVALUES),
                             "synthetic": kinship_spectrum(kinship_synth, KINSHIP_EIGENVALUES)},
        "pca": pca_metrics,
        "sampling": {"samples_real": shown["train"].n, "samples_synthetic": shown["synthetic"].n,
                     "snps": len(snp_index), "subsampled": subsampled,
                     "jackknife_groups": structure.JACKKNIFE_GROUPS if subsampled else 0,
                     "standard_error": errors},
    }

    pheno_metrics, pheno_details = phenotypes.phenotype_metrics(train.samples, synthetic.samples,
                                                                train.column_kinds)
    priv_metrics, priv_details = privacy.privacy_metrics(
        cohorts["train"], cohorts["holdout"], cohorts["synthetic"], pairs, seed=seed)

    metrics = {
        "cohorts": {
            "train_samples": train.n_samples, "holdout_samples": holdout.n_samples,
            "synthetic_samples": synthetic.n_samples, "snps": train.n_variants,
            "snps_subsampled": len(snp_index), "samples_cap": MAX_SAMPLES,
            "traits": sorted(assoc), "privacy_snps": len(privacy_index),
        },
        "association": assoc,
        "structure": struct,
        "phenotypes": pheno_metrics,
        "privacy": priv_metrics,
    }
    k = min(PCA_SCORES_KEPT, pca_scores["real"].shape[1])
    details = {
        "pca": {"real": pca_scores["real"][:, :k], "synthetic": pca_scores["synthetic"][:, :k],
                "variance_explained": pca_metrics["variance_explained"][:k]},
        "kinship": {"bins": KINSHIP_BINS,
                    "king_real": _histogram(king_real, KINSHIP_BINS),
                    "king_synthetic": _histogram(king_synth, KINSHIP_BINS),
                    "centred_real": _histogram(grm_real, KINSHIP_BINS),
                    "centred_synthetic": _histogram(grm_synth, KINSHIP_BINS)},
        "phenotypes": pheno_details,
        "privacy": priv_details,
    }
    source = run_layout.url(run_url, run_layout.COMPARE_METRICS)
    return CompareMetrics.from_values(metrics, source=source), details


def run(run_url: str, batch: int | None = None) -> None:
    """Write ``compare/metrics.json``, ``compare/details.json``, ``compare/gate.json`` and ``release.json``.

    ``batch`` is unused (compare is a single task); it is accepted for the common step signature.
    """
    config = RunConfig.load(run_url)
    # Bad thresholds should fail before the expensive part.
    thresholds_from_config(config.privacy, source=run_layout.url(run_url, run_layout.CONFIG))
    metrics, details = compute(run_url, seed=config.seed)
    compare_records.write_metrics(run_url, metrics)
    storage.write_json(run_layout.url(run_url, DETAILS), clean_json(details))
    gate.apply(run_url)
