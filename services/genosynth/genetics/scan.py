"""Single-SNP linear association scans with fixed covariates projected out once (sgkit-style), and the
genomic-control inflation of a scan's p-values."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

# Median of the chi-square distribution with one degree of freedom (0.4549): lambda_GC = median(chi2) / this.
CHI2_MEDIAN_1DF = float(stats.chi2.ppf(0.5, 1))


def linear_scan(x: np.ndarray, y: np.ndarray, fixed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Wald test of each SNP added to ``y ~ fixed``.

    Parameters
    ----------
    x : (n, k) genotypes (any centring); y : (n,); fixed : (n, c) covariates including an intercept

    Returns
    -------
    beta : (k,) effect per allele; p : (k,) two-sided p-values (1 where the SNP has no variation left)
    """
    q, _ = np.linalg.qr(fixed)
    yr = y - q @ (q.T @ y)
    xr = x.astype(np.float64) - q @ (q.T @ x.astype(np.float64))
    xx = (xr**2).sum(axis=0)
    xy = xr.T @ yr
    usable = xx > 1e-8 * max(float(xx.max(initial=0.0)), 1e-300)
    beta = np.where(usable, xy / np.where(usable, xx, 1.0), 0.0)
    df = len(y) - fixed.shape[1] - 1
    rss = np.maximum(float(yr @ yr) - beta * xy, 1e-300)
    t2 = np.where(usable, beta**2 * xx / (rss / df), 0.0)
    return beta, np.where(usable, stats.f.sf(t2, 1, df), 1.0)


def lambda_gc(p: np.ndarray) -> float:
    """Genomic-control inflation factor (Devlin & Roeder 1999): the median of the 1-df chi-square
    statistics implied by the p-values, over the chi-square median 0.4549.

    Parameters
    ----------
    p : (k,) two-sided p-values; non-finite values are ignored, 0 counts as the smallest double

    Returns
    -------
    about 1 for a well-calibrated scan of mostly null SNPs, above 1 when inflated; NaN when no p is finite.

    Examples
    --------
    >>> round(lambda_gc(np.array([0.5])), 6)
    1.0
    """
    p = np.asarray(p, dtype=np.float64)
    p = p[np.isfinite(p)]
    if p.size == 0:
        return math.nan
    chi2 = stats.chi2.isf(np.clip(p, np.finfo(np.float64).tiny, 1.0), 1)
    return float(np.median(chi2) / CHI2_MEDIAN_1DF)
