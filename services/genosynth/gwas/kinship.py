"""Centred relatedness (GEMMA ``-gk 1``) and the leave-one-chromosome-out kinship derived from it.

GEMMA's centred kinship is ``K = X_c X_c^T / m`` where each column of ``X_c`` is one SNP's dosages with
missing calls replaced by the SNP's mean over *all* individuals in the genotype file and then centred on
that mean; only SNPs that pass the analysis filters enter. The LMM then re-centres ``K`` on the analysed
individuals (``(I - 11^T/n) K (I - 11^T/n)``) before its eigendecomposition.

Kinship is accumulated as an unscaled sum of outer products so that parts can be subtracted: the LOCO
kinship of chromosome ``c`` is ``(S - S_c) / (m - m_c)`` with ``S = K m`` the sum over all SNPs.
"""

from __future__ import annotations

import numpy as np


def centered_genotypes(dosages: np.ndarray) -> np.ndarray:
    """Mean-impute missing calls and centre every SNP on its mean.

    Parameters
    ----------
    dosages : (n, m) float array, NaN for missing calls.

    Returns
    -------
    (n, m) float64 array with column means 0; an all-missing SNP becomes a column of zeros.
    """
    x = np.asarray(dosages, dtype=np.float64)
    missing = np.isnan(x)
    observed = (~missing).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(observed > 0, np.where(missing, 0.0, x).sum(axis=0) / np.maximum(observed, 1), 0.0)
    centred = x - mean
    centred[missing] = 0.0
    return centred


def kinship_sum(dosages: np.ndarray) -> np.ndarray:
    """Unscaled centred kinship ``X_c X_c^T`` of a block of SNPs, shape (n, n), float64."""
    centred = centered_genotypes(dosages)
    return centred @ centred.T


def centered_kinship(dosages: np.ndarray) -> np.ndarray:
    """GEMMA ``-gk 1`` kinship of the given SNPs (no filtering here; pass the filtered SNPs).

    Parameters
    ----------
    dosages : (n, m) dosages in [0, 2], NaN for missing.

    Returns
    -------
    (n, n) float64 ``X_c X_c^T / m``.

    Examples
    --------
    >>> import numpy as np
    >>> centered_kinship(np.array([[0.0, 2.0], [2.0, 0.0]])).tolist()
    [[1.0, -1.0], [-1.0, 1.0]]
    """
    m = dosages.shape[1]
    if m == 0:
        raise ValueError("kinship needs at least one SNP")
    return kinship_sum(dosages) / m


def double_centre(kinship: np.ndarray) -> np.ndarray:
    """``(I - 11^T/n) K (I - 11^T/n)``: GEMMA re-centres K on the analysed individuals before the LMM."""
    k = np.asarray(kinship, dtype=np.float64)
    row = k.mean(axis=1, keepdims=True)
    col = k.mean(axis=0, keepdims=True)
    return k - row - col + k.mean()


def loco_kinship(
    total_sum: np.ndarray, n_total: int, chromosome_sum: np.ndarray, n_chromosome: int
) -> np.ndarray:
    """Kinship without one chromosome: ``(S - S_c) / (m - m_c)``.

    Parameters
    ----------
    total_sum : (n, n) unscaled kinship over all ``n_total`` SNPs (``K_full * m``).
    chromosome_sum : (n, n) unscaled kinship over the ``n_chromosome`` SNPs of the left-out chromosome.
    """
    remaining = n_total - n_chromosome
    if remaining <= 0:
        raise ValueError("leaving this chromosome out leaves no SNP for the kinship")
    return (total_sum - chromosome_sum) / remaining
