"""The calibration's array functions against direct computations: LD, window tops, the bisection."""

import numpy as np
import pytest

from genosynth.genetics.calibration import calibrate_scales, ld_with, merge_overlapping, window_tops
from genosynth.genetics.scan import f_pvalue, linear_scan


def test_ld_with_is_the_squared_correlation():
    rng = np.random.default_rng(1)
    x = rng.binomial(2, 0.4, size=(300, 6)).astype(np.float64)
    x[:, 3] = x[:, 1] + rng.normal(0, 0.5, 300)
    x[:, 5] = 1.0
    r2 = ld_with(x, 1)
    expected = np.corrcoef(x[:, :5].T)[1] ** 2
    np.testing.assert_allclose(r2[:5], expected, atol=1e-12)
    assert r2[5] == 0.0 and r2[1] == pytest.approx(1.0)


def test_window_tops_are_the_largest_linear_scan_statistics():
    rng = np.random.default_rng(2)
    n = 400
    x = rng.binomial(2, 0.3, size=(n, 20)).astype(np.float64)
    fixed = np.column_stack([np.ones(n), rng.normal(size=n)])
    responses = rng.normal(size=(n, 3)) + x[:, [4]] * np.array([0.0, 0.3, -0.5])
    tops = window_tops(x, responses, fixed)
    for k in range(3):
        _, p = linear_scan(x, responses[:, k], fixed)
        best = float(np.sqrt(np.max(_f_from_p(p, n - 3))))
        assert tops[k] == pytest.approx(best, rel=1e-6)
    # The SNP with an effect is the top of the responses that carry one.
    assert tops[2] > tops[1] > 3.0


def _f_from_p(p: np.ndarray, df: int) -> np.ndarray:
    from scipy import stats

    f = stats.f.isf(p, 1, df)
    np.testing.assert_allclose(f_pvalue(f, df), p, rtol=1e-6)
    return f


def test_calibrate_scales_solves_the_mean_top_equation_per_locus():
    rng = np.random.default_rng(3)
    noise = rng.normal(0, 1, size=(2, 32))
    signal = np.array([[4.0], [8.0]])

    def tops(scales):
        return np.abs(scales[:, None] * signal + noise)

    observed = np.array([3.0, 9.0])
    scales = calibrate_scales(observed, tops)
    np.testing.assert_allclose(tops(scales).mean(axis=1), observed, atol=1e-3)
    # Out of reach inside the range: the bound.
    unreachable = calibrate_scales(np.array([100.0]), lambda s: tops(np.repeat(s, 2))[:1])
    assert unreachable[0] == pytest.approx(2.0, abs=1e-4)


def test_overlapping_windows_merge_through_a_third():
    windows = [np.array([1, 2]), np.array([7, 8]), np.array([2, 3, 4]), np.array([4, 5]), np.array([8])]
    assert merge_overlapping(windows) == [[0, 2, 3], [1, 4]]
