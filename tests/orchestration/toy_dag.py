"""A small DAG with the pipeline's shape (prep -> train[batch] -> generate[batch] -> assemble, on-exit
finalize) whose steps do tiny, deterministic real work on storage. The runner tests drive it to check
scheduling, resume and failure handling independently of the statistics of the real steps.

Set ``TOY_FAIL_TRAIN_BATCH=K`` in the environment to make batch K of ``train`` fail.
"""

from __future__ import annotations

import os

from genosynth import pipeline, run_layout, storage
from genosynth.errors import InputError
from genosynth.pipeline import Step
from genosynth.resources import Resources
from genosynth.run_config import RunConfig
from genosynth.run_state import BatchPlan

N_BATCHES = 5


def prep(run_url: str, batch: int | None = None) -> None:
    config = RunConfig.load(run_url)
    if config.model == "bad-model":
        raise InputError(
            run_layout.url(run_url, run_layout.CONFIG), "unknown model 'bad-model'", column="model"
        )
    n_batches = config.model_options.get("n_batches", N_BATCHES)
    batches = [{"batch": b, "chr": "1", "start": 10 * b, "stop": 10 * b + 10, "context_start": 10 * b,
                "context_stop": 10 * b + 10, "run_start": 0, "positioned": True} for b in range(n_batches)]
    BatchPlan.build(batches).write(run_url)


def train(run_url: str, batch: int | None = None) -> None:
    if os.environ.get("TOY_FAIL_TRAIN_BATCH") == str(batch):
        raise RuntimeError(f"simulated failure of batch {batch}")
    seed = RunConfig.load(run_url).seed
    storage.write_json(
        run_layout.url(run_url, run_layout.batch_key(run_layout.TRAIN, batch), "model.json"),
        {"weight": seed * 1000 + batch},
    )


def generate(run_url: str, batch: int | None = None) -> None:
    # Batch k may only start once batch k of train committed (and not before the other batches need to).
    if not pipeline.is_committed(run_url, "train", batch):
        raise RuntimeError(f"generate batch {batch} started before train batch {batch} committed")
    model = storage.read_json(
        run_layout.url(run_url, run_layout.batch_key(run_layout.TRAIN, batch), "model.json")
    )
    storage.write_json(
        run_layout.url(run_url, run_layout.batch_key(run_layout.GENERATE, batch), "data.json"),
        {"values": [model["weight"] + i for i in range(3)]},
    )


def assemble(run_url: str, batch: int | None = None) -> None:
    total = 0
    for b in pipeline.read_batches(run_url):
        data = storage.read_json(
            run_layout.url(run_url, run_layout.batch_key(run_layout.GENERATE, b), "data.json")
        )
        total += sum(data["values"])
    storage.write_json(run_layout.url(run_url, run_layout.SYNTHETIC, "total.json"), {"total": total})


def finalize(run_url: str, batch: int | None = None) -> None:
    storage.write_json(run_layout.url(run_url, "finalized.json"), {"ok": True})


_HERE = __name__
STEPS = (
    Step("prep", f"{_HERE}:prep", "batches", outputs=(run_layout.PREP_BATCHES,), resources=Resources()),
    Step(
        "train",
        f"{_HERE}:train",
        "per batch",
        after=("prep",),
        per_batch=True,
        outputs=("train/batch-{batch}",),
        resources=Resources(gpu=1),
    ),
    Step(
        "generate",
        f"{_HERE}:generate",
        "per batch",
        after=("train",),
        per_batch=True,
        outputs=("generate/batch-{batch}",),
    ),
    Step("assemble", f"{_HERE}:assemble", "stitch", after=("generate",), outputs=(run_layout.SYNTHETIC,)),
    Step("finalize", f"{_HERE}:finalize", "exit", on_exit=True, outputs=("finalized.json",)),
)
STEPS_REF = f"{_HERE}:STEPS"
