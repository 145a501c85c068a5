"""The prep step: QC, an 80/20 split into ``prep/train`` and ``prep/holdout``, SNP batches, the plan.

Outputs under the run URL (the runner writes the step's commit marker afterwards):

- ``prep/cohort``: every QC'd individual (the real side of the GWAS comparison: the synthetic cohort has
  its size);
- ``prep/train``, ``prep/holdout``: internal datasets, the same QC'd SNPs, disjoint individuals;
- ``prep/qc.json``: the QC log (counts per reason) and the split;
- ``prep/batches.json``: SNP batches and phenotype column groups (see :mod:`genosynth.prep.batching`);
- ``prep/plan.json``: the genotype model family's cohort-wide plan (e.g. the calibrated switch rate).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from genosynth import run_layout, storage
from genosynth.formats.dataset import Dataset, DatasetWriter
from genosynth.models import get_family
from genosynth.prep.batching import make_batches, phenotype_groups
from genosynth.run_config import RunConfig
from genosynth.run_state import BatchPlan


def split_individuals(n: int, holdout_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted train and holdout row indices of ``n`` individuals (holdout: ``round(fraction * n)``)."""
    if not 0.0 < holdout_fraction < 1.0:
        raise ValueError(f"holdout_fraction must be in (0, 1), got {holdout_fraction}")
    order = np.random.default_rng([seed, 101]).permutation(n)
    n_holdout = max(1, round(holdout_fraction * n))
    return np.sort(order[n_holdout:]), np.sort(order[:n_holdout])


def _run_qc(dataset: Dataset, options: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    try:
        from genosynth.prep.qc import run_qc
    except ImportError:
        # QC lives in genosynth.prep.qc; without it every individual and SNP is kept (and the log says so).
        keep = {"samples": dataset.n_samples, "snps": dataset.n_variants}
        return (np.ones(dataset.n_samples, bool), np.ones(dataset.n_variants, bool),
                {"qc": "not applied", "kept": keep})
    result = run_qc(dataset, **options)
    return np.asarray(result.sample_mask, bool), np.asarray(result.snp_mask, bool), dict(result.log)


def write_subset(dataset: Dataset, url: str, sample_index: np.ndarray, snp_mask: np.ndarray) -> Dataset:
    """Copy the chosen individuals and SNPs of ``dataset`` to a new dataset at ``url``, chunk by chunk."""
    writer = DatasetWriter(url, n_samples=len(sample_index), chunk_size=dataset.chunk_size)
    for start, block in dataset.iter_dosages():
        keep = snp_mask[start : start + block.shape[1]]
        if keep.any():
            writer.add(block[np.ix_(sample_index, np.flatnonzero(keep))])
    samples = dataset.samples.iloc[sample_index].reset_index(drop=True)
    variants = dataset.variants.loc[snp_mask].reset_index(drop=True)
    return writer.commit(
        samples, variants, traits=dataset.traits, covariates=dataset.covariates,
        column_kinds=dataset.column_kinds, provenance={**dataset.provenance, "subset_of": dataset.url},
    )


def run(run_url: str, batch: int | None = None) -> None:
    config = RunConfig.load(run_url)
    source = Dataset.open(config.dataset_url)
    sample_mask, snp_mask, qc_log = _run_qc(source, dict(config.qc))
    kept = np.flatnonzero(sample_mask)
    train_rows, holdout_rows = split_individuals(len(kept), config.holdout_fraction, config.seed)
    write_subset(source, run_layout.url(run_url, run_layout.PREP_COHORT), kept, snp_mask)
    train = write_subset(source, run_layout.url(run_url, run_layout.PREP_TRAIN), kept[train_rows], snp_mask)
    holdout = write_subset(source, run_layout.url(run_url, run_layout.PREP_HOLDOUT), kept[holdout_rows],
                           snp_mask)
    storage.write_json(run_layout.url(run_url, run_layout.PREP_QC_LOG), {
        **qc_log, "split": {"train": train.n_samples, "holdout": holdout.n_samples, "seed": config.seed,
                            "holdout_fraction": config.holdout_fraction},
    })
    batches = make_batches(train.variants, config.batch_snps, config.model_options.get("context_snps"))
    columns = [c for c in train.samples.columns if c != "id"]
    batch_plan = BatchPlan.build(batches, phenotype_groups(train.samples, columns))
    batch_plan.write(run_url)
    family = get_family(config.model)
    plan = family.plan(train, holdout, batch_plan.batches, seed=config.seed,
                       options=dict(config.model_options))
    storage.write_json(run_layout.url(run_url, run_layout.PREP_PLAN), {"model": config.model, **plan})
