"""Membership and classification scores: the area under the ROC curve and its standard error.

Used by the privacy metrics of the compare step and by the mosaic model's calibration, which simulates the
same membership attack; one definition keeps the two on the same scale.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats


def auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """Area under the ROC curve of scores: P(score of a positive > score of a negative), ties count 1/2.

    Parameters
    ----------
    positive : (a,) scores of the positives (e.g. training genomes; higher: called a member)
    negative : (b,) scores of the negatives

    Returns
    -------
    The Mann-Whitney U statistic over ``a b`` (mid-ranks for ties); NaN when either side is empty.

    Examples
    --------
    >>> auc(np.array([3.0, 4.0]), np.array([1.0, 2.0]))
    1.0
    """
    positive, negative = np.asarray(positive, float), np.asarray(negative, float)
    if positive.size == 0 or negative.size == 0:
        return math.nan
    ranks = stats.rankdata(np.concatenate([positive, negative]))
    return float((ranks[: positive.size].sum() - positive.size * (positive.size + 1) / 2)
                 / (positive.size * negative.size))


def auc_standard_error(area: float, n_positive: int, n_negative: int) -> float:
    """Standard error of an AUC estimate (Hanley & McNeil 1982, exponential approximation)."""
    if not (n_positive and n_negative) or not math.isfinite(area):
        return math.nan
    q1, q2 = area / (2 - area), 2 * area**2 / (1 + area)
    variance = (area * (1 - area) + (n_positive - 1) * (q1 - area**2)
                + (n_negative - 1) * (q2 - area**2)) / (n_positive * n_negative)
    return math.sqrt(max(variance, 0.0))
