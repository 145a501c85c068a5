"""Block-wise ridge / SNP-BLUP against dense solves on small arrays."""

import numpy as np
import pytest

from genosynth.genetics.ridge import (
    blup_penalty,
    conjugate_gradient,
    cv_penalty,
    dual_solve,
    gram_product,
    ridge_effects,
)


@pytest.fixture
def genotypes():
    rng = np.random.default_rng(3)
    x = rng.binomial(2, rng.uniform(0.1, 0.9, 300), size=(80, 300)).astype(np.float64)
    return x - x.mean(axis=0)


def test_gram_product_sums_snp_blocks_to_the_dense_product(genotypes):
    v = np.random.default_rng(0).normal(size=(80, 3))
    np.testing.assert_allclose(gram_product(genotypes.astype(np.float32), v, block=7),
                               genotypes @ genotypes.T @ v, rtol=1e-4, atol=1e-2)


def test_conjugate_gradient_solves_a_positive_definite_system():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(20, 20))
    a = a @ a.T + 5 * np.eye(20)
    b = rng.normal(size=(20, 2))
    z, iterations = conjugate_gradient(lambda v: a @ v, b, tol=1e-12)
    np.testing.assert_allclose(z, np.linalg.solve(a, b), rtol=1e-8, atol=1e-10)
    assert iterations <= 40


def test_ridge_effects_equal_the_primal_dense_solution(genotypes):
    rng = np.random.default_rng(2)
    r = genotypes[:, :5] @ rng.normal(size=5) + rng.normal(size=80)
    lam = blup_penalty(genotypes.shape[1], 0.7)
    assert lam == pytest.approx(300 * 0.7)
    dense = np.linalg.solve(genotypes.T @ genotypes + lam * np.eye(300), genotypes.T @ r)
    np.testing.assert_allclose(ridge_effects(genotypes, r, lam, block=64, tol=1e-12), dense, rtol=1e-6,
                               atol=1e-10)
    # One penalty per response column.
    both = ridge_effects(genotypes, np.stack([r, -r], axis=1), np.array([lam, 2 * lam]), tol=1e-12)
    dense2 = np.linalg.solve(genotypes.T @ genotypes + 2 * lam * np.eye(300), -genotypes.T @ r)
    np.testing.assert_allclose(both[:, 1], dense2, rtol=1e-6, atol=1e-10)


def test_dual_solve_from_the_eigendecomposition_equals_the_primal_ridge(genotypes):
    rng = np.random.default_rng(4)
    r = np.stack([genotypes[:, :4] @ rng.normal(size=4) + rng.normal(size=80), rng.normal(size=80)], axis=1)
    lam = blup_penalty(genotypes.shape[1], 0.5)
    values, vectors = np.linalg.eigh(genotypes @ genotypes.T)
    alpha = dual_solve(values, vectors, r, lam)
    dense = np.linalg.solve(genotypes.T @ genotypes + lam * np.eye(300), genotypes.T @ r)
    np.testing.assert_allclose(genotypes.T @ alpha, dense, rtol=1e-9, atol=1e-12)
    # The genetic values X u are r - lam alpha; one column solves alone as in the pair.
    np.testing.assert_allclose(genotypes @ dense, r - lam * alpha, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(dual_solve(values, vectors, r[:, 0], lam), alpha[:, 0], rtol=1e-12)


def test_cross_validation_prefers_a_mild_penalty_for_a_strong_sparse_signal(genotypes):
    rng = np.random.default_rng(5)
    r = genotypes[:, :3] @ np.array([2.0, -2.0, 1.5]) + 0.3 * rng.normal(size=80)
    grid = np.array([1.0, 10.0, 1e3, 1e5])
    best, errors = cv_penalty(genotypes, r, grid, folds=4)
    assert errors.shape == (4,)
    assert best < 1e3 and errors[-1] > errors.min()
