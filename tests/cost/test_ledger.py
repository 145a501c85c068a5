"""The ledger: one object per attempt, OpenCost-style dollars, totals, and ``genosynth cost``."""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from genosynth import storage
from genosynth.cli import main
from genosynth.cost import finalize, ledger, prices
from genosynth.errors import InputError

from .conftest import make_run


def test_gpu_attempt_is_charged_per_requested_gpu_hour(run_url):
    record = ledger.account_step(run_url, step="train", batch=3, attempt=0, seconds=1800.0,
                                 device_kind="nvidia-tesla-t4", device_count=2)
    assert record["dollars"] == pytest.approx(2 * 0.5 * 0.35)
    assert record["price_per_hour"] == 0.35
    assert record["gpu"] is True
    assert (record["run"], record["step"], record["batch"], record["attempt"]) == (run_url, "train", 3, 0)
    assert ledger.read_records(run_url) == [record]


def test_cpu_attempt_is_charged_per_core_hour(run_url):
    record = ledger.account_step(run_url, step="prep", batch=None, attempt=0, seconds=900.0,
                                 device_kind="cpu", device_count=4)
    assert record["dollars"] == pytest.approx(4 * 0.25 * prices.DEFAULT_PRICES["cpu"])
    totals = ledger.totals(ledger.read_records(run_url))
    assert totals["cpu_hours"] == pytest.approx(1.0)
    assert totals["gpu_hours"] == 0.0


def test_run_config_prices_override_the_defaults(tmp_path):
    run_url = make_run(str(tmp_path / "spot"), prices={"nvidia-tesla-t4": 0.14, "nvidia-l4": 0.7})
    t4 = ledger.account_step(run_url, step="train", batch=0, attempt=0, seconds=3600.0,
                             device_kind="nvidia-tesla-t4", device_count=1)
    l4 = ledger.account_step(run_url, step="train", batch=1, attempt=0, seconds=3600.0,
                             device_kind="nvidia-l4", device_count=1)
    assert (t4["dollars"], l4["dollars"]) == (pytest.approx(0.14), pytest.approx(0.7))


def test_unpriced_accelerator_pays_the_gpu_fallback_rate(tmp_path):
    run_url = make_run(str(tmp_path / "fallback"), prices={"gpu": 2.0})
    record = ledger.account_step(run_url, step="train", batch=0, attempt=1, seconds=1800.0,
                                 device_kind="nvidia-h100-80gb-hbm3", device_count=1)
    assert record["price_per_hour"] == 2.0
    assert record["gpu"] is True
    assert ledger.totals([record])["gpu_hours"] == 0.5


def test_device_kind_without_name_is_refused(run_url):
    with pytest.raises(InputError, match=r"no price for device kind ''"):
        ledger.account_step(run_url, step="train", batch=0, attempt=1, seconds=1.0,
                            device_kind="", device_count=1)
    assert ledger.read_records(run_url) == []


def test_negative_price_in_config_is_an_input_error(tmp_path):
    run_url = make_run(str(tmp_path / "bad"), prices={"cpu": -1})
    with pytest.raises(InputError, match=r"prices.cpu"):
        ledger.account_step(run_url, step="prep", batch=None, attempt=0, seconds=1.0,
                            device_kind="cpu", device_count=1)


def test_retries_and_concurrent_pods_each_add_a_record(run_url):
    # 40 pods of 8 batches with up to 5 attempts each, all writing at once: nothing is overwritten.
    jobs = [(b, a) for b in range(8) for a in range(5)]

    def account(job):
        batch, attempt = job
        return ledger.account_step(run_url, step="train", batch=batch, attempt=attempt,
                                   seconds=60.0 + attempt, device_kind="nvidia-tesla-t4", device_count=1,
                                   outcome="succeeded" if attempt == 4 else "failed")

    with ThreadPoolExecutor(max_workers=8) as pool:
        written = list(pool.map(account, jobs))
    records = ledger.read_records(run_url)
    assert len(storage.list_keys(ledger.ledger_url(run_url))) == len(jobs) == len(records)
    assert sorted((r["batch"], r["attempt"]) for r in records) == sorted(jobs)
    totals = ledger.totals(records)
    assert totals["dollars_spent"] == pytest.approx(sum(r["dollars"] for r in written))
    assert totals["failed_attempts"] == 32
    assert ledger.batches_done(records) == 8
    assert len(ledger.read_records(run_url, step="train", batch=5)) == 5


def test_failed_training_does_not_complete_a_batch(run_url):
    ledger.account_step(run_url, step="train", batch=0, attempt=0, seconds=10.0,
                        device_kind="nvidia-tesla-t4", device_count=1, outcome="failed")
    ledger.account_step(run_url, step="generate", batch=1, attempt=0, seconds=10.0,
                        device_kind="cpu", device_count=1)
    assert ledger.batches_done(ledger.read_records(run_url)) == 0


def _populate(run_url: str) -> None:
    ledger.account_step(run_url, step="prep", batch=None, attempt=0, seconds=120.0, device_kind="cpu",
                        device_count=2)
    for batch in range(3):
        ledger.account_step(run_url, step="train", batch=batch, attempt=0, seconds=600.0,
                            device_kind="nvidia-tesla-t4", device_count=1)


def test_cost_json_reports_totals_budget_and_batches(run_url, capsys):
    _populate(run_url)
    with pytest.raises(SystemExit) as exit_info:
        main(["cost", run_url, "--json"])
    assert exit_info.value.code in (None, 0)
    out = json.loads(capsys.readouterr().out)
    expected_dollars = 2 * 120 / 3600 * 0.0475 + 3 * 600 / 3600 * 0.35
    assert out["dollars_spent"] == pytest.approx(expected_dollars)
    assert out["gpu_hours"] == pytest.approx(0.5)
    assert out["cpu_hours"] == pytest.approx(240 / 3600)
    assert out["budget_dollars"] == 1440.0
    assert out["remaining_dollars"] == pytest.approx(1440.0 - expected_dollars)
    assert (out["batches_done"], out["batches_total"]) == (3, 4)
    assert out["by_step"]["train"]["attempts"] == 3


def test_cost_table_for_people(run_url):
    _populate(run_url)
    result = subprocess.run([sys.executable, "-m", "genosynth", "cost", run_url], capture_output=True,
                            text=True, check=True)
    assert "of $1440.00" in result.stdout
    assert "batches 3/4" in result.stdout
    assert "train" in result.stdout


def test_cost_of_a_folder_that_is_no_run_exits_2(tmp_path):
    result = subprocess.run([sys.executable, "-m", "genosynth", "cost", str(tmp_path / "nothing")],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert "not a genosynth run" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_finalize_writes_the_cost_summary(run_url):
    _populate(run_url)
    finalize.run(run_url)
    summary = storage.read_json(storage.join(run_url, finalize.COST_SUMMARY))
    assert summary["attempts"] == 4
    assert summary["dollars_spent"] == ledger.summary(run_url)["dollars_spent"]


def test_ledger_works_on_object_store_urls():
    run_url = make_run("memory://genosynth-cost-test/run")
    try:
        _populate(run_url)
        assert ledger.summary(run_url)["attempts"] == 4
    finally:
        storage.remove("memory://genosynth-cost-test")
