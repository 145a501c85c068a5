"""Covariate design matrices: an intercept plus numeric columns and indicator-coded categories."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np


def category_levels(observed: Iterable[Any]) -> list[Any]:
    """The distinct levels of a categorical covariate, ordered by their text (the first is the reference).

    Parameters
    ----------
    observed : the column's observed (non-missing) values

    Examples
    --------
    >>> category_levels(["b", "a", "b", "c"])
    ['a', 'b', 'c']
    """
    return sorted(dict.fromkeys(observed), key=str)


def indicator_coding(values: np.ndarray, levels: Sequence[Any], missing: np.ndarray | None = None
                     ) -> np.ndarray:
    """Treatment (dummy) coding: one 0/1 column per level after the first.

    Parameters
    ----------
    values : (n,) labels, compared with ``==`` against each level
    levels : (L,) levels, the first being the reference (absorbed by the intercept)
    missing : (n,) bool, rows set to NaN in every column (default: none; a missing label matches no level
        and so codes as the reference)

    Returns
    -------
    (n, L - 1) float64

    Examples
    --------
    >>> indicator_coding(np.array(["a", "b", "c", "b"]), ["a", "b", "c"]).tolist()
    [[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]
    """
    values = np.asarray(values)
    coded = np.zeros((len(values), max(len(levels) - 1, 0)))
    for k, level in enumerate(levels[1:]):
        coded[:, k] = values == level
    if missing is not None:
        coded[np.asarray(missing, dtype=bool)] = np.nan
    return coded


def with_intercept(covariates: np.ndarray) -> np.ndarray:
    """The design matrix ``[1, covariates]``.

    Parameters
    ----------
    covariates : (n, k) encoded covariates (k may be 0)

    Returns
    -------
    (n, 1 + k) float64, intercept first.
    """
    covariates = np.asarray(covariates, dtype=np.float64).reshape(len(covariates), -1)
    return np.column_stack([np.ones(len(covariates)), covariates])
