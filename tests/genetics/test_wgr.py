"""The maths of the scalable GWAS: level-0 ridge, level-1 LOCO, score test with SPA, .bed codec."""

from __future__ import annotations

import itertools

import numpy as np
from scipy import special

from genosynth.formats import bed
from genosynth.genetics import score, wgr


def test_level0_predictions_are_out_of_fold_ridge_fits():
    rng = np.random.default_rng(1)
    n, m = 120, 15
    x = rng.normal(size=(n, m))
    y = rng.normal(size=(n, 2))
    fold = wgr.assign_folds(n, 4, seed=0)
    penalties = np.array([0.5, 20.0])
    out = wgr.level0_block(x, y, fold, penalties)
    for k in range(4):
        train, held = fold != k, fold == k
        for r, lam in enumerate(penalties):
            beta = np.linalg.solve(x[train].T @ x[train] + lam * np.eye(m), x[train].T @ y[train])
            np.testing.assert_allclose(out[held, :, r], x[held] @ beta, rtol=1e-8, atol=1e-10)


def test_loco_prediction_leaves_out_exactly_that_chromosomes_blocks():
    rng = np.random.default_rng(2)
    n = 200
    w = rng.normal(size=(n, 6))
    y = w @ np.array([1.0, 0.5, 0.0, 0.2, -0.3, 0.1]) + rng.normal(size=n)
    fold = wgr.assign_folds(n, 5, seed=1)
    fit = wgr.level1_fit(w, y, fold, wgr.level1_penalties(6))
    chromosome = np.array([0, 0, 1, 1, 2, 2])
    loco = wgr.loco_predictions(w, fit, fold, chromosome, 3)
    for k in range(5):
        held = fold == k
        z = w[held] / fit.scale
        for c in range(3):
            keep = chromosome != c
            np.testing.assert_allclose(loco[held, c], z[:, keep] @ fit.coefficients[k][keep], atol=1e-12)
    # The penalty picked is the grid's least out-of-fold error.
    assert fit.penalty == wgr.level1_penalties(6)[int(np.argmin(fit.cv_mse))]


def test_spa_tail_matches_the_exact_distribution_of_the_score():
    # 14 people, rare outcome: the exact null law of U is a sum of 14 independent two-point variables.
    rng = np.random.default_rng(3)
    n = 14
    mu = np.clip(rng.uniform(0.02, 0.2, size=n), 0, 1)
    g = rng.integers(0, 3, size=n).astype(np.float64)
    g -= g.mean()
    outcomes = np.array(list(itertools.product([0, 1], repeat=n)), dtype=np.float64)
    prob = np.prod(np.where(outcomes == 1, mu, 1 - mu), axis=1)
    scores = (outcomes - mu) @ g
    variance = float((g**2 * mu * (1 - mu)).sum())
    for q in np.quantile(np.abs(scores[scores != 0]), [0.9, 0.99]):
        exact = prob[np.abs(scores) >= q - 1e-12].sum()
        spa = score.spa_pvalue(g[:, None], mu, np.array([q]), np.array([variance]))[0]
        normal = 2 * special.ndtr(-q / np.sqrt(variance))
        assert abs(np.log(spa / exact)) < abs(np.log(normal / exact)), (q, exact, spa, normal)


def test_score_test_is_calibrated_on_a_null_trait_with_rare_cases():
    rng = np.random.default_rng(4)
    n, k = 2000, 400
    covariates = np.column_stack([np.ones(n), rng.normal(size=n)])
    y = (rng.random(n) < special.expit(-3.0 + 0.5 * covariates[:, 1])).astype(np.float64)
    genotypes = rng.binomial(2, rng.uniform(0.01, 0.3, size=k), size=(n, k)).astype(np.float64)
    mu = score.logistic_null(y, covariates)
    result = score.score_test(genotypes, y, mu, covariates)
    # Uniform p under the null: about 5% below 0.05, and the SPA is used in the tails only.
    assert 0.02 < np.mean(result.p < 0.05) < 0.08
    assert result.spa.sum() < 0.15 * k


def test_bed_codec_round_trips_and_matches_plink_codes():
    calls = np.array([[0, 1, 2, np.nan, 2], [2, 2, 0, 1, np.nan]], dtype=np.float32)
    records = bed.encode(calls)
    assert records.shape == (2, 2)
    # Sample 1 of SNP 1 is 0 copies of A1 -> code 11; sample 2: 1 -> 10; sample 3: 2 -> 00; missing -> 01.
    assert records[0, 0] == 0b01_00_10_11 and records[0, 1] == 0b00_00_00_00
    decoded = bed.decode(records, 5)
    np.testing.assert_array_equal(decoded, np.where(np.isnan(calls), -1, calls).astype(np.int8))


def test_penalties_are_regenies_heritability_grid():
    # h2 = 0.5 gives a penalty of M; h2 = 0.01 gives 99 M.
    assert np.allclose(wgr.ridge_penalties(1000, (0.5, 0.01)), [1000.0, 99000.0])


def test_projecting_out_leaves_residuals_orthogonal_to_the_covariates():
    rng = np.random.default_rng(0)
    covariates = np.column_stack([np.ones(50), rng.normal(size=50)])
    basis, _ = np.linalg.qr(covariates)
    values = rng.normal(size=(50, 3))
    residuals = wgr.project_out(basis, values)
    assert np.allclose(covariates.T @ residuals, 0.0, atol=1e-12)
    least_squares = values - covariates @ np.linalg.lstsq(covariates, values, rcond=None)[0]
    assert np.allclose(residuals, least_squares)


def test_standardised_columns_have_unit_variance_and_constant_ones_become_zero():
    values = np.array([[1, 5, 2], [3, 5, 2], [5, 5, 8]], dtype=np.int8)
    scaled = wgr.standardise_columns(values)
    assert scaled.dtype == np.float64
    assert np.allclose(scaled.std(axis=0), [1.0, 0.0, 1.0])
    assert np.all(scaled[:, 1] == 0.0)
    assert np.allclose(scaled[:, 0], values[:, 0] / values[:, 0].std())
