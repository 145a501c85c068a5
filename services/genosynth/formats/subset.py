"""Stream a subset of a dataset (chosen individuals x chosen SNPs) into a new dataset."""

from __future__ import annotations

import numpy as np

from genosynth import storage
from genosynth.formats.dataset import Dataset, DatasetWriter


def subset_dataset(
    dataset: Dataset, out_url: str, sample_index: np.ndarray, snp_mask: np.ndarray, *,
    batch_size: int | None = None,
) -> Dataset:
    """Write individuals ``sample_index`` and SNPs ``snp_mask`` of ``dataset`` to ``out_url``.

    Parameters
    ----------
    sample_index : (k,) int, rows of ``dataset.samples`` in the order wanted (any order, no repeats
        needed but allowed).
    snp_mask : (m,) bool over the dataset's SNPs; SNP order is kept.
    batch_size : SNPs read per step (default: the stored chunk size). Memory is O(n * batch_size).

    Allele frequencies are recomputed on the kept individuals; the descriptor is written last.
    """
    sample_index = np.asarray(sample_index, dtype=np.int64)
    snp_mask = np.asarray(snp_mask, dtype=bool)
    if snp_mask.shape != (dataset.n_variants,):
        raise ValueError(f"snp_mask has shape {snp_mask.shape}, expected ({dataset.n_variants},)")
    if sample_index.size and (sample_index.min() < 0 or sample_index.max() >= dataset.n_samples):
        raise ValueError(f"sample_index outside [0, {dataset.n_samples})")
    with storage.staged_output(out_url):
        writer = DatasetWriter(out_url, n_samples=len(sample_index), chunk_size=dataset.chunk_size)
        for start, block in dataset.iter_dosages(batch_size):
            keep = np.flatnonzero(snp_mask[start : start + block.shape[1]])
            if keep.size:
                writer.add(block[np.ix_(sample_index, keep)])
        samples = dataset.samples.iloc[sample_index].reset_index(drop=True)
        variants = dataset.variants.loc[snp_mask].reset_index(drop=True).drop(columns=["af"])
        return writer.commit(
            samples, variants, traits=dataset.traits, covariates=dataset.covariates,
            column_kinds=dataset.column_kinds,
            provenance={**dataset.provenance, "subset_of": dataset.url,
                        "subset": {"samples": len(sample_index), "snps": int(snp_mask.sum())}},
        )
