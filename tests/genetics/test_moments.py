"""The kinship model without an n x n matrix (genetics/moments.py) against the dense computations."""

import numpy as np
import pytest

from genosynth.genetics.moments import gls_effects, he_components, he_pairs, mc_reml, padded_solve
from genosynth.genetics.reml import L_MIN, fit_null
from genosynth.genetics.ridge import dual_solve
from genosynth.genetics.variance import haseman_elston_pairs

N, M = 160, 400


@pytest.fixture(scope="module")
def cohort():
    """Centred genotypes (float64) with two families of relatives, and a heritable trait."""
    rng = np.random.default_rng(4)
    freqs = rng.uniform(0.1, 0.9, M)
    x = rng.binomial(2, freqs, size=(N, M)).astype(np.float64)
    # A family: 20 copies of one genome, each with 30% of its calls drawn afresh.
    redrawn = rng.random((20, M)) < 0.3
    x[:20] = np.where(redrawn, x[:20], x[0])
    x -= x.mean(axis=0)
    kinship = x @ x.T / M
    g = x @ rng.normal(0, 1 / np.sqrt(M), M)
    y = 2.0 + g + rng.normal(0, 0.8, N)
    return x, kinship, y, rng


def _dense_he(kinship, fixed, y):
    """The moment equations with explicit matrices."""
    q = np.linalg.qr(fixed)[0]
    p = np.eye(len(y)) - q @ q.T
    pkp = p @ kinship @ p
    a = np.array([[np.sum(pkp * pkp), np.trace(p @ kinship)], [np.trace(p @ kinship), len(y) - q.shape[1]]])
    b = np.array([y @ pkp @ y, y @ p @ y])
    return np.linalg.solve(a, b)


def test_padded_solve_equals_the_exact_dual_ridge_of_each_column(cohort):
    x, _kinship, y, rng = cohort
    rows = [np.arange(N), np.flatnonzero(rng.random(N) < 0.7)]
    lams = np.array([50.0, 400.0])
    rhs, masks = np.zeros((N, 2)), np.zeros((N, 2))
    for j, r in enumerate(rows):
        rhs[r, j] = y[r] - y[r].mean()
        masks[r, j] = 1.0
    alpha, iterations = padded_solve(x, rhs, masks, lams, tol=1e-10)
    assert iterations > 0
    for j, r in enumerate(rows):
        gram = x[r] @ x[r].T
        values, vectors = np.linalg.eigh(gram)
        np.testing.assert_allclose(alpha[r, j], dual_solve(values, vectors, rhs[r, j], lams[j]), rtol=1e-7,
                                   atol=1e-12)
        assert np.all(alpha[np.setdiff1d(np.arange(N), r), j] == 0)
    # From the solution itself, no iteration is needed.
    again, iterations = padded_solve(x, rhs, masks, lams, tol=1e-6, start=alpha)
    assert iterations == 0 and np.array_equal(again, alpha)


def test_haseman_elston_components_match_the_dense_moment_equations(cohort):
    x, kinship, y, rng = cohort
    rows = [np.arange(N), np.flatnonzero(rng.random(N) < 0.8)]
    fixed = [np.column_stack([np.ones(len(r)), rng.normal(size=len(r))]) for r in rows]
    ys = [y[r] for r in rows]
    estimate = he_components(x, rows, fixed, ys, vectors=3000)
    for j, r in enumerate(rows):
        exact = _dense_he(kinship[np.ix_(r, r)], fixed[j], ys[j])
        # Only tr(PKPK) is estimated (Hutchinson, 3,000 vectors); every other term is exact.
        np.testing.assert_allclose(estimate[j], exact, rtol=0.03)


def test_a_trait_without_genetic_signal_stays_inside_the_reml_range(cohort):
    x, _kinship, _y, rng = cohort
    noise = rng.normal(0, 1.5, N)
    fixed = np.ones((N, 1))
    vg, ve = he_components(x, [np.arange(N)], [fixed], [noise], vectors=200)[0]
    assert vg / ve >= L_MIN * (1 - 1e-12)
    assert ve == pytest.approx(np.var(noise), rel=0.3)


def test_gls_effects_equal_the_dense_gls(cohort):
    x, kinship, y, rng = cohort
    rows = [np.arange(N), np.flatnonzero(rng.random(N) < 0.6)]
    fixed = [np.column_stack([np.ones(len(r)), x[r, 7]]) for r in rows]
    vg, ve = 0.9, 0.6
    lams = [M * ve / vg] * 2
    effects, residual = gls_effects(x, rows, fixed, [y[r] for r in rows], lams, tol=1e-11)
    for j, r in enumerate(rows):
        v_inv = np.linalg.inv(vg * kinship[np.ix_(r, r)] + ve * np.eye(len(r)))
        z = fixed[j]
        dense = np.linalg.solve(z.T @ v_inv @ z, z.T @ v_inv @ y[r])
        np.testing.assert_allclose(effects[j], dense, rtol=1e-7)
        # REML's residual variance at that ratio: ve y^T P_V y / (n - c), P_V the GLS projection of V.
        p_v = v_inv - v_inv @ z @ np.linalg.solve(z.T @ v_inv @ z, z.T @ v_inv)
        assert residual[j] == pytest.approx(ve * y[r] @ p_v @ y[r] / (len(r) - z.shape[1]), rel=1e-7)


def test_cross_trait_haseman_elston_without_the_kinship(cohort):
    x, kinship, y, rng = cohort
    residuals = np.column_stack([y, y + rng.normal(0, 1, N), rng.normal(0, 1, N)])
    residuals[rng.random(N) < 0.2, 1] = np.nan
    residuals[:158, 2] = np.nan  # 2 individuals left with the third trait: too few
    exact_g, exact_p = haseman_elston_pairs(kinship, residuals)
    genetic, product = he_pairs(x, residuals, vectors=3000)
    np.testing.assert_allclose(product[1, 0], exact_p[1, 0], rtol=1e-12)
    np.testing.assert_allclose(genetic[1, 0], exact_g[1, 0], rtol=0.05)
    assert np.isnan(genetic[2, 0]) and np.isnan(genetic[2, 1]) and np.isnan(genetic[0, 1])


def test_monte_carlo_reml_finds_the_reml_variance_components():
    # 800 people, one family of 20 among them; REML on the dense kinship is the reference. (At a few
    # hundred people the Monte Carlo equation is too noisy to be compared within 10%.)
    rng = np.random.default_rng(4)
    n, m = 800, 1000
    x = rng.binomial(2, rng.uniform(0.1, 0.9, m), size=(n, m)).astype(np.float64)
    x[:20] = np.where(rng.random((20, m)) < 0.3, x[:20], x[0])
    x -= x.mean(axis=0)
    y = 2.0 + x @ rng.normal(0, 1 / np.sqrt(m), m) + rng.normal(0, 0.8, n)
    rows = [np.arange(n), np.flatnonzero(rng.random(n) < 0.8)]
    fixed = [np.column_stack([np.ones(len(r)), rng.normal(size=len(r))]) for r in rows]
    ys = [y[r] for r in rows]
    deltas = mc_reml(x, rows, fixed, ys, he_components(x, rows, fixed, ys), tol=1e-8)
    _, ves = gls_effects(x, rows, fixed, ys, m * deltas, tol=1e-8)
    for j, r in enumerate(rows):
        exact = fit_null(x[r] @ x[r].T / m, ys[j], fixed[j][:, 1:])
        assert ves[j] / deltas[j] == pytest.approx(exact.vg, rel=0.05)
        assert ves[j] == pytest.approx(exact.ve, rel=0.03)
