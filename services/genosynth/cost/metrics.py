"""Prometheus metrics derived from the ledger, pushed to a Pushgateway.

Grouping key ``job="genosynth", run, step, batch``: one group per task. Each push *replaces* its group
with values recomputed from that task's ledger records, so a counter holds the cumulative total of every
attempt of its task, a retried pod can never double count, and summed over groups the counters equal
the ledger's totals. A separate group per run (``step="run", batch="none"``) carries the run's gauges:
budget, planned batches and whether the run has finished.

Group lifecycle: groups are *kept* after a run ends, so dashboards and the budget alerts keep seeing
what the run spent (Prometheus only keeps what it scrapes, and a counter that vanishes reads as spend
stopping, not as spend done). ``genosynth cost RUN_URL --forget-metrics`` deletes every group of a run
once it is no longer wanted on the live dashboards; its history stays in Prometheus' own storage.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, delete_from_gateway, push_to_gateway
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from genosynth.cost import ledger
from genosynth.cost.keys import TRAIN_STEP, batch_tag

JOB = "genosynth"
RUN_GROUP_STEP = "run"
PUSH_TIMEOUT_SECONDS = 10.0

#: Step durations span seconds (gates) to hours (GPU training of a large batch).
DURATION_BUCKETS: tuple[float, ...] = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400)

#: Every metric this module exposes (series names as Prometheus stores them), for dashboards and rules.
COUNTERS = (
    "genosynth_gpu_seconds_total",
    "genosynth_cpu_seconds_total",
    "genosynth_cost_dollars_total",
    "genosynth_batches_completed_total",
    "genosynth_step_attempts_total",
    "genosynth_step_failures_total",
)
GAUGES = ("genosynth_budget_dollars", "genosynth_batches_total", "genosynth_run_finished")
HISTOGRAMS = ("genosynth_step_duration_seconds",)
SERIES = (
    *COUNTERS,
    *GAUGES,
    *(f"{h}_{suffix}" for h in HISTOGRAMS for suffix in ("bucket", "sum", "count")),
)


def grouping_key(run_url: str, step: str, batch: int | None) -> dict[str, str]:
    return {"run": run_url, "step": step, "batch": batch_tag(batch)}


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    # CounterMetricFamily takes the name without ``_total`` and exposes ``<name>_total``.
    return CounterMetricFamily(name.removesuffix("_total"), doc, value=value)


class GroupCollector(Collector):
    """The metrics of one task, computed from its ledger records (all attempts) by ``ledger.totals``."""

    def __init__(self, records: Sequence[Mapping[str, Any]]):
        self.records = list(records)

    def collect(self) -> Iterator[Any]:
        totals = ledger.totals(self.records)
        yield _counter("genosynth_gpu_seconds_total", "GPU-seconds held (requested GPUs x seconds).",
                       totals["gpu_seconds"])
        yield _counter("genosynth_cpu_seconds_total", "CPU core-seconds held (requested cores x seconds).",
                       totals["cpu_seconds"])
        yield _counter("genosynth_cost_dollars_total", "Dollars charged (devices x hours x hourly price).",
                       totals["dollars_spent"])
        yield _counter("genosynth_step_attempts_total", "Step attempts, failed ones included.",
                       totals["attempts"])
        yield _counter("genosynth_step_failures_total", "Failed step attempts.", totals["failed_attempts"])
        if any(r["step"] == TRAIN_STEP and r["batch"] is not None for r in self.records):
            yield _counter("genosynth_batches_completed_total", "SNP batches whose training succeeded.",
                           float(ledger.batches_done(self.records)))
        yield _histogram([r["seconds"] for r in self.records])


def _histogram(durations: Iterable[float]) -> HistogramMetricFamily:
    durations = list(durations)
    buckets = [(str(float(b)), float(sum(d <= b for d in durations))) for b in DURATION_BUCKETS]
    buckets.append(("+Inf", float(len(durations))))
    return HistogramMetricFamily("genosynth_step_duration_seconds", "Wall-clock seconds per step attempt.",
                                 buckets=buckets, sum_value=float(sum(durations)))


class RunCollector(Collector):
    """Run-wide gauges: the budget, the planned batches, and whether the run has finished."""

    def __init__(self, *, budget_dollars: float, batches_total: int | None, finished: bool):
        self.budget_dollars = budget_dollars
        self.batches_total = batches_total
        self.finished = finished

    def collect(self) -> Iterator[Any]:
        yield GaugeMetricFamily("genosynth_budget_dollars", "The run's budget in dollars.",
                                value=float(self.budget_dollars))
        if self.batches_total is not None:
            yield GaugeMetricFamily("genosynth_batches_total", "SNP batches planned by prep.",
                                    value=float(self.batches_total))
        yield GaugeMetricFamily("genosynth_run_finished", "1 once the run's finalize step has run.",
                                value=1.0 if self.finished else 0.0)


def _push(gateway: str, collector: Collector, key: Mapping[str, str]) -> None:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    push_to_gateway(gateway, job=JOB, registry=registry, grouping_key=dict(key), timeout=PUSH_TIMEOUT_SECONDS)


def push_group(gateway: str, run_url: str, step: str, batch: int | None,
               records: Sequence[Mapping[str, Any]]) -> None:
    """Replace the (run, step, batch) group with metrics computed from all its ledger records."""
    _push(gateway, GroupCollector(records), grouping_key(run_url, step, batch))


def push_run(gateway: str, run_url: str, *, budget_dollars: float, batches_total: int | None,
             finished: bool = False) -> None:
    """Replace the run's own group (budget, planned batches, finished flag)."""
    collector = RunCollector(budget_dollars=budget_dollars, batches_total=batches_total, finished=finished)
    _push(gateway, collector, grouping_key(run_url, RUN_GROUP_STEP, None))


def forget_run(gateway: str, run_url: str, records: Iterable[Mapping[str, Any]]) -> int:
    """Delete every Pushgateway group of the run (its tasks' groups and the run group); return how many."""
    keys = {(r["step"], r["batch"]) for r in records} | {(RUN_GROUP_STEP, None)}
    for step, batch in sorted(keys, key=lambda k: (k[0], -1 if k[1] is None else k[1])):
        delete_from_gateway(gateway, job=JOB, grouping_key=grouping_key(run_url, step, batch),
                            timeout=PUSH_TIMEOUT_SECONDS)
    return len(keys)
