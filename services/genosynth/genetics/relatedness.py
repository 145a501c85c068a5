"""Summaries of relatedness matrices."""

from __future__ import annotations

import numpy as np


def kinship_spectrum(kinship: np.ndarray, k: int = 20) -> np.ndarray:
    """The ``k`` largest eigenvalues of a kinship matrix as shares of its trace.

    Parameters
    ----------
    kinship : (n, n) symmetric (e.g. the centred GRM)

    Returns
    -------
    (min(k, n),) descending; comparable between cohorts of different sizes.
    """
    values = np.linalg.eigvalsh(0.5 * (kinship + kinship.T))[::-1][:k]
    return values / max(float(np.trace(kinship)), 1e-300)
