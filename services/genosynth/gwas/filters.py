"""GEMMA's SNP filters, applied on the analysed individuals of one trait.

GEMMA (0.98.5, BIMBAM input) checks, in this order, and drops a SNP for the first reason that applies:

1. ``missing``: fraction of missing calls > ``max_missing`` (``-miss``, default 0.05);
2. ``maf``: allele frequency (mean dosage / 2 over observed calls) < ``min_maf`` or > 1 - ``min_maf``
   (``-maf``, default 0.01);
3. ``monomorphic``: every observed call has the same value;
4. ``collinear``: only with covariates beyond the intercept, the uncentred r^2 of the mean-imputed SNP on
   the covariates exceeds ``max_r2`` (``-r2``, default 0.9999).

The Hardy-Weinberg filter is off by default in GEMMA and is not applied.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

REASONS = ("missing", "maf", "monomorphic", "collinear")


@dataclass(frozen=True)
class FilterSettings:
    """GEMMA defaults: ``-miss 0.05 -maf 0.01 -r2 0.9999``."""

    max_missing: float = 0.05
    min_maf: float = 0.01
    max_r2: float = 0.9999


@dataclass
class SnpStats:
    """Per-SNP statistics on the analysed individuals of one block of SNPs (all arrays shape (m,)).

    ``reason`` is 0 for a SNP that passes, else 1 + the index of its reason in :data:`REASONS`.
    """

    af: np.ndarray
    n_miss: np.ndarray
    reason: np.ndarray

    @property
    def passed(self) -> np.ndarray:
        return self.reason == 0


def snp_filters(dosages: np.ndarray, covariates: np.ndarray, settings: FilterSettings) -> SnpStats:
    """Apply GEMMA's filters to a block of SNPs.

    Parameters
    ----------
    dosages : (n, m) dosages of the analysed individuals, NaN for missing.
    covariates : (n, q) covariate matrix including the intercept column.
    settings : thresholds.
    """
    # float32 dosages (as stored) are used as they are: every sum below accumulates in float64, and min,
    # max and the counts are exact, so the result is the same as on a float64 copy, without the copy.
    x = np.asarray(dosages)
    if x.dtype not in (np.float32, np.float64):
        x = x.astype(np.float64)
    n = x.shape[0]
    missing = np.isnan(x)
    n_miss = missing.sum(axis=0)
    observed = n - n_miss
    filled = np.where(missing, 0, x) if n_miss.any() else x
    with np.errstate(invalid="ignore", divide="ignore"):
        af = filled.sum(axis=0, dtype=np.float64) / (2.0 * observed)
        # fmin / fmax skip NaN (missing calls); an all-missing SNP gives NaN and counts as monomorphic.
        lowest = np.fmin.reduce(x, axis=0)
        highest = np.fmax.reduce(x, axis=0)
    reason = np.zeros(x.shape[1], dtype=np.int8)
    fail_missing = n_miss / n > settings.max_missing
    fail_maf = ~fail_missing & ((af < settings.min_maf) | (af > 1.0 - settings.min_maf) | np.isnan(af))
    fail_mono = ~fail_missing & ~fail_maf & ~(highest > lowest)
    reason[fail_missing] = 1
    reason[fail_maf] = 2
    reason[fail_mono] = 3
    if covariates.shape[1] > 1:
        candidates = np.flatnonzero(reason == 0)
        if candidates.size:
            # On every column (a column gather costs more than the few SNPs failing before), kept for the
            # candidates; a failed SNP's fill may be NaN, which only its own column sees.
            r2 = covariate_r2(filled, missing, np.nan_to_num(2.0 * af), covariates)[candidates]
            reason[candidates[r2 > settings.max_r2]] = 4
    return SnpStats(af=af, n_miss=n_miss.astype(np.int64), reason=reason)


def covariate_r2(filled: np.ndarray, missing: np.ndarray, fill: np.ndarray,
                 covariates: np.ndarray) -> np.ndarray:
    """Uncentred r^2 of each mean-imputed SNP on the covariates, as GEMMA computes it (``x'Px / x'x``).

    Parameters
    ----------
    filled : (n, m) dosages with missing calls at 0 (float32 or float64).
    missing : (n, m) bool, True where the call is missing.
    fill : (m,) the value imputed at a missing call (``2 af``).
    covariates : (n, q) covariates including the intercept.

    Returns
    -------
    (m,) float64; NaN for a column of zeros.
    """
    x = filled.astype(np.float64)  # the one float64 copy; sums and products below reuse it
    if missing.any():
        x += missing * fill[None, :]
    basis, _ = np.linalg.qr(np.asarray(covariates, dtype=np.float64))
    projected = basis.T @ x  # (q, m)
    explained = np.einsum("ij,ij->j", projected, projected)
    total = np.einsum("ij,ij->j", x, x)
    with np.errstate(invalid="ignore", divide="ignore"):
        return explained / total
