"""The assemble step: stitch the generated batches into ``synthetic/`` and synthesise its phenotypes.

The synthetic dataset has the same variants table as ``prep/train`` and, by default, as many individuals.
Its phenotypes come from :mod:`genosynth.phenotypes` fitted on ``prep/train`` and conditioned on the
synthetic genotypes. It is written unreleased (``released: false``); the compare step's privacy gate
releases it.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from genosynth import run_layout, storage
from genosynth.formats.dataset import Dataset, DatasetWriter
from genosynth.generate.step import read_batch_dosages
from genosynth.phenotypes.model import fit_phenotype_model, sample_phenotypes
from genosynth.prep.step import PLAN
from genosynth.run_config import RunConfig

PHENOTYPE_MODEL_LOG = run_layout.PHENOTYPE_MODEL_LOG


def run(run_url: str, batch: int | None = None) -> None:
    config = RunConfig.load(run_url)
    layout = storage.read_json(run_layout.url(run_url, run_layout.PREP_BATCHES))
    batches = sorted(layout["batches"], key=lambda b: b["start"])
    plan = storage.read_json(run_layout.url(run_url, PLAN))
    train = Dataset.open(run_layout.url(run_url, run_layout.PREP_TRAIN))
    n = int(plan["n_synthetic"])
    covariates = list(config.covariates) or train.covariates
    model = fit_phenotype_model(
        train, traits=list(config.traits), covariates=covariates, groups=layout["phenotype_groups"],
        options=config.model_options.get("phenotypes"),
    )
    storage.write_json(run_layout.url(run_url, PHENOTYPE_MODEL_LOG), model.describe())

    url = run_layout.url(run_url, run_layout.SYNTHETIC)
    writer = DatasetWriter(url, n_samples=n, chunk_size=train.chunk_size)

    def blocks() -> Iterator[tuple[int, np.ndarray]]:
        # One pass over the batches feeds both the genotype writer and the phenotype sampler.
        for entry in batches:
            dosages = read_batch_dosages(run_url, entry["batch"])
            writer.add(dosages)
            yield entry["start"], dosages

    ids = [f"syn{i + 1:06d}" for i in range(n)]
    samples = sample_phenotypes(model, blocks(), n=n, seed=config.seed, ids=ids)
    traits = list(config.traits) or train.traits
    writer.commit(
        samples, train.variants, traits=traits, covariates=covariates, column_kinds=train.column_kinds,
        provenance={"synthetic": True, "model": config.model, "model_options": config.model_options,
                    "seed": config.seed, "source": config.dataset_url, "plan": {
                        k: v for k, v in plan.items() if k != "calibration"}},
        extra={"released": False},
    )
