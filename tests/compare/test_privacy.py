"""Pairwise genome statistics and privacy measures with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from genosynth.compare import privacy
from genosynth.genetics.dosages import hard_calls


def _brute_force(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    distance = np.zeros((len(a), len(b)))
    king = np.zeros((len(a), len(b)))
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            both = (x >= 0) & (y >= 0)
            distance[i, j] = np.abs(x[both] - y[both]).mean()
            het_both = np.sum((x[both] == 1) & (y[both] == 1))
            opposite = np.sum(np.abs(x[both] - y[both]) == 2)
            king[i, j] = (het_both - 2 * opposite) / (np.sum(x[both] == 1) + np.sum(y[both] == 1))
    return distance, king


@pytest.mark.parametrize("lowest_call", [-1, 0], ids=["with missing calls", "complete calls"])
def test_pair_statistics_match_the_definitions(lowest_call):
    rng = np.random.default_rng(0)
    a = rng.integers(lowest_call, 3, size=(7, 301)).astype(np.int8)
    b = rng.integers(lowest_call, 3, size=(5, 301)).astype(np.int8)
    stats = privacy.pair_statistics(a, b, block=64)  # several SNP blocks
    distance, king = _brute_force(a, b)
    np.testing.assert_allclose(stats.distance, distance, rtol=1e-6)
    np.testing.assert_allclose(stats.king, king, rtol=1e-5, atol=1e-7)


def test_identical_genomes_have_distance_zero_and_king_one_half():
    calls = hard_calls(np.random.default_rng(1).integers(0, 3, size=(4, 500)).astype(np.float32))
    stats = privacy.pair_statistics(calls, calls)
    np.testing.assert_allclose(np.diag(stats.distance), 0.0)
    np.testing.assert_allclose(np.diag(stats.king), 0.5)


def test_aats_of_a_copy_is_zero_and_of_a_fresh_sample_about_one_half(population):
    rng = np.random.default_rng(2)
    calls = hard_calls(population.dosages)
    order = rng.permutation(len(calls))
    real, fresh = calls[order[:300]], calls[order[300:600]]
    rr = privacy.pair_statistics(real, real).distance
    copy = privacy.aats(rr, rr, rr)
    assert copy == 0.0
    ff = privacy.pair_statistics(fresh, fresh).distance
    rf = privacy.pair_statistics(real, fresh).distance
    assert privacy.aats(rf, rr, ff) == pytest.approx(0.5, abs=0.06)


def test_auc_counts_ordered_pairs_and_ties_as_half():
    assert privacy.auc(np.array([3.0, 4.0]), np.array([1.0, 2.0])) == 1.0
    assert privacy.auc(np.array([1.0]), np.array([2.0])) == 0.0
    assert privacy.auc(np.array([1.0, 2.0]), np.array([1.0, 2.0])) == 0.5


def test_nearest_skips_self_on_within_cohort_matrices():
    d = np.array([[0.0, 0.3, 0.2], [0.3, 0.0, 0.5], [0.2, 0.5, 0.0]])
    np.testing.assert_allclose(privacy.nearest(d, exclude_self=True), [0.2, 0.3, 0.2])
    np.testing.assert_allclose(privacy.nearest(d), [0.0, 0.0, 0.0])


def test_within_cohort_statistics_match_the_definitions():
    a = np.random.default_rng(3).integers(-1, 3, size=(6, 200)).astype(np.int8)
    stats = privacy.pair_statistics(a, a, block=64)  # same array on both sides: the symmetric path
    distance, king = _brute_force(a, a)
    np.testing.assert_allclose(stats.distance, distance, rtol=1e-6)
    np.testing.assert_allclose(stats.king, king, rtol=1e-5, atol=1e-7)
