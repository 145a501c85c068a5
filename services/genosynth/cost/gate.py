"""The budget gate: a pipeline step before the training fan-out that refuses to overspend.

Estimate = for each per-batch step (``resources.PER_BATCH``: ``train``, ``generate``): batches it has still
to run x expected seconds per batch x requested devices x hourly price of the device the task will get: a
GPU only where its resources give the run's model family one (``Resources.gpus_for``; mosaic trains on CPU
cores),
priced as the cluster's GPU pool bills it (``GENOSYNTH_GPU_KIND``, e.g. ``nvidia-tesla-t4-spot``).
Expected seconds come from this run's earlier ledger records of that step (a resumed run knows its
real speed) or else from a calibrated default of the run's model family scaled by the batch's SNPs and
the training individuals. If dollars
already spent + estimate exceed the budget, the gate raises ``BudgetExceededError`` (exit 4) and nothing
of training is started or written.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from genosynth import run_layout
from genosynth.cost import ledger, prices
from genosynth.errors import BudgetExceededError, InputError
from genosynth.resources import PER_BATCH, Resources
from genosynth.run_config import RunConfig
from genosynth.run_state import BatchPlan

log = logging.getLogger(__name__)

#: Calibrated defaults, seconds per (SNP x training individual) of a batch, by model family and step,
#: used until this run has ledger records of the step. Measured on the demo cohort (320 training
#: individuals, 1,000-SNP batches, one CPU thread of a 2-core machine; docs/cost.md, "Calibration") and
#: rounded up about threefold, so that a first estimate errs towards refusing.
DEFAULT_SECONDS_PER_SNP_SAMPLE: dict[str, dict[str, float]] = {
    "mosaic": {"train": 2e-6, "generate": 3e-6},
    "autoregressive": {"train": 1e-3, "generate": 5e-6},
}
#: Training individuals assumed when ``prep/train`` cannot be read.
FALLBACK_TRAIN_SAMPLES = 1000

#: The accelerator the cluster's GPU node pool runs when ``GENOSYNTH_GPU_KIND`` (set on every pod by the
#: rendered WorkflowTemplate, spot included) is not set; ``GENOSYNTH_<STEP>_DEVICE=kind[:count]``
#: overrides what one step is assumed to request (e.g. ``GENOSYNTH_TRAIN_DEVICE=nvidia-l4:2``).
DEFAULT_GPU_KIND = "nvidia-tesla-t4"
GPU_KIND_ENV = "GENOSYNTH_GPU_KIND"


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
        parts = ", ".join(f"{s.step}: {s.remaining_batches} batches x {s.seconds_per_batch:.3g} s x "
                          f"{s.device_count} {s.device_kind} at ${s.price_per_hour:.4g}/h "
                          f"= {money(s.dollars)}" for s in self.steps)
        verdict = "exceeds" if not self.passed else "is within"
        return (f"budget gate: spent {money(self.spent)} + estimated {money(self.estimate)} "
                f"= {money(self.spent + self.estimate)} {verdict} the budget {money(self.budget)} ({parts})")

    def to_dict(self) -> dict[str, Any]:
        return {"spent": self.spent, "estimate": self.estimate, "budget": self.budget, "passed": self.passed,
                "steps": [asdict(s) for s in self.steps]}


def money(dollars: float) -> str:
    """Dollars for people: cents, or three significant digits below a cent (small runs cost that)."""
    if dollars == 0 or abs(dollars) >= 0.01:
        return f"${dollars:,.2f}"
    decimals = 2 - math.floor(math.log10(abs(dollars)))
    return f"${dollars:.{decimals}f}"


def _device(step: str, resources: Resources, model: str, records: Sequence[Mapping[str, Any]]
            ) -> tuple[str, int]:
    """Devices one task of ``step`` is billed for: as last recorded, as overridden, or as its
    ``resources`` request for the run's model family (GPUs of the pool's kind, or else the CPU cores).

    Locally the DAG's GPU steps may run on CPU; pricing them as the cluster's GPUs errs towards refusing.
    """
    if records:
        last = records[-1]
        return str(last["device_kind"]), int(last["device_count"])
    variable = f"GENOSYNTH_{step.upper().replace('-', '_')}_DEVICE"
    override = os.environ.get(variable)
    if override:
        kind, _, count = override.partition(":")
        try:
            return kind, int(count or 1)
        except ValueError as exc:
            raise InputError(variable, f"expected kind[:count], found {override!r}") from exc
    gpus = resources.gpus_for(model)
    if gpus:
        return os.environ.get(GPU_KIND_ENV) or DEFAULT_GPU_KIND, gpus
    return "cpu", resources.billed_cores


def default_rate(model: str, step: str) -> float:
    """Calibrated seconds per (SNP x training individual); an uncalibrated model gets the slowest rate."""
    rates = DEFAULT_SECONDS_PER_SNP_SAMPLE.get(model, {})
    if step in rates:
        return rates[step]
    known = [r[step] for r in DEFAULT_SECONDS_PER_SNP_SAMPLE.values() if step in r]
    return max(known or [rate for r in DEFAULT_SECONDS_PER_SNP_SAMPLE.values() for rate in r.values()])


def _training_individuals(run_url: str) -> int:
    from genosynth.formats.dataset import Dataset

    try:
        return Dataset.open(run_layout.url(run_url, run_layout.PREP_TRAIN)).n_samples
    except (FileNotFoundError, InputError, KeyError):
        return FALLBACK_TRAIN_SAMPLES



def estimate(run_url: str) -> GateDecision:
    """What the per-batch steps still to run would cost, next to what the run has spent."""
    config = RunConfig.load(run_url)
    batches = BatchPlan.read(run_url).batches
    records = ledger.read_records(run_url)
    n_train = _training_individuals(run_url)
    steps = []
    for step, resources in PER_BATCH.items():
        per_snp = n_train * default_rate(config.model, step)
        step_records = [r for r in records if r["step"] == step]
        done = {r["batch"] for r in step_records if r.get("outcome") == "succeeded"}
        remaining = [b for b in batches if b.batch not in done]
        succeeded = [r["seconds"] for r in step_records if r.get("outcome") == "succeeded"]
        if succeeded:
            seconds, source = sum(succeeded) / len(succeeded), "ledger"
        else:
            snps = [b.n_snps for b in remaining] or [config.batch_snps]
            seconds, source = per_snp * sum(snps) / len(snps), "default"
        kind, count = _device(step, resources, config.model, step_records)
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
