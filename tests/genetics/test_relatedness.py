"""Kinship spectrum on a matrix with known eigenvalues."""

import numpy as np

from genosynth.genetics.relatedness import kinship_spectrum


def test_spectrum_is_the_descending_eigenvalues_over_the_trace():
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(5, 5)))
    kinship = (q * np.array([4.0, 1.0, 3.0, 0.5, 1.5])) @ q.T
    np.testing.assert_allclose(kinship_spectrum(kinship, 3), np.array([4.0, 3.0, 1.5]) / 10.0)
