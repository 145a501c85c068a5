"""Indicator coding of categorical covariates and the intercept."""

import numpy as np

from genosynth.genetics.covariates import category_levels, indicator_coding, with_intercept


def test_levels_are_sorted_as_text_with_the_first_as_reference():
    assert category_levels(["cage10", "cage2", "cage10", "cage1"]) == ["cage1", "cage10", "cage2"]
    assert category_levels([3, 10, 2]) == [10, 2, 3]  # text order, the same for numbers and strings


def test_one_indicator_per_level_after_the_first():
    coded = indicator_coding(np.array(["b", "a", "c", "a"], dtype=object), ["a", "b", "c"])
    np.testing.assert_array_equal(coded, [[1, 0], [0, 0], [0, 1], [0, 0]])
    assert coded.dtype == np.float64


def test_missing_rows_are_nan_when_marked_and_the_reference_otherwise():
    values = np.array(["a", None, "b"], dtype=object)
    np.testing.assert_array_equal(indicator_coding(values, ["a", "b"]), [[0], [0], [1]])
    marked = indicator_coding(values, ["a", "b"], missing=np.array([False, True, False]))
    assert np.isnan(marked[1, 0]) and marked[2, 0] == 1


def test_a_single_level_codes_to_no_column():
    assert indicator_coding(np.array(["a", "a"]), ["a"]).shape == (2, 0)


def test_design_has_the_intercept_first():
    design = with_intercept(np.array([[2.0, 0.0], [3.0, 1.0]]))
    np.testing.assert_array_equal(design, [[1, 2, 0], [1, 3, 1]])
    np.testing.assert_array_equal(with_intercept(np.zeros((3, 0))), np.ones((3, 1)))
