"""The train step: fit the configured genotype model on one SNP batch of ``prep/train``.

Reads ``prep/batches.json``, ``prep/plan.json`` and the batch's SNPs (with context) of ``prep/train``;
writes the fitted model to ``train/batch-NNNNN/`` (settings JSON + arrays). Runs on CUDA when present.
"""

from __future__ import annotations

import os

from genosynth import run_layout, storage
from genosynth.formats.dataset import Dataset
from genosynth.genetics.device import pick_device
from genosynth.models import get_family
from genosynth.run_config import RunConfig
from genosynth.run_state import BatchPlan, plan_url


def run(run_url: str, batch: int | None = None) -> None:
    config = RunConfig.load(run_url)
    entry = BatchPlan.read(run_url).batch(batch, source=plan_url(run_url))
    plan = storage.read_json(run_layout.url(run_url, run_layout.PREP_PLAN))
    train = Dataset.open(run_layout.url(run_url, run_layout.PREP_TRAIN))
    dosages = train.dosages(entry.context_start, entry.context_stop)
    device = pick_device(os.environ.get("GENOSYNTH_DEVICE"))
    model = get_family(config.model).fit(dosages, batch=entry, plan=plan, seed=config.seed,
                                         options=dict(config.model_options), device=device)
    model.save(run_layout.url(run_url, run_layout.batch_key(run_layout.TRAIN, entry.batch)))
