"""Dosage matrices: per-SNP means over observed calls, mean imputation, centring and hard calls.

Every function takes ``dosages`` as an ``(n, m)`` float array (individuals x SNPs, alternate-allele
dosage in [0, 2]) with NaN for a missing call, and computes in the array's own float dtype unless it says
otherwise, so a caller that works in float32 stays in float32 and one that works in float64 stays there.
"""

from __future__ import annotations

import numpy as np

MISSING_CALL = -1  # hard-call code of a missing genotype (int8)


def observed_means(dosages: np.ndarray, dtype: np.dtype | type | None = None) -> np.ndarray:
    """Mean dosage of each SNP over its observed calls.

    Parameters
    ----------
    dosages : (n, m) float, NaN for missing
    dtype : float dtype to sum and return in (default the dtype of ``dosages``; float64 for integer input).
        ``np.float64`` on float32 dosages sums in float64 without a float64 copy of the block.

    Returns
    -------
    (m,); 0 for a SNP without any observed call. Summed exactly as ``np.nanmean`` sums (missing set to 0,
    then one sum over individuals), so with the default dtype it gives the same bits.

    Examples
    --------
    >>> observed_means(np.array([[0.0, np.nan], [2.0, np.nan], [1.0, np.nan]])).tolist()
    [1.0, 0.0]
    """
    x = np.asarray(dosages)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    dtype = np.dtype(dtype or x.dtype)
    missing = np.isnan(x)
    count = x.shape[0] - missing.sum(axis=0)
    filled = np.where(missing, 0, x) if (count < x.shape[0]).any() else x
    return (filled.sum(axis=0, dtype=dtype) / np.maximum(count, 1)).astype(dtype, copy=False)


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


def centre(dosages: np.ndarray, means: np.ndarray | None = None, *, rows: np.ndarray | None = None,
           dtype: np.dtype | type | None = None) -> np.ndarray:
    """Mean-impute and centre every SNP: ``x - mean`` with missing calls at exactly 0, in one pass.

    Parameters
    ----------
    dosages : (n, m) float, NaN for missing
    means : (m,) finite centres (default :func:`observed_means` in ``dtype``, the cohort's own means)
    rows : optional (r,) individuals to return; the default means are still over all ``n``
    dtype : dtype of the result (default ``result_type(dosages, means)``); ``np.float64`` on float32
        dosages converts only the returned rows, in the same pass as the subtraction

    Returns
    -------
    (r, m) new array; with the default means every column has mean 0 over all ``n`` and an all-missing
    SNP is a column of zeros.

    Examples
    --------
    >>> centre(np.array([[0.0], [2.0], [np.nan]])).ravel().tolist()
    [-1.0, 1.0, 0.0]
    """
    x = np.asarray(dosages)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    centres = observed_means(x, dtype) if means is None else np.asarray(means)
    chosen = x if rows is None else x[rows]
    out = np.subtract(chosen, centres[None, :], dtype=dtype)  # NaN at a missing call, set to 0 below
    np.copyto(out, 0.0, where=np.isnan(chosen))
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
