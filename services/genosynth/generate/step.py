"""The generate step: synthetic genotypes of one SNP batch -> ``generate/batch-NNNNN/``.

Loads the batch's fitted model from ``train/batch-NNNNN/`` and samples the synthetic cohort's calls
for the batch's own SNPs (``start:stop``), stored as int8 calls with ``-1`` for missing.
"""

from __future__ import annotations

import os

import numpy as np

from genosynth import run_layout, storage
from genosynth.models import load_model
from genosynth.models.arrays import read_arrays, to_calls, to_dosages, write_arrays
from genosynth.models.base import pick_device
from genosynth.prep.step import PLAN
from genosynth.run_config import RunConfig
from genosynth.train.step import load_batch

CALLS = "calls.arrays.z"


def batch_url(run_url: str, batch: int) -> str:
    return run_layout.url(run_url, run_layout.batch_key(run_layout.GENERATE, batch))


def read_batch_dosages(run_url: str, batch: int) -> np.ndarray:
    """Synthetic dosages of one generated batch, ``(n_synthetic, stop - start)`` float32 with NaN."""
    return to_dosages(read_arrays(storage.join(batch_url(run_url, batch), CALLS))["calls"])


def run(run_url: str, batch: int | None = None) -> None:
    config = RunConfig.load(run_url)
    entry = load_batch(run_url, batch)
    plan = storage.read_json(run_layout.url(run_url, PLAN))
    model = load_model(run_layout.url(run_url, run_layout.batch_key(run_layout.TRAIN, entry["batch"])))
    device = pick_device(os.environ.get("GENOSYNTH_DEVICE"))
    dosages = model.sample(int(plan["n_synthetic"]), batch=entry, plan=plan, seed=config.seed, device=device)
    expected = (int(plan["n_synthetic"]), entry["stop"] - entry["start"])
    if dosages.shape != expected:
        raise RuntimeError(f"model {config.model} sampled {dosages.shape}, expected {expected}")
    write_arrays(storage.join(batch_url(run_url, entry["batch"]), CALLS), {"calls": to_calls(dosages)})
