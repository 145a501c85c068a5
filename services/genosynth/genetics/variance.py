"""Variance components across traits and the mixing that gives a sampled background its covariance."""

from __future__ import annotations

import numpy as np


def haseman_elston_pairs(kinship: np.ndarray, residuals: np.ndarray, *, minimum: int = 3,
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Cross-trait Haseman-Elston genetic covariances of every pair of traits, each pair over the
    individuals observed for both.

    For traits a and b with residuals centred over the individuals observed for both, the estimate
    regresses ``(r_a,i r_b,j + r_b,i r_a,j) / 2`` on ``K_ij`` through the origin over those pairs
    ``i != j`` (Haseman & Elston 1972; the bivariate form of Golan et al. 2014): ``r_a^T K_off r_b /
    sum K_off^2``. Missing values are masked rather than gathered, so each trait costs two ``(n, n) x
    (n, t)`` products.

    Parameters
    ----------
    kinship : (n, n) symmetric; residuals : (n, t) per-trait residuals (fixed effects removed), NaN where
        missing
    minimum : pairs observed together on fewer individuals get NaN

    Returns
    -------
    genetic : (t, t) covariance per unit of kinship (the diagonal is each trait's own HE estimate);
    product : (t, t) mean product of the two centred residuals (their covariance) over the same
    individuals.
    """
    off = np.asarray(kinship, dtype=np.float64).copy()
    np.fill_diagonal(off, 0.0)
    off_sq = off * off
    observed = ~np.isnan(residuals)
    values = np.where(observed, residuals, 0.0)
    mask = observed.astype(np.float64)
    t = residuals.shape[1]
    genetic, product = np.full((t, t), np.nan), np.full((t, t), np.nan)
    for a in range(t):
        both = mask * mask[:, [a]]                                   # (n, t)
        count = both.sum(axis=0)
        safe = np.maximum(count, 1.0)
        ra = both * (values[:, [a]] - (both * values[:, [a]]).sum(axis=0) / safe)
        rb = both * (values - (both * values).sum(axis=0) / safe)
        numerator = (ra * (off @ rb)).sum(axis=0)
        denominator = (both * (off_sq @ both)).sum(axis=0)
        ok = count >= minimum
        genetic[a, ok] = numerator[ok] / np.maximum(denominator[ok], 1e-300)
        product[a, ok] = (ra * rb).sum(axis=0)[ok] / count[ok]
    return genetic, product


def nearest_psd(matrix: np.ndarray) -> np.ndarray:
    """The symmetric part of ``matrix`` (t, t) with negative eigenvalues set to zero."""
    values, vectors = np.linalg.eigh(0.5 * (matrix + matrix.T))
    return (vectors * np.maximum(values, 0.0)) @ vectors.T


def sqrt_psd(matrix: np.ndarray) -> np.ndarray:
    """A square root ``L`` (t, t) of a PSD ``matrix`` with ``L L^T = matrix``."""
    values, vectors = np.linalg.eigh(0.5 * (matrix + matrix.T))
    return vectors * np.sqrt(np.maximum(values, 0.0))


def background_mixing(fitted: np.ndarray, random: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Mix independent random backgrounds into fitted ones so their sum has the target covariance.

    Parameters
    ----------
    fitted : (n, t) fitted genetic values (e.g. ``X u``); random : (n, t) independent random backgrounds
    (e.g. ``X z`` with ``z`` i.i.d. per SNP and trait); target : (t, t) genetic covariance to reach

    Returns
    -------
    ``M`` (t, t) such that ``cov(fitted + random @ M)`` is ``target`` where ``target - cov(fitted)`` is
    PSD (its nearest PSD part otherwise; a final per-trait scale then sets the variances).
    """
    if fitted.shape[1] == 0:
        return np.zeros((0, 0))
    need = nearest_psd(target - np.atleast_2d(np.cov(fitted, rowvar=False)))
    cov_random = np.atleast_2d(np.cov(random, rowvar=False))
    whiten = np.linalg.inv(np.linalg.cholesky(cov_random + 1e-12 * np.trace(cov_random) * np.eye(len(need))))
    # (random @ whiten.T) has identity covariance; then scale by a root of ``need``.
    return whiten.T @ sqrt_psd(need).T
