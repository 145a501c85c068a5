"""Linkage disequilibrium (squared correlation r^2) between SNPs a fixed number of positions apart."""

from __future__ import annotations

import numpy as np

from genosynth.genetics.dosages import mean_impute


def ld_by_lag(dosages: np.ndarray, max_lag: int) -> np.ndarray:
    """Mean r^2 between SNPs ``lag`` apart in SNP order, for ``lag = 1..max_lag``.

    Parameters
    ----------
    dosages : (n, m) float, NaN for missing (mean-imputed here), SNPs contiguous along one chromosome
        run (pairs across a chromosome boundary would count as unlinked pairs)
    max_lag : largest lag; at most ``m - 1`` lags are returned

    Returns
    -------
    (min(max_lag, m - 1),) in the dtype of ``dosages``; a monomorphic SNP counts as r^2 = 0 with every
    other SNP.

    Examples
    --------
    >>> x = np.array([[0.0, 0.0, 2.0], [2.0, 2.0, 0.0], [0.0, 0.0, 0.0], [2.0, 2.0, 2.0]])
    >>> ld_by_lag(x, 2).tolist()
    [0.5, 0.0]
    """
    x = mean_impute(dosages)
    x = np.nan_to_num(x - x.mean(axis=0))
    norm = np.sqrt((x**2).sum(axis=0))
    x = x / np.where(norm > 0, norm, np.inf)
    lags = range(1, min(max_lag, x.shape[1] - 1) + 1)
    return np.array([float(((x[:, :-lag] * x[:, lag:]).sum(axis=0) ** 2).mean()) for lag in lags])
