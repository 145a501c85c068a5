"""Kinship spectrum on a matrix with known eigenvalues."""

import numpy as np

from genosynth.genetics.relatedness import (
    genotype_distance,
    kinship_spectrum,
    manhattan_distance,
    pair_counts,
)


def test_spectrum_is_the_descending_eigenvalues_over_the_trace():
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(5, 5)))
    kinship = (q * np.array([4.0, 1.0, 3.0, 0.5, 1.5])) @ q.T
    np.testing.assert_allclose(kinship_spectrum(kinship, 3), np.array([4.0, 3.0, 1.5]) / 10.0)


def test_manhattan_distance_is_the_mean_absolute_call_difference_over_jointly_called_snps():
    rng = np.random.default_rng(7)
    a = rng.integers(0, 3, size=(5, 300)).astype(np.int8)
    b = rng.integers(0, 3, size=(4, 300)).astype(np.int8)
    a[rng.uniform(size=a.shape) < 0.1] = -1
    b[:, 290:] = -1  # a block where b is missing everywhere
    b[3] = -1        # a genome with no call at all
    got = manhattan_distance(a, b, block=64)
    for i in range(5):
        for j in range(4):
            both = (a[i] >= 0) & (b[j] >= 0)
            if both.any():
                assert got[i, j] == np.abs(a[i, both] - b[j, both].astype(int)).mean()
            else:
                assert np.isnan(got[i, j])
    # Fully called blocks take the count path: the same as the KING counts' distance.
    full = rng.integers(0, 3, size=(6, 100)).astype(np.int8)
    np.testing.assert_array_equal(manhattan_distance(full[:3], full[3:], block=32),
                                  genotype_distance(pair_counts(full[:3], full[3:], block=32)))
