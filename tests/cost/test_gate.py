"""The budget gate refuses to start training that would overspend, and says by how much."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from genosynth import pipeline, run_layout, storage
from genosynth.cost import gate, ledger, prices
from genosynth.errors import BudgetExceededError, InputError
from genosynth.resources import PER_BATCH
from genosynth.run_config import RunConfig

from .conftest import make_run

T4 = prices.DEFAULT_PRICES["nvidia-tesla-t4"]
CPU = prices.DEFAULT_PRICES["cpu"]


def test_the_gate_prices_exactly_the_per_batch_steps_of_the_dag(run_url):
    fan_out = {s.name: s.resources for s in pipeline.STEPS if s.per_batch}
    assert fan_out == PER_BATCH
    assert [s.step for s in gate.estimate(run_url).steps] == list(fan_out)


def test_first_estimate_uses_calibrated_defaults_and_the_dag_resources(run_url):
    decision = gate.estimate(run_url)
    by_step = {s.step: s for s in decision.steps}
    train, generate = by_step["train"], by_step["generate"]
    assert (train.remaining_batches, train.seconds_source) == (4, "default")
    rate = gate.DEFAULT_SECONDS_PER_SNP_SAMPLE["mosaic"]["train"]
    assert train.seconds_per_batch == pytest.approx(rate * 2000 * gate.FALLBACK_TRAIN_SAMPLES)
    # The mosaic family trains on the CPU pool: two cores at the CPU rate, no GPU.
    assert (train.device_kind, train.device_count, train.price_per_hour) == ("cpu", 2, CPU)
    assert train.dollars == pytest.approx(4 * train.seconds_per_batch / 3600 * 2 * CPU)
    assert (generate.device_kind, generate.price_per_hour) == ("cpu", CPU)
    assert decision.estimate == pytest.approx(train.dollars + generate.dollars)
    assert decision.spent == 0.0
    assert decision.passed
    gate.run(run_url)


def test_slower_model_families_are_estimated_slower(tmp_path):
    mosaic = gate.estimate(make_run(str(tmp_path / "mosaic"), model="mosaic")).estimate
    autoregressive = gate.estimate(make_run(str(tmp_path / "ar"), model="autoregressive")).estimate
    assert autoregressive > 100 * mosaic
    assert gate.default_rate("a-new-family", "train") == max(
        r["train"] for r in gate.DEFAULT_SECONDS_PER_SNP_SAMPLE.values())


def test_refuses_when_spent_plus_estimate_exceeds_the_budget(tmp_path):
    run_url = make_run(str(tmp_path / "run"), n_batches=40, budget_dollars=2.0, model="autoregressive")
    ledger.account_step(run_url, step="prep", batch=None, attempt=1, seconds=3600.0, device_kind="cpu",
                        device_count=8)
    spent = 8 * CPU
    with pytest.raises(BudgetExceededError) as refused:
        gate.run(run_url)
    message = str(refused.value)
    estimate = gate.estimate(run_url).estimate
    assert spent + estimate > 2.0
    assert f"spent ${spent:.2f}" in message
    assert f"estimated ${estimate:.2f}" in message
    assert "budget $2.00" in message
    assert gate.money(0.000148213) == "$0.000148"
    assert gate.money(1.67e-05) == "$0.0000167"
    assert gate.money(1440) == "$1,440.00"
    assert "train: 40 batches" in message
    assert "--budget" in message
    assert not storage.exists(run_layout.url(run_url, run_layout.TRAIN))


def test_resumed_run_estimates_from_its_own_ledger(tmp_path):
    run_url = make_run(str(tmp_path / "run"), n_batches=4)
    # Batch 0 trained for an hour on a spot T4, after a failed 10-minute attempt.
    ledger.account_step(run_url, step="train", batch=0, attempt=1, seconds=600.0,
                        device_kind="nvidia-tesla-t4-spot", device_count=1, outcome="failed")
    ledger.account_step(run_url, step="train", batch=0, attempt=2, seconds=3600.0,
                        device_kind="nvidia-tesla-t4-spot", device_count=1)
    train = next(s for s in gate.estimate(run_url).steps if s.step == "train")
    assert (train.remaining_batches, train.seconds_source) == (3, "ledger")
    assert train.seconds_per_batch == 3600.0
    assert train.dollars == pytest.approx(3 * prices.DEFAULT_PRICES["nvidia-tesla-t4-spot"])


@pytest.mark.parametrize(("model", "gpu_kind", "kind", "count"), [
    ("mosaic", None, "cpu", 2),
    ("mosaic", "nvidia-tesla-t4-spot", "cpu", 2),  # the GPU pool's kind does not touch CPU training
    ("autoregressive", None, "nvidia-tesla-t4", 1),
    ("autoregressive", "nvidia-tesla-t4-spot", "nvidia-tesla-t4-spot", 1),
    ("autoregressive", "nvidia-l4", "nvidia-l4", 1),
])
def test_each_step_is_priced_at_the_device_it_gets(tmp_path, monkeypatch, model, gpu_kind, kind, count):
    if gpu_kind:
        monkeypatch.setenv(gate.GPU_KIND_ENV, gpu_kind)
    run_url = make_run(str(tmp_path / "run"), n_batches=3, model=model)
    by_step = {s.step: s for s in gate.estimate(run_url).steps}
    train = by_step["train"]
    assert (train.device_kind, train.device_count) == (kind, count)
    rate = prices.price_per_hour(kind)
    expected = 3 * count * train.seconds_per_batch / 3600 * rate
    assert train.price_per_hour == rate and train.dollars == pytest.approx(expected)
    assert (by_step["generate"].device_kind, by_step["generate"].price_per_hour) == ("cpu", CPU)


def test_mosaic_training_costs_its_cpu_hours_not_t4_hours(tmp_path):
    """Same seconds, CPU price: 2 cores x $0.0475/h instead of 1 T4 x $0.35/h, 3.7 times cheaper."""
    train = next(s for s in gate.estimate(make_run(str(tmp_path / "run"), n_batches=10)).steps
                 if s.step == "train")
    as_t4 = 10 * train.seconds_per_batch / 3600 * T4
    assert train.dollars == pytest.approx(as_t4 * 2 * CPU / T4)
    assert as_t4 / train.dollars == pytest.approx(T4 / (2 * CPU))


def test_environment_names_the_training_device(run_url, monkeypatch):
    monkeypatch.setenv("GENOSYNTH_TRAIN_DEVICE", "nvidia-tesla-t4-spot:2")
    train = next(s for s in gate.estimate(run_url).steps if s.step == "train")
    assert (train.device_kind, train.device_count) == ("nvidia-tesla-t4-spot", 2)


def test_gate_before_prep_is_an_input_error(tmp_path):
    run_url = str(tmp_path / "run")
    RunConfig(dataset_url="demo").save(run_url)
    with pytest.raises(InputError, match=r"batches\.json: no batch plan"):
        gate.run(run_url)


@pytest.mark.slow
def test_genosynth_run_over_budget_exits_4_before_training(tmp_path, demo_dataset):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    data, run_url = demo_dataset.url, str(tmp_path / "run")
    result = subprocess.run([sys.executable, "-m", "genosynth", "run", data, "--out", run_url,
                             "--traits", "body_weight", "--budget", "0.0001"],
                            env=env, capture_output=True, text=True)
    assert result.returncode == 4, result.stderr[-3000:]
    message = [line for line in result.stderr.splitlines() if "budget gate" in line]
    assert message and "spent $" in message[0] and "estimated $" in message[0]
    assert "the budget $0.000100 " in message[0]
    assert not storage.exists(run_layout.url(run_url, run_layout.TRAIN))
    assert not [r for r in ledger.read_records(run_url) if r["step"] == "train"]
    # finalize still ran (on exit) and wrote the cost summary of what was spent.
    assert storage.read_json(storage.join(run_url, "cost.json"))["batches_done"] == 0
