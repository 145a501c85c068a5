"""Load the cohorts being compared: a shared SNP subsample of dosages plus a fingerprint of every genome.

Comparisons need all three cohorts (training, holdout, synthetic) on the same SNPs. Pairwise metrics scale
with the number of SNPs, so they run on an evenly spaced SNP subsample; exact duplicate detection instead
fingerprints each genome over *all* SNPs while streaming the dataset chunk by chunk, so memory stays at one
chunk plus the subsample.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from genosynth.formats.dataset import Dataset
from genosynth.genetics.dosages import hard_calls


@dataclass
class CohortGenotypes:
    """One cohort on the SNP subsample.

    Attributes
    ----------
    dosages : (n, k) float32
        Dosages of the subsampled SNPs, NaN where missing.
    fingerprints : (n,) object
        Digest of each genome's hard calls over every SNP of the dataset (equal digest = identical genome).
    """

    name: str
    sample_ids: np.ndarray
    dosages: np.ndarray
    fingerprints: np.ndarray

    @property
    def n(self) -> int:
        return int(self.dosages.shape[0])

    def calls(self) -> np.ndarray:
        """Hard calls ``(n, k)`` int8 in {0, 1, 2}, ``-1`` missing."""
        return hard_calls(self.dosages)


def even_subsample(n_total: int, n_max: int) -> np.ndarray:
    """``min(n_total, n_max)`` evenly spaced indices into ``range(n_total)`` (deterministic, sorted)."""
    if n_total <= n_max:
        return np.arange(n_total, dtype=np.int64)
    return np.unique(np.linspace(0, n_total - 1, n_max).round().astype(np.int64))


def load_cohort(
    dataset: Dataset, snp_index: np.ndarray, *, name: str, sample_index: np.ndarray | None = None
) -> CohortGenotypes:
    """Stream ``dataset`` once: keep dosages of ``snp_index`` and fingerprint every genome on all SNPs.

    Parameters
    ----------
    snp_index : (k,) int
        Sorted SNP indices to keep.
    sample_index : (n,) int, optional
        Individuals to keep (default all), e.g. a deterministic subsample of a very large cohort.
    """
    rows = np.arange(dataset.n_samples) if sample_index is None else np.asarray(sample_index)
    kept = np.empty((len(rows), len(snp_index)), dtype=np.float32)
    digests = [hashlib.blake2b(digest_size=16) for _ in rows]
    filled = 0
    for start, block in dataset.iter_dosages():
        block = block[rows]
        stop = start + block.shape[1]
        # Row-major bytes of each individual's calls in this chunk, appended to its running digest.
        calls = np.ascontiguousarray(hard_calls(block))
        for digest, row in zip(digests, calls, strict=True):
            digest.update(row.tobytes())
        lo, hi = np.searchsorted(snp_index, [start, stop])
        if hi > lo:
            kept[:, filled : filled + hi - lo] = block[:, snp_index[lo:hi] - start]
            filled += hi - lo
    return CohortGenotypes(
        name=name,
        sample_ids=dataset.sample_ids[rows],
        dosages=kept,
        fingerprints=np.array([d.hexdigest() for d in digests], dtype=object),
    )
