"""Centred relatedness (GEMMA ``-gk 1``) and its leave-one-chromosome-out (LOCO) parts.

GEMMA's centred kinship is ``K = X_c X_c^T / m`` where each column of ``X_c`` is one SNP's dosages with
missing calls replaced by the SNP's mean over *all* individuals in the genotype file and then centred on
that mean (Zhou & Stephens 2012); only the SNPs the caller passes enter (GEMMA: those passing its
filters). The LMM then re-centres ``K`` on the analysed individuals (:func:`double_centre`) before its
eigendecomposition.

Kinship is accumulated as an unscaled sum of outer products ``S = X_c X_c^T`` so that parts can be
subtracted: the LOCO kinship of chromosome ``c`` is ``(S - S_c) / (m - m_c)`` (GEMMA ``-loco``), with the
per-chromosome sums ``S_c`` taken in the same pass over the SNPs as ``S``.
"""

from __future__ import annotations

import numpy as np

from genosynth.genetics.dosages import centre, observed_means

BLOCK = 4096


def centred_genotypes(dosages: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """GEMMA's ``X_c``: :func:`genosynth.genetics.dosages.centre` in float64 (means over all ``n``
    individuals summed in float64), optionally only the individuals ``rows``.

    Returns
    -------
    (r, m) float64 with column means 0 over all ``n`` and an all-missing SNP a column of zeros; a float32
    block is never copied whole to float64.
    """
    return centre(dosages, observed_means(dosages, np.float64), rows=rows, dtype=np.float64)


def kinship_sum(dosages: np.ndarray) -> np.ndarray:
    """Unscaled centred kinship ``X_c X_c^T`` of a block of SNPs.

    Parameters
    ----------
    dosages : (n, m) float, NaN for missing (centred here on their own means)

    Returns
    -------
    (n, n) float64
    """
    centred = centred_genotypes(dosages)
    return centred @ centred.T


def centred_kinship(dosages: np.ndarray) -> np.ndarray:
    """GEMMA ``-gk 1`` kinship of the given SNPs (no filtering here; pass the SNPs that should enter).

    Parameters
    ----------
    dosages : (n, m) dosages in [0, 2], NaN for missing; m >= 1.

    Returns
    -------
    (n, n) float64 ``X_c X_c^T / m``.

    Examples
    --------
    >>> centred_kinship(np.array([[0.0, 2.0], [2.0, 0.0]])).tolist()
    [[1.0, -1.0], [-1.0, 1.0]]
    """
    m = dosages.shape[1]
    if m == 0:
        raise ValueError("kinship needs at least one SNP")
    return kinship_sum(dosages) / m


def centred_kinship_blocked(centred: np.ndarray, block: int = BLOCK) -> np.ndarray:
    """``X_c X_c^T / m`` of already centred genotypes, summed SNP block by SNP block in float64.

    Parameters
    ----------
    centred : (n, m) centred genotypes of any float dtype (e.g. float32 to halve the memory); only an
        ``(n, block)`` float64 slice is made at a time.

    Returns
    -------
    (n, n) float64 (zeros when m = 0).
    """
    out = np.zeros((centred.shape[0], centred.shape[0]))
    for lo in range(0, centred.shape[1], block):
        part = centred[:, lo : lo + block].astype(np.float64)
        out += part @ part.T
    return out / max(centred.shape[1], 1)


def chromosome_kinship_sums(centred: np.ndarray, chromosome: np.ndarray) -> dict[int, np.ndarray]:
    """Per-chromosome unscaled kinship ``S_c = X_c X_c^T`` of one block of SNPs, from one pass over it.

    Parameters
    ----------
    centred : (n, m) centred genotypes (:func:`centred_genotypes` of the block, float64)
    chromosome : (m,) int chromosome code of each SNP

    Returns
    -------
    ``{c: (n, n) float64}`` for each chromosome present in the block, in increasing code order; the sum
    of the values is the block's ``S``. Accumulated over blocks, ``S - S_c`` over ``m - m_c`` SNPs is the
    LOCO kinship of chromosome c (:func:`loco_kinship`).
    """
    sums = {}
    for c in np.unique(chromosome):
        part = centred[:, np.flatnonzero(chromosome == c)]
        sums[int(c)] = part @ part.T
    return sums


def double_centre(kinship: np.ndarray) -> np.ndarray:
    """``(I - 11^T/n) K (I - 11^T/n)``: GEMMA re-centres K on the analysed individuals before the LMM.

    Parameters
    ----------
    kinship : (n, n)

    Returns
    -------
    (n, n) float64 with every row and column summing to 0.
    """
    k = np.asarray(kinship, dtype=np.float64)
    row = k.mean(axis=1, keepdims=True)
    col = k.mean(axis=0, keepdims=True)
    return k - row - col + k.mean()


def loco_kinship(total_sum: np.ndarray, n_total: int, chromosome_sum: np.ndarray, n_chromosome: int
                 ) -> np.ndarray:
    """Kinship without one chromosome: ``(S - S_c) / (m - m_c)``.

    Parameters
    ----------
    total_sum : (n, n) unscaled kinship over all ``n_total`` SNPs (``K_full * m``).
    chromosome_sum : (n, n) unscaled kinship over the ``n_chromosome`` SNPs of the left-out chromosome.

    Returns
    -------
    (n, n) float64; a ``ValueError`` when no SNP is left.
    """
    remaining = n_total - n_chromosome
    if remaining <= 0:
        raise ValueError("leaving this chromosome out leaves no SNP for the kinship")
    return (total_sum - chromosome_sum) / remaining
