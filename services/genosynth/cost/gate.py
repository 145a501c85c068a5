"""The budget gate: a pipeline step before the training fan-out that refuses to overspend.

Estimate = for each per-batch step still to run (``train``, ``generate``): remaining batches x expected
seconds per batch x requested devices x hourly price. Expected seconds come from this run's earlier
ledger records of that step (a resumed run knows its real speed) or else from a calibrated default
scaled by the batch size. If dollars already spent + estimate exceed the budget, the gate raises
``BudgetExceededError`` (exit 4) and nothing of training is started or written.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from genosynth import run_layout, storage
from genosynth.cost import ledger, prices
from genosynth.errors import BudgetExceededError, InputError
from genosynth.run_config import RunConfig

log = logging.getLogger(__name__)

#: Calibrated defaults, seconds per SNP of a batch, used until this run has ledger records of the step.
#: Measured on the demo cohort with the default genotype model (see docs/cost.md, "Calibration") and
#: rounded up, so that a first estimate errs towards refusing.
DEFAULT_SECONDS_PER_SNP: dict[str, float] = {"train": 0.3, "generate": 0.05}

#: Devices each per-batch step requests unless the environment says otherwise: the Argo templates run
#: training on one T4 and generation on one CPU core. ``GENOSYNTH_<STEP>_DEVICE=kind[:count]`` overrides
#: (e.g. ``GENOSYNTH_TRAIN_DEVICE=nvidia-tesla-t4-spot:1``).
DEFAULT_DEVICES: dict[str, tuple[str, int]] = {"train": ("nvidia-tesla-t4", 1), "generate": ("cpu", 1)}


@dataclass(frozen=True)
class StepEstimate:
    step: str
    remaining_batches: int
    seconds_per_batch: float
    seconds_source: str          # "ledger" or "default"
    device_kind: str
    device_count: int
    price_per_hour: float
    dollars: float


@dataclass(frozen=True)
class GateDecision:
    spent: float
    estimate: float
    budget: float
    steps: list[StepEstimate]

    @property
    def passed(self) -> bool:
        return self.spent + self.estimate <= self.budget

    def message(self) -> str:
        parts = ", ".join(f"{s.step}: {s.remaining_batches} batches x {s.seconds_per_batch:.0f} s x "
                          f"{s.device_count} {s.device_kind} at ${s.price_per_hour:.4g}/h = ${s.dollars:.2f}"
                          for s in self.steps)
        verdict = "exceeds" if not self.passed else "is within"
        return (f"budget gate: spent ${self.spent:.2f} + estimated ${self.estimate:.2f} "
                f"= ${self.spent + self.estimate:.2f} {verdict} the budget ${self.budget:.2f} ({parts})")

    def to_dict(self) -> dict[str, Any]:
        return {"spent": self.spent, "estimate": self.estimate, "budget": self.budget, "passed": self.passed,
                "steps": [asdict(s) for s in self.steps]}


def _device(step: str, records: Sequence[Mapping[str, Any]]) -> tuple[str, int]:
    if records:
        last = records[-1]
        return str(last["device_kind"]), int(last["device_count"])
    override = os.environ.get(f"GENOSYNTH_{step.upper()}_DEVICE")
    if override:
        kind, _, count = override.partition(":")
        try:
            return kind, int(count or 1)
        except ValueError as exc:
            raise InputError(f"GENOSYNTH_{step.upper()}_DEVICE", f"expected kind[:count], found {override!r}"
                             ) from exc
    return DEFAULT_DEVICES[step]


def estimate(run_url: str) -> GateDecision:
    """What the per-batch steps still to run would cost, next to what the run has spent."""
    config = RunConfig.load(run_url)
    batches_url = run_layout.url(run_url, run_layout.PREP_BATCHES)
    if not storage.exists(batches_url):
        raise InputError(batches_url, "missing: the budget gate runs after prep")
    batches = storage.read_json(batches_url).get("batches", [])
    records = ledger.read_records(run_url)
    steps = []
    for step, per_snp in DEFAULT_SECONDS_PER_SNP.items():
        step_records = [r for r in records if r["step"] == step]
        done = {r["batch"] for r in step_records if r.get("outcome") == "succeeded"}
        remaining = [b for b in batches if b["batch"] not in done]
        succeeded = [r["seconds"] for r in step_records if r.get("outcome") == "succeeded"]
        if succeeded:
            seconds, source = sum(succeeded) / len(succeeded), "ledger"
        else:
            snps = [b["stop"] - b["start"] for b in remaining] or [config.batch_snps]
            seconds, source = per_snp * sum(snps) / len(snps), "default"
        kind, count = _device(step, step_records)
        rate = prices.price_per_hour(kind, config.prices)
        dollars = len(remaining) * prices.dollars(seconds, count, rate)
        steps.append(StepEstimate(step, len(remaining), seconds, source, kind, count, rate, dollars))
    spent = ledger.totals(records)["dollars_spent"]
    return GateDecision(spent=spent, estimate=sum(s.dollars for s in steps),
                        budget=float(config.budget_dollars), steps=steps)


def run(run_url: str, batch: int | None = None) -> None:
    """Pipeline step ``budget-gate``: raise ``BudgetExceededError`` when the training would overspend."""
    decision = estimate(run_url)
    if not decision.passed:
        raise BudgetExceededError(decision.message() + "; raise it with `genosynth run ... --budget DOLLARS`")
    log.info("%s", decision.message())
