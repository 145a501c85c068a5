"""The generate step: synthetic genotypes of one SNP batch -> ``generate/batch-NNNNN/``.

Loads the batch's fitted model from ``train/batch-NNNNN/`` and samples the synthetic cohort's calls
for the batch's own SNPs (``start:stop``), stored as int8 calls with ``-1`` for missing
(:func:`genosynth.run_state.write_generated`).
"""

from __future__ import annotations

import os

from genosynth import run_layout, run_state, storage
from genosynth.genetics.device import pick_device
from genosynth.models import load_model
from genosynth.run_config import RunConfig
from genosynth.run_state import BatchPlan


def run(run_url: str, batch: int | None = None) -> None:
    config = RunConfig.load(run_url)
    entry = BatchPlan.read(run_url).batch(batch, source=run_state.plan_url(run_url))
    plan = storage.read_json(run_layout.url(run_url, run_layout.PREP_PLAN))
    model = load_model(run_layout.url(run_url, run_layout.batch_key(run_layout.TRAIN, entry.batch)))
    device = pick_device(os.environ.get("GENOSYNTH_DEVICE"))
    dosages = model.sample(int(plan["n_synthetic"]), batch=entry, plan=plan, seed=config.seed, device=device)
    expected = (int(plan["n_synthetic"]), entry.n_snps)
    if dosages.shape != expected:
        raise RuntimeError(f"model {config.model} sampled {dosages.shape}, expected {expected}")
    run_state.write_generated(run_url, entry.batch, dosages)
