"""Relatedness between genomes on hard calls (KING-robust, genotype distance) and summaries of kinship
matrices.

KING-robust kinship (Manichaikul et al. 2010, Bioinformatics 26:2867; the estimator PLINK 2's
``--make-king`` reports) of genomes i and j over the SNPs observed in both:
``(N_AaAa - 2 N_AA,aa) / (N_Aa(i) + N_Aa(j))``; 0.5 for duplicates (monozygotic twins), about 0.25, 0.125,
0.0625 for first, second, third degree relatives. The degree cut-offs below are the paper's (powers of
two halfway, on the log scale, between the expected values), used everywhere a degree is named.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# KING-robust kinship above which a pair is called a duplicate / first / second / third degree relative
# (Manichaikul et al. 2010, Table 1: 2^-1.5, 2^-2.5, 2^-3.5, 2^-4.5).
KING_DUPLICATE = 0.354
KING_FIRST_DEGREE = 0.177
KING_SECOND_DEGREE = 0.0884
KING_THIRD_DEGREE = 0.0442
KING_DEGREE_CUTOFFS = {"duplicate": KING_DUPLICATE, "first_degree": KING_FIRST_DEGREE,
                       "second_degree": KING_SECOND_DEGREE, "third_degree": KING_THIRD_DEGREE}

SNP_BLOCK = 2048


@dataclass
class PairCounts:
    """Genotype counts of every pair (genome a of cohort A, genome b of cohort B) over the SNPs observed
    in both; all ``(n_a, n_b)`` float64 holding exact integers.

    Attributes
    ----------
    shared : SNPs observed in both genomes
    l1 : sum of ``|g_a - g_b|`` (g in {0, 1, 2})
    het_het : ``N_AaAa``, SNPs where both are heterozygous
    opposite : ``N_AA,aa``, SNPs where they are opposite homozygotes
    het_sum : ``N_Aa(a) + N_Aa(b)``, heterozygous calls of either genome
    """

    shared: np.ndarray
    l1: np.ndarray
    het_het: np.ndarray
    opposite: np.ndarray
    het_sum: np.ndarray


def _indicators(calls: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Observed indicator, genotype with missing as 0, heterozygote indicator; all float32 ``(n, k)``."""
    return ((calls >= 0).astype(np.float32), np.maximum(calls, 0).astype(np.float32),
            (calls == 1).astype(np.float32))


def pair_counts(calls_a: np.ndarray, calls_b: np.ndarray | None = None, block: int = SNP_BLOCK
                ) -> PairCounts:
    """Genotype counts between every genome of ``calls_a`` and every genome of ``calls_b``.

    Parameters
    ----------
    calls_a : (n_a, m) int8 hard calls in {0, 1, 2}, -1 missing
    calls_b : (n_b, m) int8 on the same SNPs (default: ``calls_a``, all pairs within one cohort)
    block : SNPs per step; memory is ``O(n_a n_b + (n_a + n_b) block)`` whatever ``m``.

    Returns
    -------
    :class:`PairCounts`, each ``(n_a, n_b)``.
    """
    calls_b = calls_a if calls_b is None else calls_b
    n_a, n_b = calls_a.shape[0], calls_b.shape[0]
    l1 = np.zeros((n_a, n_b))
    shared = np.zeros((n_a, n_b))
    het_het = np.zeros((n_a, n_b))
    opposite = np.zeros((n_a, n_b))
    het_sum = np.zeros((n_a, n_b))
    # Every product counts small integers; float32 sums of such counts are exact below 2**24 per block.
    # |g_a - g_b| = (g_a - g_b)^2 - 2 [opposite homozygotes], so one product of the dosages, one of the
    # heterozygote indicators and one of the homozygote indicators give both the L1 distance and KING.
    within = calls_a is calls_b
    for start in range(0, calls_a.shape[1], block):
        a = calls_a[:, start : start + block]
        b = calls_b[:, start : start + block]
        a_obs, a_g, a_het = _indicators(a)
        # Within one cohort the same arrays on both sides let BLAS use its symmetric product (x @ x.T).
        b_obs, b_g, b_het = (a_obs, a_g, a_het) if within else _indicators(b)
        a_hom = np.hstack([a == 0, a == 2]).astype(np.float32)
        block_opposite = a_hom @ np.hstack([b == 2, b == 0]).astype(np.float32).T
        if a_obs.all() and b_obs.all():
            square_a = np.square(a_g).sum(axis=1)[:, None]
            square_b = np.square(b_g).sum(axis=1)[None, :]
            shared += a.shape[1]
            het_sum += a_het.sum(axis=1)[:, None] + b_het.sum(axis=1)[None, :]
        else:  # sums over jointly observed SNPs only (missing calls are 0 in every indicator)
            square_a = np.square(a_g) @ b_obs.T
            square_b = a_obs @ np.square(b_g).T
            shared += a_obs @ b_obs.T
            het_sum += np.hstack([a_het, a_obs]) @ np.hstack([b_obs, b_het]).T
        l1 += square_a + square_b - 2 * (a_g @ b_g.T) - 2 * block_opposite
        het_het += a_het @ b_het.T
        opposite += block_opposite
    return PairCounts(shared=shared, l1=l1, het_het=het_het, opposite=opposite, het_sum=het_sum)


