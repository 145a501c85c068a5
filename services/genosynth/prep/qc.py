"""Quality control of a cohort before training: which individuals and SNPs to keep, and why not.

Individuals flagged ``discard`` (the CFW study's flag) are dropped first; SNP statistics are then
computed on the kept individuals, streaming over SNP blocks (memory is O(n x block), flat in the number
of SNPs). Each dropped SNP is counted under the first reason it fails, in this order:

1. ``missingness``: fraction of missing calls > ``max_missing`` (GEMMA ``-miss``, default 0.05);
2. ``monomorphic``: every observed dosage identical (or none observed);
3. ``maf``: minor allele frequency < ``maf`` (GEMMA ``-maf``, default 0.01);
4. ``quality``: imputation quality < ``min_quality``, only for SNPs whose ``quality`` is known (CFW
   map files; the study kept quality > 0.95).

The log also counts every SNP failing each filter (``failing``), so overlapping reasons stay visible.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from genosynth.formats.dataset import Dataset

REASONS = ("missingness", "monomorphic", "maf", "quality")


@dataclass
class QcResult:
    """Masks of kept individuals ``(n,)`` and SNPs ``(m,)`` and the log of counts per reason."""

    sample_mask: np.ndarray
    snp_mask: np.ndarray
    log: dict[str, Any] = field(default_factory=dict)


def snp_statistics(dosages: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-SNP missing fraction, alt allele frequency and monomorphism of a block.

    Parameters
    ----------
    dosages : (n, k) float dosages of ``alt``, NaN missing.

    Returns
    -------
    missing : (k,) fraction of missing calls.
    alt_frequency : (k,) mean observed dosage / 2 (NaN when nothing observed).
    monomorphic : (k,) True when all observed dosages are equal or none is observed.
    """
    observed = ~np.isnan(dosages)
    n_observed = observed.sum(axis=0)
    missing = 1.0 - n_observed / max(dosages.shape[0], 1)
    total = np.where(observed, dosages, 0.0).sum(axis=0, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        alt_frequency = np.where(n_observed > 0, total / n_observed / 2.0, np.nan)
    high = np.where(observed, dosages, -np.inf).max(axis=0, initial=-np.inf)
    low = np.where(observed, dosages, np.inf).min(axis=0, initial=np.inf)
    monomorphic = (n_observed == 0) | (high == low)
    return missing, alt_frequency, monomorphic


def run_qc(
    dataset: Dataset,
    *,
    maf: float = 0.01,
    max_missing: float = 0.05,
    min_quality: float = 0.95,
    drop_monomorphic: bool = True,
    drop_discarded: bool = True,
    batch_size: int | None = None,
) -> QcResult:
    """Decide which individuals and SNPs of ``dataset`` pass QC.

    Parameters
    ----------
    maf : drop SNPs with minor allele frequency below this.
    max_missing : drop SNPs with a larger fraction of missing calls.
    min_quality : drop SNPs whose known imputation quality is below this.
    drop_monomorphic : drop SNPs without variation among kept individuals.
    drop_discarded : drop individuals whose ``discard`` sample column is 1/True (when present).
    batch_size : SNPs per streamed block (default: the dataset's chunk size).

    Examples
    --------
    >>> result = run_qc(Dataset.open("data/cfw"), maf=0.02)  # doctest: +SKIP
    >>> result.log["snps"]["dropped"]  # doctest: +SKIP
    {'missingness': 0, 'monomorphic': 12, 'maf': 9113, 'quality': 11503}
    """
    samples = dataset.samples
    sample_mask = np.ones(dataset.n_samples, dtype=bool)
    discarded = 0
    if drop_discarded and "discard" in samples.columns:
        flags = samples["discard"].fillna(0).astype(bool).to_numpy()
        sample_mask &= ~flags
        discarded = int(flags.sum())
    keep_rows = np.flatnonzero(sample_mask)

    reason = np.zeros(dataset.n_variants, dtype=np.int8)  # 0 = kept, else 1 + index in REASONS
    failing = dict.fromkeys(REASONS, 0)
    quality = dataset.variants["quality"].to_numpy(dtype=np.float64) if "quality" in dataset.variants \
        else np.full(dataset.n_variants, np.nan)
    for start, block in dataset.iter_dosages(batch_size):
        stop = start + block.shape[1]
        missing, alt_frequency, monomorphic = snp_statistics(block[keep_rows])
        minor = np.minimum(alt_frequency, 1.0 - alt_frequency)
        with np.errstate(invalid="ignore"):
            tests = {
                "missingness": missing > max_missing,
                "monomorphic": monomorphic if drop_monomorphic else np.zeros_like(monomorphic),
                "maf": ~(minor >= maf),  # NaN frequency (nothing observed) fails too
                "quality": quality[start:stop] < min_quality,
            }
        assigned = np.zeros(stop - start, dtype=np.int8)
        for code, name in enumerate(REASONS, start=1):
            failing[name] += int(tests[name].sum())
            assigned[(assigned == 0) & tests[name]] = code
        reason[start:stop] = assigned
    snp_mask = reason == 0
    dropped = {name: int((reason == code).sum()) for code, name in enumerate(REASONS, start=1)}
    log = {
        "thresholds": {"maf": maf, "max_missing": max_missing, "min_quality": min_quality,
                       "drop_monomorphic": drop_monomorphic, "drop_discarded": drop_discarded},
        "samples": {"total": dataset.n_samples, "kept": int(sample_mask.sum()),
                    "dropped": {"discard": discarded}},
        "snps": {"total": dataset.n_variants, "kept": int(snp_mask.sum()), "dropped": dropped,
                 "failing": failing,
                 "quality_known": int(np.isfinite(quality).sum())},
    }
    return QcResult(sample_mask=sample_mask, snp_mask=snp_mask, log=log)
