"""Pairwise genome statistics and privacy measures with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from genosynth.compare import privacy
from genosynth.genetics import roc
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


def _pairs(synth_train, holdout_train, holdout_synth, king_synth_train=None, king_holdout_train=None):
    """Privacy inputs from hand-made distance (and KING) matrices; within-cohort distances are 1."""
    def stats(distance, king=None):
        distance = np.asarray(distance, dtype=np.float32)
        return privacy.PairStatistics(distance=distance,
                                      king=np.asarray(king if king is not None else np.zeros_like(distance),
                                                      dtype=np.float32))

    n_s, n_t = np.shape(synth_train)
    n_h = np.shape(holdout_train)[0]

    def within(n):
        return privacy.Neighbours.of(stats(np.ones((n, n)) - np.eye(n)), within=True)

    return privacy.PrivacyInputs(
        synth_train=privacy.Neighbours.of(stats(synth_train, king_synth_train)),
        holdout_train=privacy.Neighbours.of(stats(holdout_train, king_holdout_train)),
        train_train=within(n_t), synth_synth=within(n_s),
        holdout_synth=privacy.Neighbours.of(stats(holdout_synth)), holdout_holdout=within(n_h))


def test_membership_inference_is_certain_when_members_sit_closer_to_synthetic_genomes():
    # Training genomes lie 0.1 and 0.2 from their nearest synthetic genome, holdout genomes 0.3 and 0.4.
    pairs = _pairs(synth_train=[[0.1, 0.9], [0.9, 0.2]], holdout_train=[[1, 1], [1, 1]],
                   holdout_synth=[[0.3, 0.8], [0.8, 0.4]])
    attack = privacy.membership_inference(pairs)
    assert (attack.auc, attack.members, attack.non_members) == (1.0, 2, 2)
    assert attack.auc_beyond_noise == pytest.approx(1.0 - 1.96 * roc.auc_standard_error(1.0, 2, 2))


def test_closeness_measures_against_the_real_first_percentile():
    pairs = _pairs(synth_train=[[0.0, 0.9], [0.7, 0.6]], holdout_train=[[0.5, 0.8], [0.9, 0.4]],
                   holdout_synth=np.ones((2, 2)))
    close = privacy.closeness(pairs)
    np.testing.assert_allclose(close.synth_to_train, [0.0, 0.6])
    np.testing.assert_allclose(close.holdout_to_train, [0.5, 0.4], rtol=1e-6)
    np.testing.assert_allclose(close.train_to_train, [1.0, 1.0])
    assert close.real_p1 == pytest.approx(np.quantile([0.5, 0.4, 1.0, 1.0], 0.01))
    assert (close.synthetic_closer, close.holdout_closer) == (0.5, 0.5)  # 0.0 and 0.4 lie below p1
    assert close.synthetic_closer_beyond_noise == pytest.approx(0.5 - 1.96 * np.sqrt(0.25 / 2))


def test_relatives_count_shares_above_each_king_cut_off():
    # Synthetic genome 0 duplicates a training genome, 1 is a first-degree relative, 2 is unrelated;
    # one of two holdout genomes has a second-degree training relative.
    pairs = _pairs(synth_train=np.ones((3, 2)), holdout_train=np.ones((2, 2)), holdout_synth=np.ones((2, 3)),
                   king_synth_train=[[0.5, 0.0], [0.0, 0.25], [0.01, 0.02]],
                   king_holdout_train=[[0.1, 0.0], [0.0, 0.03]])
    related = privacy.relatives(pairs)
    np.testing.assert_allclose(related.king_synthetic, [0.5, 0.25, 0.02])
    shares = {share.label: share for share in related.shares}
    assert (shares["second_degree"].synthetic, shares["second_degree"].holdout) == pytest.approx((2 / 3, 0.5))
    assert (shares["first_degree"].synthetic, shares["first_degree"].holdout) == pytest.approx((2 / 3, 0.0))
    assert (shares["duplicate"].synthetic, shares["duplicate"].holdout) == pytest.approx((1 / 3, 0.0))
    duplicate = shares["duplicate"]
    assert duplicate.excess == pytest.approx(1 / 3)
    assert duplicate.excess_beyond_noise == pytest.approx(1 / 3 - 1.96 * np.sqrt((1 / 3) * (2 / 3) / 3))
