"""Variance components and background mixing against direct computations."""

import numpy as np

from genosynth.genetics.variance import background_mixing, haseman_elston_covariance, nearest_psd, sqrt_psd


def test_haseman_elston_is_the_through_origin_slope_over_pairs():
    rng = np.random.default_rng(0)
    k = rng.normal(size=(6, 6))
    k = 0.5 * (k + k.T)
    r1, r2 = rng.normal(size=6), rng.normal(size=6)
    xs, ys = [], []
    for i in range(6):
        for j in range(6):
            if i != j:
                xs.append(k[i, j])
                ys.append(0.5 * (r1[i] * r2[j] + r2[i] * r1[j]))
    xs, ys = np.array(xs), np.array(ys)
    assert np.isclose(haseman_elston_covariance(k, r1, r2), (xs @ ys) / (xs @ xs))


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
