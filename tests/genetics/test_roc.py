"""The ROC area and its standard error, against hand-computed cases and scikit-style brute force."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from genosynth.genetics.roc import auc, auc_standard_error


def test_auc_counts_ordered_pairs_and_ties_as_half():
    assert auc(np.array([3.0, 4.0]), np.array([1.0, 2.0])) == 1.0
    assert auc(np.array([1.0]), np.array([2.0])) == 0.0
    assert auc(np.array([1.0, 2.0]), np.array([1.0, 2.0])) == 0.5
    assert math.isnan(auc(np.array([]), np.array([1.0])))


def test_auc_equals_the_share_of_ordered_pairs():
    rng = np.random.default_rng(3)
    positive = rng.integers(0, 6, size=17).astype(float)  # many ties
    negative = rng.integers(0, 5, size=11).astype(float)
    pairs = [1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(positive, negative)]
    assert auc(positive, negative) == np.mean(pairs)


def test_standard_error_of_hanley_mcneil():
    # A = 0.5, 10 and 10: Q1 = 1/3, Q2 = 1/3, variance (0.25 + 9 (1/12) + 9 (1/12)) / 100
    assert auc_standard_error(0.5, 10, 10) == pytest.approx(math.sqrt((0.25 + 18 / 12) / 100), rel=1e-12)
    assert math.isnan(auc_standard_error(0.5, 0, 10))