def king_from_counts(counts: PairCounts) -> np.ndarray:
    """KING-robust kinship ``(N_AaAa - 2 N_AA,aa) / (N_Aa(i) + N_Aa(j))``, ``(n_a, n_b)`` float64;
    NaN where neither genome has a heterozygous call on the SNPs they share."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts.het_sum > 0, (counts.het_het - 2 * counts.opposite) / counts.het_sum, np.nan)


def genotype_distance(counts: PairCounts) -> np.ndarray:
    """Mean ``|g_a - g_b|`` per jointly observed SNP (0-2; 0 for identical genomes), ``(n_a, n_b)``
    float64; NaN where the two genomes share no observed SNP."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts.shared > 0, counts.l1 / counts.shared, np.nan)


def king_robust(calls_a: np.ndarray, calls_b: np.ndarray | None = None, block: int = SNP_BLOCK
                ) -> np.ndarray:
    """KING-robust kinship between every genome of ``calls_a`` and every genome of ``calls_b``.

    Parameters
    ----------
    calls_a : (n_a, m) int8 hard calls in {0, 1, 2}, -1 missing
    calls_b : (n_b, m) int8 on the same SNPs (default: ``calls_a``, a square within-cohort matrix whose
        diagonal is 0.5 wherever a genome has a heterozygous call)

    Returns
    -------
    (n_a, n_b) float64, NaN where undefined (no heterozygous call on the shared SNPs).

    Examples
    --------
    >>> king_robust(np.array([[1, 0, 2, 1], [1, 2, 0, 1]], dtype=np.int8)).round(3).tolist()
    [[0.5, -0.5], [-0.5, 0.5]]
    """
    return king_from_counts(pair_counts(calls_a, calls_b, block))


def relatives_above(king: np.ndarray, cutoff: float = KING_FIRST_DEGREE) -> np.ndarray:
    """Number of other genomes related to each genome above ``cutoff`` in a square KING matrix.

    Parameters
    ----------
    king : (n, n) within-cohort KING-robust kinship (diagonal ignored, NaN counts as unrelated)

    Returns
    -------
    (n,) int64
    """
    related = np.asarray(king) > cutoff
    np.fill_diagonal(related, False)
    return related.sum(axis=1)


def kinship_spectrum(kinship: np.ndarray, k: int = 20) -> np.ndarray:
    """The ``k`` largest eigenvalues of a kinship matrix as shares of its trace.

    Parameters
    ----------
    kinship : (n, n) symmetric (e.g. the centred GRM)

    Returns
    -------
    (min(k, n),) descending; comparable between cohorts of different sizes.
    """
    values = np.linalg.eigvalsh(0.5 * (kinship + kinship.T))[::-1][:k]
    return values / max(float(np.trace(kinship)), 1e-300)
