"""Single-SNP linear association scans with fixed covariates projected out once (sgkit-style)."""

from __future__ import annotations

import numpy as np
from scipy import stats


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
