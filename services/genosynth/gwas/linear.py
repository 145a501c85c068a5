"""Per-SNP least squares with covariates (GEMMA ``-lm 1``), all SNPs and traits at once.

For each SNP ``x`` and trait ``y`` the model is ``y = W a + x beta + e`` with ``W`` the covariates
(intercept included). Projecting ``W`` out once (``P = I - Q Q^T`` from a QR of ``W``) turns every
regression into dot products, computed for a whole block of SNPs by two matrix products:
``beta = x'Py / x'Px``, residual ``y'Py - beta x'Py`` on ``df = n - q - 1``
degrees of freedom, Wald ``F = beta^2 / se^2`` on ``F(1, df)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special


@dataclass
class LinearResult:
    """Per (SNP, trait) estimates, each array shape (m, t)."""

    beta: np.ndarray
    se: np.ndarray
    p: np.ndarray


def wald_p(statistic: np.ndarray, df: float) -> np.ndarray:
    """Upper tail of ``F(1, df)`` at ``statistic`` (GEMMA's ``gsl_cdf_fdist_Q``)."""
    return special.fdtrc(1.0, df, np.maximum(statistic, 0.0))


def linear_regression(genotypes: np.ndarray, covariates: np.ndarray, traits: np.ndarray, *,
                      centred: bool = False) -> LinearResult:
    """Wald test of every SNP against every trait, covariates projected out once.

    Parameters
    ----------
    genotypes : (n, m) mean-imputed dosages (no missing values).
    covariates : (n, q) covariates including the intercept column; full column rank.
    traits : (n, t) phenotypes of the same n individuals (no missing values).
    centred : the genotypes are float64 and already centred on their column means (no copy is made).

    Returns
    -------
    LinearResult with (m, t) arrays; NaN for a SNP without variance (callers test only SNPs that pass
    the filters, so it never reaches a table).

    With ``Q`` an orthonormal basis of the covariates, ``x'Py = x'y - (Q'x)'(Q'y)`` and
    ``x'Px = x'x - |Q'x|^2``: two GEMMs over the block (``X'Y`` and ``Q'X``) and no residual matrix.
    Each SNP is centred first (the intercept is a covariate, so nothing changes but the cancellation in
    ``x'x - |Q'x|^2``, which centring makes harmless); all in float64.
    """
    g = np.asarray(genotypes, dtype=np.float64)
    if not centred:
        g = g - g.mean(axis=0, keepdims=True)  # the one (n, m) temporary
    y = np.asarray(traits, dtype=np.float64)
    n, q = covariates.shape
    basis, _ = np.linalg.qr(np.asarray(covariates, dtype=np.float64))
    qy = basis.T @ y  # (q, t)
    qx = basis.T @ g  # (q, m)
    xpx = (np.einsum("ij,ij->j", g, g) - np.einsum("ij,ij->j", qx, qx))[:, None]  # (m, 1)
    xpy = g.T @ y - qx.T @ qy  # (m, t)
    ypy = (np.einsum("ij,ij->j", y, y) - np.einsum("ij,ij->j", qy, qy))[None, :]  # (1, t)
    df = n - q - 1
    with np.errstate(invalid="ignore", divide="ignore"):  # a column without variance gives NaN
        beta = xpy / xpx
        residual = ypy - beta * xpy
        se = np.sqrt(residual / (df * xpx))
        p = wald_p(beta**2 / se**2, df)
    return LinearResult(beta=beta, se=se, p=p)
