"""The train step: fit the configured genotype model on one SNP batch of ``prep/train``.

Reads ``prep/batches.json``, ``prep/plan.json`` and the batch's SNPs (with context) of ``prep/train``;
writes the fitted model to ``train/batch-NNNNN/`` (settings JSON + arrays). Runs on CUDA when present.
"""

from __future__ import annotations

import os

from genosynth import run_layout, storage
from genosynth.errors import InputError
from genosynth.formats.dataset import Dataset
from genosynth.models import get_family
from genosynth.models.base import pick_device
from genosynth.prep.step import PLAN
from genosynth.run_config import RunConfig


def load_batch(run_url: str, batch: int | None) -> dict:
    """The entry of ``prep/batches.json`` for ``batch`` (an :class:`InputError` when out of range)."""
    batches = storage.read_json(run_layout.url(run_url, run_layout.PREP_BATCHES))["batches"]
    if batch is None or not 0 <= batch < len(batches):
        raise InputError(run_layout.url(run_url, run_layout.PREP_BATCHES),
                         f"batch {batch!r} out of range: the run has batches 0..{len(batches) - 1}")
    return batches[batch]


def run(run_url: str, batch: int | None = None) -> None:
    config = RunConfig.load(run_url)
    entry = load_batch(run_url, batch)
    plan = storage.read_json(run_layout.url(run_url, PLAN))
    train = Dataset.open(run_layout.url(run_url, run_layout.PREP_TRAIN))
    dosages = train.dosages(entry["context_start"], entry["context_stop"])
    device = pick_device(os.environ.get("GENOSYNTH_DEVICE"))
    model = get_family(config.model).fit(dosages, batch=entry, plan=plan, seed=config.seed,
                                         options=dict(config.model_options), device=device)
    model.save(run_layout.url(run_url, run_layout.batch_key(run_layout.TRAIN, entry["batch"])))
