"""Variance components across traits and the mixing that gives a sampled background its covariance."""

from __future__ import annotations

import numpy as np


def haseman_elston_covariance(kinship: np.ndarray, r1: np.ndarray, r2: np.ndarray) -> float:
    """Cross-trait Haseman-Elston estimate of the genetic covariance per unit of kinship.

    Regresses ``(r1_i r2_j + r2_i r1_j) / 2`` on ``K_ij`` through the origin over pairs ``i != j``
    (Haseman & Elston 1972; the bivariate form of Golan et al. 2014).

    Parameters
    ----------
    kinship : (n, n) symmetric; r1, r2 : (n,) residuals of two traits (fixed effects removed), centred
    """
    off = kinship - np.diag(np.diag(kinship))
    numerator = 0.5 * (r1 @ off @ r2 + r2 @ off @ r1)
    return float(numerator / max(float((off**2).sum()), 1e-300))


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
