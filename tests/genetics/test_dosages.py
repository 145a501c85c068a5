"""Per-SNP means, mean imputation, centring and hard calls on hand-computed cases."""

import numpy as np

from genosynth.genetics.dosages import (
    MISSING_CALL,
    calls_to_dosages,
    centre,
    hard_calls,
    mean_impute,
    observed_means,
    standardise,
)

NA = np.nan
DOSAGES = np.array([[0.0, 2.0, NA],
                    [1.0, NA, NA],
                    [2.0, 1.0, NA],
                    [NA, 0.0, NA]])


def test_means_are_over_observed_calls_and_zero_for_an_all_missing_snp():
    np.testing.assert_array_equal(observed_means(DOSAGES), [1.0, 1.0, 0.0])


def test_means_keep_the_float32_dtype_and_agree_with_nanmean_to_the_bit():
    x = np.random.default_rng(0).random((50, 7)).astype(np.float32) * 2
    x[::3, 2] = np.nan
    assert observed_means(x).dtype == np.float32
    np.testing.assert_array_equal(observed_means(x), np.nanmean(x, axis=0))


def test_mean_imputation_fills_only_the_missing_calls():
    filled = mean_impute(DOSAGES)
    np.testing.assert_array_equal(filled[:, 0], [0.0, 1.0, 2.0, 1.0])
    np.testing.assert_array_equal(filled[:, 1], [2.0, 1.0, 1.0, 0.0])
    np.testing.assert_array_equal(filled[:, 2], [0.0, 0.0, 0.0, 0.0])


def test_mean_imputation_with_given_means_uses_them():
    filled = mean_impute(DOSAGES, np.array([0.5, 1.5, 2.0]))
    assert filled[3, 0] == 0.5 and filled[1, 1] == 1.5 and (filled[:, 2] == 2.0).all()


def test_centring_puts_missing_calls_at_zero_and_column_means_at_zero():
    centred = centre(DOSAGES)
    np.testing.assert_array_equal(centred[:, 0], [-1.0, 0.0, 1.0, 0.0])
    np.testing.assert_array_equal(centred[:, 1], [1.0, 0.0, 0.0, -1.0])
    np.testing.assert_array_equal(centred[:, 2], [0.0, 0.0, 0.0, 0.0])


def test_centring_on_given_means():
    centred = centre(DOSAGES, np.array([2.0, 0.0, 1.0]))
    np.testing.assert_array_equal(centred[:, 0], [-2.0, -1.0, 0.0, 0.0])


def test_centring_a_subset_of_rows_keeps_the_means_of_every_row():
    centred = centre(DOSAGES, rows=np.array([0, 3]))
    np.testing.assert_array_equal(centred, [[-1.0, 1.0, 0.0], [0.0, -1.0, 0.0]])


def test_float32_dosages_centred_in_float64_equal_centring_a_float64_copy():
    x = (np.random.default_rng(1).integers(0, 3, (60, 9)) / 1.0).astype(np.float32)
    x[::4, 3] = np.nan
    means = observed_means(x, np.float64)
    assert means.dtype == np.float64
    np.testing.assert_array_equal(means, observed_means(x.astype(np.float64)))
    centred = centre(x, means, rows=np.arange(0, 60, 2), dtype=np.float64)
    assert centred.dtype == np.float64
    np.testing.assert_array_equal(centred, centre(x.astype(np.float64))[::2])


def test_standardised_snps_have_mean_zero_and_sd_one_and_a_constant_snp_is_zero():
    x = np.array([[0.0, 1.0], [2.0, 1.0], [NA, 1.0], [1.0, NA]])
    z, means, sds = standardise(x)
    np.testing.assert_array_equal(means, [1.0, 1.0])
    # SNP 0 imputed: 0, 2, 1, 1 -> centred -1, 1, 0, 0, population sd sqrt(1/2)
    np.testing.assert_allclose(z[:, 0], np.array([-1.0, 1.0, 0.0, 0.0]) / np.sqrt(0.5))
    np.testing.assert_array_equal(z[:, 1], 0.0)
    assert sds[1] == 0.0


def test_a_second_cohort_is_standardised_on_the_first_ones_scale():
    _, means, sds = standardise(np.array([[0.0], [2.0]]))
    other, _, _ = standardise(np.array([[2.0], [NA]]), means, sds)
    np.testing.assert_array_equal(other[:, 0], [1.0, 0.0])


def test_integer_calls_are_read_as_float64():
    assert observed_means(np.array([[0, 1], [2, 2]], dtype=np.int8)).tolist() == [1.0, 1.5]
    assert standardise(np.array([[0, 1], [2, 2]]))[0].dtype == np.float64


def test_hard_calls_round_half_to_even_and_code_missing_as_minus_one():
    calls = hard_calls(np.array([[0.49, 0.5, 0.51, 1.5, 1.49, 2.0, NA]]))
    assert calls.dtype == np.int8
    assert calls.tolist() == [[0, 0, 1, 2, 1, 2, MISSING_CALL]]


def test_calls_round_trip_to_dosages():
    calls = np.array([[0, 1, 2, -1]], dtype=np.int8)
    back = calls_to_dosages(calls)
    assert back.dtype == np.float32
    np.testing.assert_array_equal(back, [[0.0, 1.0, 2.0, NA]])
    np.testing.assert_array_equal(hard_calls(back), calls)
