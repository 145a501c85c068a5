"""KING-robust kinship against PLINK 2 ``--make-king square bin`` on a small .bed, and on hand-counted
pairs; the degree cut-offs."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
from bed_reader import to_bed

from genosynth.genetics.dosages import hard_calls
from genosynth.genetics.relatedness import (
    KING_DEGREE_CUTOFFS,
    KING_DUPLICATE,
    KING_FIRST_DEGREE,
    KING_SECOND_DEGREE,
    KING_THIRD_DEGREE,
    genotype_distance,
    king_from_counts,
    king_robust,
    pair_counts,
    relatives_above,
)


@pytest.fixture(scope="module")
def cohort() -> np.ndarray:
    """(12, 300) dosages with a duplicate pair, a pair sharing half its genome and 5% missing calls."""
    rng = np.random.default_rng(5)
    g = rng.binomial(2, rng.uniform(0.05, 0.95, 300), size=(12, 300)).astype(np.float32)
    g[1] = g[0]
    g[3, :150] = g[2, :150]
    g[rng.random(g.shape) < 0.05] = np.nan
    return g


def _plink2_king(plink2_bin: str, folder, dosages: np.ndarray) -> np.ndarray:
    prefix = folder / "cohort"
    to_bed(f"{prefix}.bed", dosages, properties={"chromosome": ["1"] * dosages.shape[1]})
    subprocess.run([plink2_bin, "--bfile", str(prefix), "--make-king", "square", "bin", "--out",
                    str(prefix)], check=True, capture_output=True)
    n = dosages.shape[0]
    return np.fromfile(f"{prefix}.king.bin", dtype=np.float64).reshape(n, n)


def test_between_family_king_matches_plink2_make_king(cohort, plink2_bin, tmp_path):
    reference = _plink2_king(plink2_bin, tmp_path, cohort)
    ours = king_robust(hard_calls(cohort), between_family=True, block=64)
    np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-12)
    assert ours[0, 1] == pytest.approx(0.5)


def test_both_forms_agree_where_the_two_genomes_have_equal_heterozygosity(cohort):
    calls = hard_calls(cohort)
    counts = pair_counts(calls)
    equal = counts.het_a == counts.het_b
    within, between = king_robust(calls), king_robust(calls, between_family=True)
    assert equal.sum() > calls.shape[0]  # the diagonal and more
    np.testing.assert_allclose(within[equal], between[equal], rtol=0, atol=1e-12)


def test_within_family_king_on_hand_counted_genomes():
    a = np.array([[1, 1, 0, 2, 1, 0, -1]], dtype=np.int8)
    b = np.array([[1, 0, 2, 2, 1, 1, 1]], dtype=np.int8)
    # jointly observed: the first six SNPs; N_AaAa = 2 (SNPs 0, 4), N_AA,aa = 1 (SNP 2),
    # N_Aa(a) = 3, N_Aa(b) = 3 on those SNPs -> (2 - 2) / 6 = 0
    counts = pair_counts(a, b)
    assert (counts.shared[0, 0], counts.het_het[0, 0], counts.opposite[0, 0]) == (6, 2, 1)
    assert (counts.het_a[0, 0], counts.het_b[0, 0]) == (3, 3)
    assert king_robust(a, b)[0, 0] == 0.0
    # between-family form with equal heterozygosity: the same value
    assert king_from_counts(counts, between_family=True)[0, 0] == 0.0
    counts.het_b[0, 0] = 1  # pretend b had one heterozygous call: 0/(2*1) + 1/2 - 4/4 = -0.5
    assert king_from_counts(counts, between_family=True)[0, 0] == -0.5
    assert king_from_counts(counts)[0, 0] == 0.0  # within-family: 0 / 4
    # |differences| 0 1 2 0 0 1 over six SNPs
    assert genotype_distance(counts)[0, 0] == pytest.approx(4 / 6)


def test_king_of_a_genome_with_itself_is_one_half_and_undefined_without_heterozygotes():
    calls = np.array([[0, 1, 2, 1], [0, 0, 2, 2]], dtype=np.int8)
    king = king_robust(calls)
    assert king[0, 0] == 0.5
    assert np.isnan(king[1, 1])


def test_blocks_do_not_change_the_counts(cohort):
    calls = hard_calls(cohort)
    one, many = pair_counts(calls, calls[:5], block=1024), pair_counts(calls, calls[:5], block=7)
    for name in ("shared", "l1", "het_het", "opposite", "het_a", "het_b"):
        np.testing.assert_array_equal(getattr(one, name), getattr(many, name))


def test_degree_cut_offs_are_the_powers_of_two_of_the_king_paper():
    cutoffs = [KING_DUPLICATE, KING_FIRST_DEGREE, KING_SECOND_DEGREE, KING_THIRD_DEGREE]
    np.testing.assert_allclose(cutoffs, [2**-1.5, 2**-2.5, 2**-3.5, 2**-4.5], atol=6e-4)
    assert list(KING_DEGREE_CUTOFFS.values()) == cutoffs


def test_relatives_above_counts_others_only(cohort):
    king = king_robust(hard_calls(cohort))
    counts = relatives_above(king, KING_FIRST_DEGREE)
    assert counts[0] >= 1 and counts[1] >= 1  # the duplicate pair
    assert relatives_above(np.array([[0.5, np.nan], [np.nan, 0.5]])).tolist() == [0, 0]
