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

    The SNPs are not residualised one by one: with ``Q`` an orthonormal basis of ``fixed``, a SNP's
    residual sum of squares is ``x^T x - |Q^T x|^2`` and its cross-product with the residual phenotype
    ``x^T y_r``, so one product ``x^T [Q, y_r]`` serves every SNP.

    Parameters
    ----------
    x : (n, k) genotypes (any centring); y : (n,); fixed : (n, c) covariates including an intercept

    Returns
    -------
    beta : (k,) effect per allele; p : (k,) two-sided p-values (1 where the SNP has no variation left)
    """
    x = np.asarray(x, dtype=np.float64)
    c = fixed.shape[1]
    explained, xy, yy = _projected_sums(x, np.linalg.qr(fixed)[0], [0, c], y[:, None])
    df = len(y) - c - 1
    beta, t2 = wald_statistic(np.einsum("ij,ij->j", x, x) - explained[:, 0], xy[:, 0], float(yy[0]), df)
    return beta, f_pvalue(t2, df)


def padded_scans(x: np.ndarray, basis: np.ndarray, offsets: list[int], responses: np.ndarray,
                 col_sq: np.ndarray, df: np.ndarray) -> np.ndarray:
    """Linear scans of several traits, each on its own individuals, from one product with ``x``.

    Every trait's vectors are laid out on all ``n`` individuals, zero where the trait is not observed,
    so that ``x^T v`` sums over that trait's individuals only.

    Parameters
    ----------
    x : (n, k) genotypes of every individual, float64
    basis : (n, sum c_t) each trait's orthonormal basis of its fixed effects (columns ``offsets[t]`` to
        ``offsets[t + 1]``), zero on rows it does not observe
    offsets : (t + 1,) column offsets of the traits' bases
    responses : (n, t) each trait's phenotype (zero where unobserved; projected here)
    col_sq : (k, t) column sums of squares of ``x`` over each trait's individuals
    df : (t,) residual degrees of freedom with the SNP (observed individuals - c_t - 1)

    Returns
    -------
    t2 : (t, k) Wald F statistics on 1 and ``df[j]`` degrees of freedom (:func:`f_pvalue` gives the
    p-values of :func:`linear_scan` of each trait on its own rows; 0 where a SNP has no variation left)
    """
    explained, xy, yy = _projected_sums(x, basis, offsets, responses)
    return np.stack([wald_statistic(col_sq[:, j] - explained[:, j], xy[:, j], float(yy[j]), int(df[j]))[1]
                     for j in range(responses.shape[1])])


def _projected_sums(x: np.ndarray, basis: np.ndarray, offsets: list[int], responses: np.ndarray,
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per trait t: ``|Q_t^T x|^2`` (k, t), ``x^T y_r`` (k, t) and ``y_r^T y_r`` (t,), with ``y_r`` the
    response projected off its basis ``Q_t`` (columns ``offsets[t]:offsets[t + 1]`` of ``basis``); one
    product of ``x`` with every basis and residual."""
    t = responses.shape[1]
    residual = np.empty_like(responses, dtype=np.float64)
    for j in range(t):
        q = basis[:, offsets[j] : offsets[j + 1]]
        residual[:, j] = responses[:, j] - q @ (q.T @ responses[:, j])
    products = x.T @ np.concatenate([basis, residual], axis=1)
    explained = np.stack([(products[:, offsets[j] : offsets[j + 1]] ** 2).sum(axis=1) for j in range(t)],
                         axis=1)
    return explained, products[:, offsets[-1]:], (residual * residual).sum(axis=0)


def wald_statistic(xx: np.ndarray, xy: np.ndarray, yy: float, df: int) -> tuple[np.ndarray, np.ndarray]:
    """One-SNP least-squares Wald test from residualised sums.

    Parameters
    ----------
    xx : (k,) residual sum of squares of each SNP; xy : (k,) its cross-product with the residual
    phenotype; yy : the residual phenotype's sum of squares; df : residual degrees of freedom with the SNP

    Returns
    -------
    beta : (k,); t2 : (k,) F statistics on 1 and ``df`` degrees of freedom, 0 where a SNP has
    (numerically) no variation left
    """
    usable = xx > 1e-8 * max(float(xx.max(initial=0.0)), 1e-300)
    beta = np.where(usable, xy / np.where(usable, xx, 1.0), 0.0)
    rss = np.maximum(yy - beta * xy, 1e-300)
    return beta, np.where(usable, beta**2 * xx / (rss / df), 0.0)


def f_pvalue(t2: np.ndarray | float, df: int) -> np.ndarray:
    """p-values of F statistics on 1 and ``df`` degrees of freedom (two-sided t test); 1 at 0."""
    return np.where(np.asarray(t2) > 0, stats.f.sf(t2, 1, df), 1.0)


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
