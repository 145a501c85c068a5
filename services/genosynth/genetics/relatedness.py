"""Relatedness between genomes on hard calls (KING-robust, genotype distance) and summaries of kinship
matrices.

KING-robust kinship (Manichaikul et al. 2010, Bioinformatics 26:2867) of genomes i and j over the SNPs
observed in both, with ``N_Aa(i)`` the heterozygous calls of i on those SNPs:

- within-family form ``(N_AaAa - 2 N_AA,aa) / (N_Aa(i) + N_Aa(j))`` (what the privacy metrics and the
  mosaic model's family sizes use);
- between-family form ``(N_AaAa - 2 N_AA,aa) / (2 min N_Aa) + 1/2 - (N_Aa(i) + N_Aa(j)) / (4 min N_Aa)``,
  robust to the two genomes having different heterozygosity; PLINK 2's ``--make-king`` reports this one.

Both are equal when ``N_Aa(i) = N_Aa(j)``; 0.5 for duplicates (monozygotic twins), about 0.25, 0.125,
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
    het_a, het_b : ``N_Aa(a)``, ``N_Aa(b)``, heterozygous calls of genome a, of genome b
    """

    shared: np.ndarray
    l1: np.ndarray
    het_het: np.ndarray
    opposite: np.ndarray
    het_a: np.ndarray
    het_b: np.ndarray

    @property
    def het_sum(self) -> np.ndarray:
        """``N_Aa(a) + N_Aa(b)``, the within-family KING denominator."""
        return self.het_a + self.het_b


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
    het_a = np.zeros((n_a, n_b))
    het_b = np.zeros((n_a, n_b))
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
            het_a += a_het.sum(axis=1)[:, None]
            het_b += b_het.sum(axis=1)[None, :]
        else:  # sums over jointly observed SNPs only (missing calls are 0 in every indicator)
            square_a = np.square(a_g) @ b_obs.T
            square_b = a_obs @ np.square(b_g).T
            shared += a_obs @ b_obs.T
            het_a += a_het @ b_obs.T
            het_b += a_obs @ b_het.T
        l1 += square_a + square_b - 2 * (a_g @ b_g.T) - 2 * block_opposite
        het_het += a_het @ b_het.T
        opposite += block_opposite
    return PairCounts(shared=shared, l1=l1, het_het=het_het, opposite=opposite, het_a=het_a, het_b=het_b)


def manhattan_distance(calls_a: np.ndarray, calls_b: np.ndarray, block: int = SNP_BLOCK) -> np.ndarray:
    """Mean ``|g_a - g_b|`` per jointly observed SNP between every genome of ``calls_a`` and of ``calls_b``:
    :func:`genotype_distance` of :func:`pair_counts`, without the KING counts.

    With one-hot calls ``A_u = [g_a = u]`` the sum is ``sum_u A_u (sum_v |u - v| B_v)^T``: one product of
    width 3 per SNP block, and one more for the jointly observed SNPs where a call is missing.

    Parameters
    ----------
    calls_a : (n_a, m) int8 hard calls in {0, 1, 2}, -1 missing; calls_b : (n_b, m) on the same SNPs

    Returns
    -------
    (n_a, n_b) float64 in [0, 2]; NaN where the two genomes share no observed SNP.
    """
    l1 = np.zeros((calls_a.shape[0], calls_b.shape[0]))
    shared = np.zeros_like(l1)
    for start in range(0, calls_a.shape[1], block):
        a = calls_a[:, start : start + block]
        b = calls_b[:, start : start + block]
        a0, a1, a2 = a == 0, a == 1, a == 2
        b0, b1, b2 = (b == 0).astype(np.float32), (b == 1).astype(np.float32), (b == 2).astype(np.float32)
        # Counts of small integers: float32 products are exact below 2**24 per block.
        l1 += (np.hstack([a0, a1, a2]).astype(np.float32)
               @ np.hstack([b1 + 2 * b2, b0 + b2, 2 * b0 + b1]).T)
        a_obs, b_obs = a >= 0, b >= 0
        if a_obs.all() and b_obs.all():
            shared += a.shape[1]
        else:
            shared += a_obs.astype(np.float32) @ b_obs.astype(np.float32).T
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(shared > 0, l1 / shared, np.nan)


def king_from_counts(counts: PairCounts, *, between_family: bool = False) -> np.ndarray:
    """KING-robust kinship from pair counts, ``(n_a, n_b)`` float64.

    The within-family form (default) is NaN where neither genome has a heterozygous call on the SNPs
    they share; the between-family form (``between_family=True``, PLINK 2's) where either has none.
    """
    numerator = counts.het_het - 2 * counts.opposite
    with np.errstate(invalid="ignore", divide="ignore"):
        if not between_family:
            het_sum = counts.het_sum
            return np.where(het_sum > 0, numerator / het_sum, np.nan)
        smaller = np.minimum(counts.het_a, counts.het_b)
        value = numerator / (2 * smaller) + 0.5 - (counts.het_a + counts.het_b) / (4 * smaller)
        return np.where(smaller > 0, value, np.nan)


def genotype_distance(counts: PairCounts) -> np.ndarray:
    """Mean ``|g_a - g_b|`` per jointly observed SNP (0-2; 0 for identical genomes), ``(n_a, n_b)``
    float64; NaN where the two genomes share no observed SNP."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts.shared > 0, counts.l1 / counts.shared, np.nan)


def king_robust(calls_a: np.ndarray, calls_b: np.ndarray | None = None, *, between_family: bool = False,
                block: int = SNP_BLOCK) -> np.ndarray:
    """KING-robust kinship between every genome of ``calls_a`` and every genome of ``calls_b``.

    Parameters
    ----------
    calls_a : (n_a, m) int8 hard calls in {0, 1, 2}, -1 missing
    calls_b : (n_b, m) int8 on the same SNPs (default: ``calls_a``, a square within-cohort matrix whose
        diagonal is 0.5 wherever a genome has a heterozygous call)
    between_family : the between-family form (PLINK 2 ``--make-king``) instead of the within-family one

    Returns
    -------
    (n_a, n_b) float64, NaN where undefined (no heterozygous call on the shared SNPs).

    Examples
    --------
    >>> king_robust(np.array([[1, 0, 2, 1], [1, 2, 0, 1]], dtype=np.int8)).round(3).tolist()
    [[0.5, -0.5], [-0.5, 0.5]]
    """
    return king_from_counts(pair_counts(calls_a, calls_b, block), between_family=between_family)


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
