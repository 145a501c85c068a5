"""The local runner and execute_step on a small real DAG: scheduling, resume, failures, markers, ledger."""

from __future__ import annotations

import pytest

from genosynth import pipeline, run_layout, storage
from genosynth.cost.ledger import read_records
from genosynth.errors import InputError
from genosynth.run_config import RunConfig
from genosynth.runners.local import StepFailedError, prepare_run, run_pipeline
from genosynth.runners.step import execute_step

from . import toy_dag

EXPECTED_TOTAL = sum(3 * (7000 + b) + 3 for b in range(toy_dag.N_BATCHES))  # seed 7


def _start(run_url: str, **fields) -> RunConfig:
    return prepare_run(run_url, RunConfig(dataset_url="unused://dataset", seed=7, **fields))


@pytest.mark.parametrize("scheme", ["memory", "file"])
def test_run_completes_and_rerun_skips_everything(tmp_path, scheme):
    run_url = f"memory://toy-{tmp_path.name}/run" if scheme == "memory" else str(tmp_path / "run")
    _start(run_url)
    first = run_pipeline(run_url, steps_ref=toy_dag.STEPS_REF, max_parallel=2, progress=False)
    assert storage.read_json(run_layout.url(run_url, "synthetic/total.json")) == {"total": EXPECTED_TOTAL}
    nodes = 2 + 2 * toy_dag.N_BATCHES  # prep, assemble, train and generate per batch
    assert len(first.ran) == nodes + 1 and not first.skipped  # + finalize
    for name, batch in [("prep", None), ("train", 3), ("generate", 4), ("assemble", None)]:
        assert pipeline.is_committed(run_url, name, batch)
    # One ledger record per attempt, each a succeeded one.
    records = read_records(run_url)
    assert len(records) == nodes + 1
    assert {r["outcome"] for r in records} == {"succeeded"}

    second = run_pipeline(run_url, steps_ref=toy_dag.STEPS_REF, max_parallel=2, progress=False)
    assert second.ran == ["finalize"]  # on-exit steps always run; everything else was committed
    assert len(second.skipped) == nodes


def test_failed_batch_leaves_no_marker_and_resume_runs_only_the_rest(tmp_path, monkeypatch):
    run_url = str(tmp_path / "run")
    _start(run_url)
    monkeypatch.setenv("TOY_FAIL_TRAIN_BATCH", "2")
    with pytest.raises(StepFailedError, match="train-00002 failed: RuntimeError: simulated failure"):
        run_pipeline(run_url, steps_ref=toy_dag.STEPS_REF, max_parallel=1, progress=False)
    assert not pipeline.is_committed(run_url, "train", 2)
    assert not pipeline.is_committed(run_url, "assemble")
    failed = [r for r in read_records(run_url) if r["outcome"] == "failed"]
    assert [(r["step"], r["batch"], r["attempt"]) for r in failed] == [("train", 2, 1)]
    assert storage.exists(run_layout.url(run_url, "finalized.json"))  # the exit step ran after the failure

    monkeypatch.delenv("TOY_FAIL_TRAIN_BATCH")
    resumed = run_pipeline(run_url, steps_ref=toy_dag.STEPS_REF, max_parallel=2, progress=False)
    assert "train-00002" in resumed.ran and "prep" in resumed.skipped
    assert "train-00000" not in resumed.ran
    assert storage.read_json(run_layout.url(run_url, "synthetic/total.json")) == {"total": EXPECTED_TOTAL}
    second_attempt = [r for r in read_records(run_url, step="train", batch=2) if r["outcome"] == "succeeded"]
    assert [r["attempt"] for r in second_attempt] == [2]


def test_input_error_of_a_step_reaches_the_caller_as_input_error(tmp_path):
    run_url = str(tmp_path / "run")
    _start(run_url, model="bad-model")
    with pytest.raises(InputError, match="unknown model 'bad-model'") as caught:
        run_pipeline(run_url, steps_ref=toy_dag.STEPS_REF, progress=False)
    assert caught.value.column == "model"
    assert not pipeline.is_committed(run_url, "prep")


def test_execute_step_checks_its_arguments(tmp_path):
    run_url = f"memory://toy-{tmp_path.name}/run"
    _start(run_url)
    with pytest.raises(InputError, match="unknown step 'trian'"):
        execute_step(run_url, "trian", steps=toy_dag.STEPS)
    with pytest.raises(InputError, match="per-batch step"):
        execute_step(run_url, "train", steps=toy_dag.STEPS)
    with pytest.raises(InputError, match="takes no --batch"):
        execute_step(run_url, "prep", 0, steps=toy_dag.STEPS)
    assert execute_step(run_url, "prep", steps=toy_dag.STEPS).ran
    assert not execute_step(run_url, "prep", steps=toy_dag.STEPS).ran  # committed: skipped
    with pytest.raises(InputError, match="batch 99 is not in the batch list"):
        execute_step(run_url, "train", 99, steps=toy_dag.STEPS)
    outcome = execute_step(run_url, "train", 1, steps=toy_dag.STEPS)
    assert outcome.ran and outcome.attempt == 1
    marker = storage.read_json(pipeline.marker_url(run_url, "train", 1))
    assert marker["device_kind"] == "cpu" and marker["step"] == "train"


def test_a_run_refuses_a_different_config_but_accepts_operational_changes(tmp_path):
    run_url = str(tmp_path / "run")
    _start(run_url)
    with pytest.raises(InputError, match="started with seed=7, found 8"):
        prepare_run(run_url, RunConfig(dataset_url="unused://dataset", seed=8))
    updated = prepare_run(
        run_url, RunConfig(dataset_url="unused://dataset", seed=7, max_parallel=1, budget_dollars=5.0)
    )
    assert RunConfig.load(run_url).budget_dollars == 5.0 and updated.max_parallel == 1


def test_hundreds_of_batches_schedule_quickly(tmp_path):
    """500 batches (1,000 fan-out nodes) in threads: the scheduler adds little to the steps' own work."""
    import time

    run_url = str(tmp_path / "run")  # memory:// lists by scanning every key: quadratic by itself
    _start(run_url, model_options={"n_batches": 500})
    started = time.perf_counter()
    summary = run_pipeline(
        run_url, steps_ref=toy_dag.STEPS_REF, max_parallel=2, progress=False, use_processes=False
    )
    elapsed = time.perf_counter() - started
    assert len(summary.ran) == 2 * 500 + 3
    total = storage.read_json(run_layout.url(run_url, "synthetic/total.json"))["total"]
    assert total == sum(3 * (7000 + b) + 3 for b in range(500))
    assert elapsed < 40


def test_each_node_gets_the_cores_over_the_nodes_running_beside_it(tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "4")  # the cores the run's nodes share
    run_url = str(tmp_path / "run")
    _start(run_url)
    run_pipeline(run_url, steps_ref=toy_dag.STEPS_REF, max_parallel=2, progress=False)
    threads = {(r["step"], r.get("batch")): r["device_count"] for r in read_records(run_url)}
    # prep and assemble run alone: every core; the first train batches start two at once: half each.
    assert threads[("prep", None)] == 4 and threads[("assemble", None)] == 4
    assert threads[("train", 0)] == 2 and threads[("train", 1)] == 2
    assert set(threads.values()) <= {2, 4}
