"""Against real servers: ledger records pushed to a Pushgateway, scraped by Prometheus with the chart's
rules; what Prometheus sums equals what the ledger totals, and every dashboard query works."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request

import pytest

from genosynth.cost import keys, ledger, metrics, publish

from .conftest import DASHBOARD_FILE, make_run

# One demo-sized run as the runner accounts it: (step, batch, attempt, seconds, device kind, count, outcome).
RUN_ATTEMPTS = [
    ("prep", None, 1, 41.7, "cpu", 2, "succeeded"),
    ("budget-gate", None, 1, 0.8, "cpu", 1, "succeeded"),
    ("gwas-real", None, 1, 63.2, "cpu", 2, "succeeded"),
    ("train", 0, 1, 612.4, "nvidia-tesla-t4", 1, "succeeded"),
    ("train", 1, 1, 97.0, "nvidia-tesla-t4", 1, "failed"),   # preempted spot node, retried
    ("train", 1, 2, 598.9, "nvidia-tesla-t4", 1, "succeeded"),
    ("train", 2, 1, 640.3, "nvidia-tesla-t4", 1, "succeeded"),
    ("generate", 0, 1, 88.1, "cpu", 1, "succeeded"),
    ("generate", 1, 1, 91.5, "cpu", 1, "succeeded"),
    ("generate", 2, 1, 90.0, "cpu", 1, "succeeded"),
    ("assemble", None, 1, 30.2, "cpu", 2, "succeeded"),
    ("gwas-synthetic", None, 1, 60.9, "cpu", 2, "succeeded"),
    ("compare", None, 1, 12.5, "cpu", 1, "succeeded"),
    ("report", None, 1, 7.3, "cpu", 1, "succeeded"),
]


def _close(expected: float):
    """A predicate: one sample, equal to ``expected`` up to float summation order."""
    return lambda result: len(result) == 1 and float(result[0]["value"][1]) == pytest.approx(expected,
                                                                                              rel=1e-12)


def _groups(pushgateway: str) -> list[dict]:
    with urllib.request.urlopen(f"{pushgateway}/api/v1/metrics", timeout=10) as response:
        return [g["labels"] for g in json.load(response)["data"]]


def test_prometheus_sums_equal_the_ledger_totals(tmp_path, pushgateway, prometheus, monkeypatch):
    run_url = make_run(str(tmp_path / "run"), n_batches=3, budget_dollars=25.0)
    monkeypatch.setenv(keys.PUSHGATEWAY_ENV, pushgateway)
    for step, batch, attempt, seconds, kind, count, outcome in RUN_ATTEMPTS:
        publish.account(run_url, step=step, batch=batch, attempt=attempt, seconds=seconds,
                            device_kind=kind, device_count=count, outcome=outcome)
    summary = ledger.summary(run_url)
    assert summary["gpu_hours"] == pytest.approx((612.4 + 97.0 + 598.9 + 640.3) / 3600)

    prometheus.wait_for("sum(genosynth_cost_dollars_total)", _close(summary["dollars_spent"]))
    prometheus.wait_for("sum(genosynth_gpu_seconds_total) / 3600", _close(summary["gpu_hours"]))
    prometheus.wait_for("sum(genosynth_cpu_seconds_total) / 3600", _close(summary["cpu_hours"]))
    prometheus.wait_for("sum(genosynth_batches_completed_total)", _close(3))
    prometheus.wait_for("sum(genosynth_step_failures_total)", _close(1))
    prometheus.wait_for("sum(genosynth_step_duration_seconds_count)", _close(len(RUN_ATTEMPTS)))
    # The recording rules see the same numbers, per run.
    dollars = prometheus.wait_for("genosynth:cost_dollars:sum", _close(summary["dollars_spent"]))
    assert dollars[0]["metric"] == {"__name__": "genosynth:cost_dollars:sum", "run": run_url}
    prometheus.wait_for("genosynth:budget_used:ratio", _close(summary["dollars_spent"] / 25.0))
    prometheus.wait_for("genosynth:batches_total:max", _close(3))
    # One group per task plus the run's own group.
    assert len(_groups(pushgateway)) == len({(s, b) for s, b, *_ in RUN_ATTEMPTS}) + 1

    for panel in json.loads(DASHBOARD_FILE.read_text())["panels"]:
        for target in panel["targets"]:
            expr = target["expr"].replace("$run", ".*")
            if expr.startswith("ALERTS"):
                prometheus.query(expr)  # valid PromQL; no alert fires in this run
            else:
                # Rates need two scrapes and recording rules an evaluation: poll until there is data.
                prometheus.wait_for(expr, bool, timeout=20)

    # `genosynth cost RUN --forget-metrics` removes the run's groups; the ledger stays.
    forget = subprocess.run([sys.executable, "-m", "genosynth", "cost", run_url, "--json",
                             "--forget-metrics"], capture_output=True, text=True, env={**os.environ})
    assert forget.returncode == 0, forget.stderr
    assert json.loads(forget.stdout)["dollars_spent"] == summary["dollars_spent"]
    assert _groups(pushgateway) == []


def test_monitoring_outage_never_fails_a_step(run_url, monkeypatch):
    unused = "http://127.0.0.1:9"  # discard port: nothing listens
    monkeypatch.setenv(keys.PUSHGATEWAY_ENV, unused)
    record = publish.account(run_url, step="prep", batch=None, attempt=1, seconds=3.0, device_kind="cpu",
                             device_count=1)
    assert ledger.read_records(run_url) == [record]


def test_finalize_marks_the_run_finished(tmp_path, pushgateway, monkeypatch):
    from genosynth.cost import finalize

    run_url = make_run(str(tmp_path / "run"), n_batches=2)
    monkeypatch.setenv(keys.PUSHGATEWAY_ENV, pushgateway)
    publish.account(run_url, step="prep", batch=None, attempt=1, seconds=5.0, device_kind="cpu",
                        device_count=1)
    finalize.run(run_url)
    with urllib.request.urlopen(f"{pushgateway}/metrics", timeout=10) as response:
        exposition = response.read().decode()
    finished = [line for line in exposition.splitlines() if line.startswith("genosynth_run_finished{")]
    assert len(finished) == 1 and finished[0].endswith(" 1"), finished
    assert 'step="run"' in finished[0]


@pytest.mark.slow
def test_demo_pipeline_metrics_equal_its_ledger(tmp_path, pushgateway, prometheus):
    env = {**os.environ, keys.PUSHGATEWAY_ENV: pushgateway, "OMP_NUM_THREADS": "1"}
    data, run_url = str(tmp_path / "demo"), str(tmp_path / "run")
    subprocess.run([sys.executable, "-m", "genosynth", "datasets", "get", "demo", "--out", data], check=True,
                   env=env, capture_output=True)
    result = subprocess.run([sys.executable, "-m", "genosynth", "run", data, "--out", run_url,
                             "--traits", "body_weight", "--allow-privacy-failure"],
                            env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = ledger.summary(run_url)
    assert summary["batches_done"] == summary["batches_total"] > 0
    prometheus.wait_for("sum(genosynth_cost_dollars_total)", _close(summary["dollars_spent"]))
    prometheus.wait_for("sum(genosynth_batches_completed_total)", _close(summary["batches_total"]))
    prometheus.wait_for("max(genosynth_run_finished)", _close(1))
    prometheus.wait_for("genosynth:batches_completed:sum", _close(summary["batches_total"]))
    # Every task of the DAG pushed its group, under the job genosynth pushes as.
    steps = prometheus.query(f'count by (step) (genosynth_step_attempts_total{{job="{metrics.JOB}"}})')
    assert {r["metric"]["step"] for r in steps} == set(summary["by_step"])
