"""Contiguous chromosome runs."""

import numpy as np

from genosynth.genetics.chromosomes import chromosome_runs


def test_runs_follow_file_order_and_split_a_chromosome_that_comes_back():
    chrom = np.array(["1", "1", "1", "2", "X", "X", "1"])
    assert chromosome_runs(chrom) == [("1", 0, 3), ("2", 3, 4), ("X", 4, 6), ("1", 6, 7)]


def test_no_snp_no_run_and_labels_are_text():
    assert chromosome_runs(np.array([], dtype=str)) == []
    assert chromosome_runs(np.array([19, 19])) == [("19", 0, 2)]
