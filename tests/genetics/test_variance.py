"""Variance components and background mixing against direct computations."""

import numpy as np

from genosynth.genetics.variance import background_mixing, haseman_elston_pairs, nearest_psd, sqrt_psd


def _slope_over_pairs(k, r1, r2):
    xs, ys = [], []
    for i in range(len(r1)):
        for j in range(len(r1)):
            if i != j:
                xs.append(k[i, j])
                ys.append(0.5 * (r1[i] * r2[j] + r2[i] * r1[j]))
    xs, ys = np.array(xs), np.array(ys)
    return (xs @ ys) / (xs @ xs)


def test_haseman_elston_is_the_through_origin_slope_over_the_pairs_observed_for_both():
    rng = np.random.default_rng(0)
    n = 9
    k = rng.normal(size=(n, n))
    k = 0.5 * (k + k.T)
    r = rng.normal(size=(n, 3))
    r[[1, 4], 0] = np.nan
    r[[4, 6, 7], 2] = np.nan
    genetic, product = haseman_elston_pairs(k, r)
    for a in range(3):
        for b in range(3):
            both = ~np.isnan(r[:, a]) & ~np.isnan(r[:, b])
            ra, rb = r[both, a] - r[both, a].mean(), r[both, b] - r[both, b].mean()
            assert np.isclose(genetic[a, b], _slope_over_pairs(k[np.ix_(both, both)], ra, rb))
            assert np.isclose(product[a, b], np.mean(ra * rb))
    assert np.allclose(genetic, genetic.T)
    # Too few individuals observed together: no estimate.
    r[:7, 1] = np.nan
    genetic, _ = haseman_elston_pairs(k, r)
    assert np.isnan(genetic[1, 2]) and np.isnan(genetic[0, 1]) and np.isfinite(genetic[0, 2])


def test_psd_helpers():
    m = np.array([[1.0, 2.0], [2.0, 1.0]])  # eigenvalues 3 and -1
    fixed = nearest_psd(m)
    assert np.allclose(fixed, 1.5 * np.ones((2, 2)))
    root = sqrt_psd(fixed)
    assert np.allclose(root @ root.T, fixed)


def test_background_mixing_reaches_the_target_covariance():
    rng = np.random.default_rng(1)
    n = 5000
    fitted = rng.normal(size=(n, 2)) * [0.5, 0.3]
    random = rng.normal(size=(n, 2)) * [2.0, 0.1]
    target = np.array([[1.0, 0.4], [0.4, 0.8]])
    mix = background_mixing(fitted, random, target)
    total = fitted + random @ mix
    # Exact up to the sample cross-covariance of the independent parts.
    assert np.allclose(np.cov(total, rowvar=False), target, atol=0.05)
