"""r^2 by SNP lag on hand-built SNPs."""

import numpy as np

from genosynth.genetics.ld import ld_by_lag


def test_identical_neighbours_have_r2_one_and_orthogonal_ones_zero():
    x = np.array([[0.0, 0.0, 2.0], [2.0, 2.0, 0.0], [0.0, 0.0, 0.0], [2.0, 2.0, 2.0]])
    # lag 1: r^2(snp0, snp1) = 1, r^2(snp1, snp2) = 0 -> 0.5; lag 2: r^2(snp0, snp2) = 0
    np.testing.assert_allclose(ld_by_lag(x, 5), [0.5, 0.0])


def test_r2_is_the_squared_pearson_correlation_after_mean_imputation():
    rng = np.random.default_rng(2)
    x = rng.binomial(2, 0.4, size=(40, 6)).astype(np.float64)
    x[3, 1] = np.nan
    filled = np.where(np.isnan(x), np.nanmean(x, axis=0), x)
    expected = [np.mean([np.corrcoef(filled[:, j], filled[:, j + lag])[0, 1] ** 2 for j in range(6 - lag)])
                for lag in (1, 2, 3)]
    np.testing.assert_allclose(ld_by_lag(x, 3), expected, rtol=1e-12)


def test_a_monomorphic_snp_is_unlinked():
    x = np.column_stack([np.arange(10) % 3, np.ones(10)]).astype(np.float64)
    np.testing.assert_array_equal(ld_by_lag(x, 1), [0.0])
