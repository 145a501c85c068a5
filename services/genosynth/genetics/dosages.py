"""Dosage matrices: per-SNP means over observed calls, mean imputation, centring and hard calls.

Every function takes ``dosages`` as an ``(n, m)`` float array (individuals x SNPs, alternate-allele
dosage in [0, 2]) with NaN for a missing call, and computes in the array's own float dtype unless it says
otherwise, so a caller that works in float32 stays in float32 and one that works in float64 stays there.
"""

from __future__ import annotations

import numpy as np

MISSING_CALL = -1  # hard-call code of a missing genotype (int8)


def observed_means(dosages: np.ndarray) -> np.ndarray:
    """Mean dosage of each SNP over its observed calls.

    Parameters
    ----------
    dosages : (n, m) float, NaN for missing

    Returns
    -------
    (m,) in the dtype of ``dosages`` (float64 for integer input); 0 for a SNP without any observed call.
    Summed exactly as ``np.nanmean`` sums (missing set to 0, then one sum over individuals), so it gives
    the same bits.

    Examples
    --------
    >>> observed_means(np.array([[0.0, np.nan], [2.0, np.nan], [1.0, np.nan]])).tolist()
    [1.0, 0.0]
    """
    x = np.asarray(dosages)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    missing = np.isnan(x)
    filled = np.array(x, copy=True)
    np.copyto(filled, 0, where=missing)
    count = (~missing).sum(axis=0)
    return (filled.sum(axis=0) / np.maximum(count, 1)).astype(x.dtype, copy=False)


def mean_impute(dosages: np.ndarray, means: np.ndarray | None = None) -> np.ndarray:
    """Replace each missing call by its SNP's mean.

    Parameters
    ----------
    dosages : (n, m) float, NaN for missing
    means : (m,) the values to fill in (default :func:`observed_means`; GEMMA's tested SNP uses
        ``2 af`` of the analysed individuals)

    Returns
    -------
    (n, m) new array of dtype ``result_type(dosages, means)``; observed calls are unchanged.
    """
    x = np.asarray(dosages)
    fill = observed_means(x) if means is None else np.asarray(means)
    return np.where(np.isnan(x), fill[None, :], x)


def centre(dosages: np.ndarray, means: np.ndarray | None = None) -> np.ndarray:
    """Mean-impute and centre every SNP: ``x - mean`` with missing calls at exactly 0.

    Parameters
    ----------
    dosages : (n, m) float, NaN for missing
    means : (m,) finite centres (default :func:`observed_means`, the cohort's own means)

    Returns
    -------
    (n, m) new array of dtype ``result_type(dosages, means)``; with the default means every column has
    mean 0 and an all-missing SNP is a column of zeros.

    Examples
    --------
    >>> centre(np.array([[0.0], [2.0], [np.nan]])).ravel().tolist()
    [-1.0, 1.0, 0.0]
    """
    x = np.asarray(dosages)
    missing = np.isnan(x)
    out = x - (observed_means(x) if means is None else np.asarray(means))[None, :]
    out[missing] = 0.0
    return out


def standardise(dosages: np.ndarray, means: np.ndarray | None = None, sds: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean-impute, centre and scale every SNP to unit variance.

    Parameters
    ----------
    dosages : (n, m) dosages, NaN for missing (integer input is read as float64)
    means, sds : (m,) centres and scales to use (default: the cohort's own, so that a second cohort can be
        put on the first one's scale by passing the first one's)

    Returns
    -------
    z : (n, m) in the float dtype of ``dosages``; a SNP with sd 0 becomes a column of zeros (not NaN)
    means, sds : (m,) the centres and scales used (population sd, ``ddof=0``, of the imputed column)
    """
    x = np.asarray(dosages)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    means = observed_means(x) if means is None else means
    centred = centre(x, means)
    sds = centred.std(axis=0) if sds is None else sds
    return np.divide(centred, sds, out=np.zeros_like(centred), where=sds > 0), means, sds


def hard_calls(dosages: np.ndarray) -> np.ndarray:
    """Round dosages to hard calls.

    Parameters
    ----------
    dosages : (n, m) float, NaN for missing (assumed within [0, 2]; values outside are clipped)

    Returns
    -------
    (n, m) int8 in {0, 1, 2} (round half to even, so 0.5 -> 0 and 1.5 -> 2), :data:`MISSING_CALL` (-1)
    where missing.

    Examples
    --------
    >>> hard_calls(np.array([[0.4, 0.6, 1.5, np.nan]])).tolist()
    [[0, 1, 2, -1]]
    """
    x = np.asarray(dosages)
    missing = np.isnan(x)
    calls = np.clip(np.rint(np.where(missing, 0, x)), 0, 2).astype(np.int8)
    calls[missing] = MISSING_CALL
    return calls


def calls_to_dosages(calls: np.ndarray) -> np.ndarray:
    """Hard calls ``(n, m)`` int8 (-1 missing) back to float32 dosages with NaN for missing."""
    out = calls.astype(np.float32)
    out[calls < 0] = np.nan
    return out
