"""Counter-based random numbers: a pure function of (seed, stream, individual, SNP index).

Batches of one run are generated in parallel, on different machines, yet must agree on each synthetic
individual's ancestry path where they meet. Drawing every random quantity of the path from a hash of its
coordinates (instead of a sequential generator) lets any batch recompute any stretch of the path.
"""

from __future__ import annotations

import math

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_K_INDIVIDUAL = np.uint64(0xD6E8FEB86659FD93)
_K_SNP = np.uint64(0xA0761D6478BD642F)
_K_STREAM = np.uint64(0xE7037ED1A0B428DB)


def _finalise(x: np.ndarray) -> np.ndarray:
    # splitmix64 finaliser: a bijection on 64-bit words with full avalanche.
    x = x ^ (x >> np.uint64(30))
    x = x * _M1
    x = x ^ (x >> np.uint64(27))
    x = x * _M2
    return x ^ (x >> np.uint64(31))


def hash_words(seed: int, stream: int, individuals: np.ndarray, snps: np.ndarray) -> np.ndarray:
    """64-bit words ``(len(individuals), len(snps))``, uniformly scrambled, for each coordinate pair."""
    with np.errstate(over="ignore"):
        base = _finalise(np.uint64(seed % 2**64) * _GOLDEN + np.uint64(stream) * _K_STREAM)
        rows = _finalise(np.asarray(individuals, dtype=np.uint64) * _K_INDIVIDUAL + base)
        cols = _finalise(np.asarray(snps, dtype=np.uint64) * _K_SNP)
        return _finalise(rows[:, None] ^ cols[None, :])


def hash_pairs(seed: int, stream: int, individuals: np.ndarray, snps: np.ndarray) -> np.ndarray:
    """Like :func:`hash_words` but element-wise: ``individuals`` and ``snps`` have the same shape."""
    with np.errstate(over="ignore"):
        base = _finalise(np.uint64(seed % 2**64) * _GOLDEN + np.uint64(stream) * _K_STREAM)
        rows = _finalise(np.asarray(individuals, dtype=np.uint64) * _K_INDIVIDUAL + base)
        cols = _finalise(np.asarray(snps, dtype=np.uint64) * _K_SNP)
        return _finalise(rows ^ cols)


def hash_below(seed: int, stream: int, individuals: np.ndarray, snps: np.ndarray, probability: float
               ) -> np.ndarray:
    """Bernoulli(``probability``) events, ``(len(individuals), len(snps))`` bool.

    An event is a uniform number ``u = (w >> 11) 2^-53`` in [0, 1) below ``probability``; compared as
    integers, ``(w >> 11) < ceil(probability 2^53)``, which is the same test without a float array.
    """
    words = hash_words(seed, stream, individuals, snps)
    threshold = math.ceil(min(max(float(probability), 0.0), 1.0) * 2**53)
    return (words >> np.uint64(11)) < np.uint64(threshold)


def hash_integers(seed: int, stream: int, individuals: np.ndarray, snps: np.ndarray, high: int) -> np.ndarray:
    """Integers in ``[0, high)``, ``(len(individuals), len(snps))`` int64."""
    words = hash_words(seed, stream, individuals, snps)
    return (words % np.uint64(max(high, 1))).astype(np.int64)
