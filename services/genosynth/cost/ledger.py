"""The cost ledger: one JSON object per step attempt under ``RUN/ledger/``, never rewritten.

Each record is its own object with a unique key (``<step>.<batch>.a<attempt>.<uuid>.json``), so pods
running batches at the same time never overwrite each other and a retried attempt adds a record instead
of replacing one. Totals are always recomputed from the records: the ledger is the source of truth, the
Prometheus counters are derived from it (``genosynth.cost.metrics``, pushed by ``genosynth.cost.publish``).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from genosynth import run_layout, run_state, storage
from genosynth.cost import prices
from genosynth.cost.keys import TRAIN_STEP, group_prefix
from genosynth.errors import InputError
from genosynth.run_config import RunConfig

OUTCOMES = ("succeeded", "failed")


def ledger_url(run_url: str) -> str:
    return run_layout.url(run_url, run_layout.LEDGER)


def make_record(
    run_url: str,
    *,
    step: str,
    batch: int | None,
    attempt: int,
    seconds: float,
    device_kind: str,
    device_count: int,
    price_per_hour: float,
    outcome: str = "succeeded",
) -> dict[str, Any]:
    """One ledger record: who ran, on what, for how long, and what it cost (OpenCost style)."""
    if seconds < 0 or device_count < 0:
        raise InputError(ledger_url(run_url), f"seconds and device_count must be >= 0, found {seconds}, "
                         f"{device_count}", column=step)
    if outcome not in OUTCOMES:
        raise InputError(ledger_url(run_url), f"outcome must be one of {OUTCOMES}, found {outcome!r}",
                         column=step)
    return {
        "run": run_url,
        "step": step,
        "batch": batch,
        "attempt": int(attempt),
        "outcome": outcome,
        "device_kind": device_kind,
        "device_count": int(device_count),
        "gpu": prices.is_gpu(device_kind),
        "seconds": float(seconds),
        "price_per_hour": float(price_per_hour),
        "dollars": prices.dollars(seconds, device_count, price_per_hour),
        "recorded_at": time.time(),
    }


def append(run_url: str, record: Mapping[str, Any]) -> str:
    """Write ``record`` as a new ledger object and return its URL (a fresh key every call)."""
    key = f"{group_prefix(record['step'], record['batch'])}a{record['attempt']:02d}.{uuid.uuid4().hex}.json"
    url = storage.join(ledger_url(run_url), key)
    storage.write_json(url, dict(record))
    return url


def account_step(
    run_url: str,
    *,
    step: str,
    batch: int | None,
    attempt: int,
    seconds: float,
    device_kind: str,
    device_count: int,
    outcome: str = "succeeded",
) -> dict[str, Any]:
    """Append the ledger record of one step attempt; return the record.

    Parameters
    ----------
    run_url : str
        The run (its ``config.json`` gives the prices).
    step, batch, attempt : str, int or None, int
        Which attempt of which task; ``batch`` is None for whole-run steps.
    seconds : float
        Wall-clock seconds the attempt held its devices.
    device_kind, device_count : str, int
        Requested devices, e.g. (``"nvidia-tesla-t4"``, 1) or (``"cpu"``, 2 cores).
    outcome : {"succeeded", "failed"}
        Failed attempts cost money too; only succeeded ``train`` attempts complete a batch.

    The runner calls this through :func:`genosynth.cost.publish.account`, which also pushes the metrics.
    """
    config = RunConfig.load(run_url)
    table = prices.price_table(config.prices)
    rate = table[prices.price_key(device_kind, table)]
    record = make_record(run_url, step=step, batch=batch, attempt=attempt, seconds=seconds,
                         device_kind=device_kind, device_count=device_count, price_per_hour=rate,
                         outcome=outcome)
    append(run_url, record)
    return record


def read_records(run_url: str, *, step: str | None = None, batch: int | None = None) -> list[dict[str, Any]]:
    """Every ledger record of the run, or of one (step, batch) group, in key order.

    Objects are fetched in one call so that object stores fetch them concurrently.
    """
    base = ledger_url(run_url)
    names = [n for n in storage.list_keys(base) if n.endswith(".json")]
    if step is not None:
        prefix = group_prefix(step, batch)
        names = [n for n in names if n.startswith(prefix)]
    if not names:
        return []
    fs, path = storage.filesystem(base)
    paths = [f"{path.rstrip('/')}/{n}" for n in names]
    contents = storage.with_retries(lambda: fs.cat(paths), what=f"read ledger {base}")
    records = []
    for name, p in zip(names, paths, strict=True):
        try:
            records.append(json.loads(contents[p]))
        except (ValueError, KeyError) as exc:
            raise InputError(storage.join(base, name), f"not a ledger record: {exc}") from exc
    return records


def batches_total(run_url: str) -> int | None:
    """Number of SNP batches planned by prep (None before prep has written ``prep/batches.json``)."""
    if not storage.exists(run_state.plan_url(run_url)):
        return None
    return len(run_state.BatchPlan.read(run_url).batches)


def batches_done(records: Iterable[Mapping[str, Any]]) -> int:
    """Distinct batches with a succeeded training attempt (the counter of one train task is 0 or 1)."""
    return len({r["batch"] for r in records
                if r["step"] == TRAIN_STEP and r["batch"] is not None and r.get("outcome") == "succeeded"})


def totals(records: list[Mapping[str, Any]]) -> dict[str, Any]:
    """Sum records into dollars, GPU hours and CPU core-hours, overall and per step and device kind.

    Sums run in the records' key order so every reader gets bit-identical totals.
    """
    dollars_spent = gpu_seconds = cpu_seconds = 0.0
    by_step: dict[str, dict[str, float]] = {}
    by_kind: dict[str, dict[str, float]] = {}
    for r in records:
        device_seconds = r["seconds"] * r["device_count"]
        dollars_spent += r["dollars"]
        if r["gpu"]:
            gpu_seconds += device_seconds
        else:
            cpu_seconds += device_seconds
        for table, key in ((by_step, r["step"]), (by_kind, r["device_kind"])):
            row = table.setdefault(key, {"attempts": 0, "failed": 0, "seconds": 0.0, "dollars": 0.0})
            row["attempts"] += 1
            row["failed"] += r.get("outcome") == "failed"
            row["seconds"] += r["seconds"]
            row["dollars"] += r["dollars"]
    return {
        "dollars_spent": dollars_spent,
        "gpu_seconds": gpu_seconds,
        "cpu_seconds": cpu_seconds,
        "gpu_hours": gpu_seconds / 3600.0,
        "cpu_hours": cpu_seconds / 3600.0,
        "attempts": len(records),
        "failed_attempts": sum(r.get("outcome") == "failed" for r in records),
        "by_step": dict(sorted(by_step.items())),
        "by_device_kind": dict(sorted(by_kind.items())),
    }


def summary(run_url: str) -> dict[str, Any]:
    """What ``genosynth cost`` prints: ledger totals against the run's budget and batch progress."""
    config = RunConfig.load(run_url)
    records = read_records(run_url)
    out = totals(records)
    out.update(
        run=run_url,
        budget_dollars=float(config.budget_dollars),
        remaining_dollars=float(config.budget_dollars) - out["dollars_spent"],
        batches_done=batches_done(records),
        batches_total=batches_total(run_url),
        prices=prices.price_table(config.prices),
    )
    return out
