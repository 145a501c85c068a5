"""The assemble step: stitch the generated batches into ``synthetic/`` and synthesise its phenotypes.

The synthetic dataset has the same variants table as ``prep/train`` and, by default, as many individuals.
Its phenotypes come from :mod:`genosynth.phenotypes` fitted on ``prep/train`` and conditioned on the
synthetic genotypes. Whether it is released is decided later, by the compare step's privacy gate, in its
own object ``compare/release.json`` (this step's output is never rewritten).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from genosynth import run_layout, storage
from genosynth.formats.dataset import Dataset, DatasetWriter
from genosynth.phenotypes.model import fit_phenotype_model, sample_phenotypes
from genosynth.run_config import RunConfig
from genosynth.run_state import BatchPlan, read_generated

PHENOTYPE_MODEL_LOG = run_layout.PHENOTYPE_MODEL_LOG


def run(run_url: str, batch: int | None = None) -> None:
    config = RunConfig.load(run_url)
    batch_plan = BatchPlan.read(run_url)
    plan = storage.read_json(run_layout.url(run_url, run_layout.PREP_PLAN))
    train = Dataset.open(run_layout.url(run_url, run_layout.PREP_TRAIN))
    n = int(plan["n_synthetic"])
    covariates = list(config.covariates) or train.covariates
    model = fit_phenotype_model(
        train, traits=list(config.traits), covariates=covariates,
        groups=[list(g) for g in batch_plan.phenotype_groups],
        options=config.model_options.get("phenotypes"),
    )
    storage.write_json(run_layout.url(run_url, PHENOTYPE_MODEL_LOG), model.describe())

    url = run_layout.url(run_url, run_layout.SYNTHETIC)
    writer = DatasetWriter(url, n_samples=n, chunk_size=train.chunk_size)

    def blocks() -> Iterator[tuple[int, np.ndarray]]:
        # One pass over the batches feeds both the genotype writer and the phenotype sampler.
        for entry in batch_plan.in_genome_order():
            dosages = read_generated(run_url, entry.batch)
            writer.add(dosages)
            yield entry.start, dosages

    ids = [f"syn{i + 1:06d}" for i in range(n)]
    samples = sample_phenotypes(model, blocks(), n=n, seed=config.seed, ids=ids)
    traits = list(config.traits) or train.traits
    writer.commit(
        samples, train.variants, traits=traits, covariates=covariates, column_kinds=train.column_kinds,
        provenance={"synthetic": True, "model": config.model, "model_options": config.model_options,
                    "seed": config.seed, "source": config.dataset_url, "plan": {
                        k: v for k, v in plan.items() if k != "calibration"}},
    )
