"""``execute_step``: run one step (or one batch of it) exactly once per run, and account for it.

This is the single wrapper that both runners use: the local runner calls it in its workers and every
Argo task calls it through ``genosynth step NAME --run RUN_URL [--batch K]``. Order of effects:

1. skip when the step's marker ``RUN/_markers/<step>[-NNNNN].json`` exists (on-exit steps always run);
2. record the attempt under ``RUN/_markers/attempts/`` (numbering survives kills and pod retries; each
   record is created only if its name is free, so two attempts never share a number);
3. run the step function and time it;
4. append one ledger record (also when the step failed: the time was spent and is billed);
5. commit: write the marker last (``storage.commit``), only on success, so a failed or killed attempt
   leaves no marker.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

from genosynth import pipeline, run_layout, storage
from genosynth.errors import InputError
from genosynth.genetics.device import cpu_threads
from genosynth.pipeline import STEPS, Step

#: Set on cluster pods by the rendered templates (e.g. ``nvidia-tesla-t4`` and ``1``; ``cpu`` and ``2``).
DEVICE_KIND_ENV = "GENOSYNTH_DEVICE_KIND"
DEVICE_COUNT_ENV = "GENOSYNTH_DEVICE_COUNT"


@dataclass(frozen=True)
class StepOutcome:
    """What :func:`execute_step` did: ``ran`` is False when the step was already committed."""

    step: str
    batch: int | None
    ran: bool
    seconds: float = 0.0
    attempt: int = 0


def execute_step(
    run_url: str,
    name: str,
    batch: int | None = None,
    *,
    attempt: int | None = None,
    steps: Sequence[Step] = STEPS,
) -> StepOutcome:
    """Run step ``name`` (batch ``batch`` of a fan-out step) of the run at ``run_url`` unless committed.

    Parameters
    ----------
    attempt : 1-based attempt number for the ledger; ``None`` numbers attempts from the attempt records
        kept under the run (so a rerun after a kill is attempt 2).
    steps : the DAG to look ``name`` up in (the pipeline's by default).
    """
    step = pipeline.step_named(name, steps)
    _check_batch(run_url, step, batch)
    if not step.on_exit and pipeline.is_committed(run_url, name, batch):
        return StepOutcome(name, batch, ran=False)

    attempt = _record_attempt(run_url, name, batch, attempt)
    function = step.function()
    started = time.perf_counter()

    def bill(outcome: str) -> tuple[float, str, int]:
        seconds, (kind, count) = time.perf_counter() - started, device()
        _account(run_url, step=name, batch=batch, attempt=attempt, seconds=seconds,
                 device_kind=kind, device_count=count, outcome=outcome)
        return seconds, kind, count

    try:
        function(run_url, batch)
    except BaseException:
        # A failed attempt is billed too; its own error is the one to report, not a ledger hiccup.
        try:
            bill("failed")
        except Exception as ledger_error:
            print(
                f"warning: could not record the failed attempt in the ledger: {ledger_error}", file=sys.stderr
            )
        raise
    seconds, kind, count = bill("succeeded")
    storage.commit(
        pipeline.marker_url(run_url, name, batch),
        {
            "step": name,
            "batch": batch,
            "attempt": attempt,
            "seconds": round(seconds, 3),
            "device_kind": kind,
            "device_count": count,
            "committed_at": time.time(),
        },
    )
    return StepOutcome(name, batch, ran=True, seconds=seconds, attempt=attempt)


def _check_batch(run_url: str, step: Step, batch: int | None) -> None:
    if step.per_batch and batch is None:
        raise InputError("step", f"{step.name!r} is a per-batch step: give --batch K (see prep/batches.json)")
    if not step.per_batch and batch is not None:
        raise InputError("step", f"{step.name!r} runs once per run: it takes no --batch")
    if batch is not None and batch not in set(pipeline.read_batches(run_url)):
        raise InputError(
            run_layout.url(run_url, run_layout.PREP_BATCHES), f"batch {batch} is not in the batch list"
        )


def _record_attempt(run_url: str, name: str, batch: int | None, attempt: int | None) -> int:
    """Create ``attempts/<node>/<NNNN>.json`` under the first free number (or ``attempt``'s own)."""
    folder = run_layout.url(run_url, run_layout.MARKERS, "attempts", pipeline.node_id(name, batch))
    record = {"started_at": time.time(), "host": socket.gethostname(), "pid": os.getpid()}
    payload = (json.dumps(record, sort_keys=True) + "\n").encode()
    if attempt is not None:
        storage.write_bytes(storage.join(folder, f"{attempt:04d}.json"), payload)
        return attempt
    number = len(storage.list_keys(folder)) + 1
    while not storage.create(storage.join(folder, f"{number:04d}.json"), payload):
        number += 1  # taken by a concurrent attempt: the next number is ours
    return number


def device() -> tuple[str, int]:
    """The accelerator this process runs on: ``("cpu", cores)`` or e.g. ``("nvidia-tesla-t4", 1)``.

    The environment wins (cluster templates set what the pod requested, which is what is billed);
    otherwise a CUDA device is reported when torch is already loaded and sees one.
    """
    kind = os.environ.get(DEVICE_KIND_ENV)
    count = os.environ.get(DEVICE_COUNT_ENV)
    if kind:
        return kind, int(count or 1)
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        gpu_name = torch.cuda.get_device_name(0).lower().replace(" ", "-")
        kind = gpu_name if gpu_name.startswith("nvidia") else f"nvidia-{gpu_name}"
        return kind, torch.cuda.device_count()
    return "cpu", int(count or cpu_threads())


def _account(run_url: str, **record: object) -> None:
    from genosynth.cost import publish

    publish.account(run_url, **record)
