"""Linear association scan against a per-SNP least-squares fit; lambda_GC on known distributions."""

import math

import numpy as np
import pytest
from scipy import stats

from genosynth.genetics.scan import CHI2_MEDIAN_1DF, f_pvalue, lambda_gc, linear_scan, padded_scans


def test_linear_scan_matches_one_least_squares_fit_per_snp():
    rng = np.random.default_rng(0)
    n = 60
    x = rng.binomial(2, 0.4, size=(n, 4)).astype(np.float64)
    fixed = np.column_stack([np.ones(n), rng.normal(size=n)])
    y = 1.5 * x[:, 1] + fixed[:, 1] + rng.normal(size=n)
    beta, p = linear_scan(x, y, fixed)
    for j in range(4):
        design = np.column_stack([fixed, x[:, j]])
        coef, rss, *_ = np.linalg.lstsq(design, y, rcond=None)
        df = n - design.shape[1]
        se = np.sqrt(rss[0] / df * np.linalg.inv(design.T @ design)[-1, -1])
        assert np.isclose(beta[j], coef[-1])
        assert np.isclose(p[j], 2 * stats.t.sf(abs(coef[-1] / se), df))
    assert p[1] < 1e-5


def test_a_snp_with_no_variation_gets_p_one():
    n = 30
    x = np.column_stack([np.ones(n), np.arange(n) % 3, 2.0 * np.arange(n) + 1.0])
    fixed = np.column_stack([np.ones(n), np.arange(n)])
    _, p = linear_scan(x, np.random.default_rng(1).normal(size=n), fixed)
    # Constant, and a linear function of the fixed columns: nothing left after projecting them out.
    assert p[0] == 1.0 and p[2] == 1.0 and p[1] < 1.0


def test_lambda_gc_is_one_under_the_null_and_grows_with_inflation():
    p = np.random.default_rng(0).uniform(size=20000)
    assert lambda_gc(p) == pytest.approx(1.0, abs=0.04)
    assert lambda_gc(p**1.5) > 1.3


def test_lambda_gc_by_hand():
    # chi2 statistics 1, 4 and 9 (p of |z| = 1, 2, 3): median 4 / 0.4549
    p = 2 * stats.norm.sf([1.0, 2.0, 3.0, np.nan])
    assert pytest.approx(0.454936, abs=1e-6) == CHI2_MEDIAN_1DF
    assert lambda_gc(p) == pytest.approx(4.0 / CHI2_MEDIAN_1DF, rel=1e-10)
    assert lambda_gc(np.array([0.0])) > 1000  # p = 0 counts as the smallest double, not infinity
    assert math.isnan(lambda_gc(np.array([np.nan])))


def test_padded_scans_equal_one_linear_scan_per_trait_on_its_own_individuals():
    rng = np.random.default_rng(3)
    n, k = 50, 6
    x = rng.binomial(2, 0.3, size=(n, k)).astype(np.float64)
    w = np.column_stack([np.ones(n), rng.normal(size=n)])
    rows = [np.arange(n), np.flatnonzero(rng.uniform(size=n) < 0.8)]
    ys = [x[:, 2] + rng.normal(size=n), -x[:, 4] + rng.normal(size=n)]
    fixed = [w[rows[0]], np.column_stack([w[rows[1]], x[rows[1], 0]])]  # the second conditions on SNP 0
    basis = np.zeros((n, 5))
    responses, col_sq = np.zeros((n, 2)), np.zeros((k, 2))
    offsets = [0, 2, 5]
    for j in range(2):
        basis[rows[j], offsets[j] : offsets[j + 1]] = np.linalg.qr(fixed[j])[0]
        responses[rows[j], j] = ys[j][rows[j]]
        col_sq[:, j] = (x[rows[j]] ** 2).sum(axis=0)
    df = np.array([len(rows[j]) - fixed[j].shape[1] - 1 for j in range(2)])
    t2 = padded_scans(x, basis, offsets, responses, col_sq, df)
    for j in range(2):
        _, p = linear_scan(x[rows[j]], ys[j][rows[j]], fixed[j])
        np.testing.assert_allclose(f_pvalue(t2[j], int(df[j])), p, rtol=1e-9)
    assert f_pvalue(t2[1, 0], int(df[1])) == 1.0  # the SNP it conditions on
    assert np.argmax(t2[0]) == 2 and np.argmax(t2[1]) == 4
