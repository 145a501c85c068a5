"""Single-SNP linear association scans with fixed covariates projected out once (sgkit-style), and the
genomic-control inflation of a scan's p-values."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

# Median of the chi-square distribution with one degree of freedom (0.4549): lambda_GC = median(chi2) / this.
CHI2_MEDIAN_1DF = float(stats.chi2.ppf(0.5, 1))


def linear_scan(x: np.ndarray, y: np.ndarray, fixed: np.ndarray, col_sq: np.ndarray | None = None,
                ) -> tuple[np.ndarray, np.ndarray]:
    """Wald test of each SNP added to ``y ~ fixed``.

    The SNPs are not residualised one by one: with ``Q`` an orthonormal basis of ``fixed``, a SNP's
    residual sum of squares is ``x^T x - |Q^T x|^2`` and its cross-product with the residual phenotype
    ``x^T y_r``, so one product ``x^T [Q, y_r]`` serves every SNP.

    Parameters
    ----------
    x : (n, k) genotypes (any centring); y : (n,); fixed : (n, c) covariates including an intercept
    col_sq : (k,) the column sums of squares of ``x`` when already known

    Returns
    -------
    beta : (k,) effect per allele; p : (k,) two-sided p-values (1 where the SNP has no variation left)
    """
    q, _ = np.linalg.qr(fixed)
    yr = y - q @ (q.T @ y)
    x = np.asarray(x, dtype=np.float64)
    products = x.T @ np.concatenate([q, yr[:, None]], axis=1)
    sq = np.einsum("ij,ij->j", x, x) if col_sq is None else col_sq
    xx = sq - (products[:, :-1] ** 2).sum(axis=1)
    return wald_test(xx, products[:, -1], float(yr @ yr), len(y) - fixed.shape[1] - 1)


def wald_test(xx: np.ndarray, xy: np.ndarray, yy: float, df: int) -> tuple[np.ndarray, np.ndarray]:
    """One-SNP least-squares Wald test from residualised sums.

    Parameters
    ----------
    xx : (k,) residual sum of squares of each SNP; xy : (k,) its cross-product with the residual
    phenotype; yy : the residual phenotype's sum of squares; df : residual degrees of freedom with the SNP

    Returns
    -------
    beta : (k,); p : (k,) F-test p-values, 1 where a SNP has (numerically) no variation left
    """
    usable = xx > 1e-8 * max(float(xx.max(initial=0.0)), 1e-300)
    beta = np.where(usable, xy / np.where(usable, xx, 1.0), 0.0)
    rss = np.maximum(yy - beta * xy, 1e-300)
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
