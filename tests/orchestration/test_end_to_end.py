"""`genosynth run` on the demo cohort, as a user runs it: a subprocess, real steps, real storage.

The kill-and-resume test kills the whole process group (runner and workers) with SIGKILL once some
training batches are committed, reruns the same command, and compares every object of the run byte for
byte with an uninterrupted run of the same config at the same run URL (outputs may name their own URL),
excluding only the objects that record wall-clock times (ledger, markers, cost totals).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from genosynth import pipeline, run_layout, storage

# Small batches so that the demo has several training batches for a kill to fall between; the plain linear
# GWAS keeps the run short (the GWAS engines are tested in tests/gwas).
DEMO_CONFIG = "batch_snps: 150\nmax_parallel: 2\ngwas_model: lm\nloco: false\n"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def small_demo(tmp_path_factory):
    """The demo cohort generator at a third of its size: 200 individuals x 600 SNPs on 3 chromosomes."""
    from genosynth.datasets.demo import make_demo

    return make_demo(
        str(tmp_path_factory.mktemp("small-demo") / "dataset"),
        seed=0,
        n_individuals=200,
        snps_per_chromosome=200,
    )


def genosynth(*args: str, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "genosynth", *args], capture_output=True, text=True, env=env, timeout=timeout
    )


def run_args(dataset: str, run_dir: Path, config: Path, *extra: str) -> list[str]:
    return ["run", dataset, "--out", str(run_dir), "--config", str(config), "--no-progress", *extra]


def tree(root: Path) -> dict[str, bytes]:
    """Every object under ``root`` except the timing records, by relative key."""
    out = {}
    for path in sorted(root.rglob("*")):
        key = path.relative_to(root).as_posix()
        # Hidden temporary files of writes a kill interrupted are never read: they are not objects.
        if path.is_file() and not key.startswith(pipeline.TIMING_KEYS) and storage.TEMP_TAG not in path.name:
            out[key] = path.read_bytes()
    return out


@pytest.fixture(scope="module")
def config_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("config") / "run.yaml"
    path.write_text(DEMO_CONFIG)
    return path


@pytest.fixture(scope="module")
def reference_run(small_demo, config_file, tmp_path_factory):
    """An uninterrupted run, moved aside so the interrupted run can use the very same run URL."""
    base = tmp_path_factory.mktemp("runs")
    run_dir = base / "run"
    result = genosynth(*run_args(small_demo.url, run_dir, config_file))
    reference = base / "reference"
    shutil.copytree(run_dir, reference)
    return run_dir, reference, result


def test_demo_run_writes_the_documented_outputs(reference_run):
    _, reference, result = reference_run
    # 0, or 3 when the privacy gate failed: both end with every output written.
    assert result.returncode in (0, 3), result.stderr[-3000:]
    for key in (
        "synthetic/dataset.json",
        run_layout.COMPARE_METRICS,
        "compare/gate.json",
        "report/index.html",
        run_layout.GWAS_REAL,
        run_layout.GWAS_SYNTHETIC,
        "cost.json",
    ):
        assert (reference / key).is_file(), key
    assert storage.list_keys(str(reference / run_layout.LEDGER))
    batches = pipeline.read_batches(str(reference))
    assert len(batches) >= 3
    for step in pipeline.dag_steps():
        for batch in batches if step.per_batch else [None]:
            assert pipeline.is_committed(str(reference), step.name, batch), (step.name, batch)
    if result.returncode == 3:
        assert "privacy gate failed" in result.stderr
    else:
        assert "run complete" in result.stdout


def test_kill_and_resume_gives_byte_identical_outputs(reference_run, small_demo, config_file):
    run_dir, reference, _ = reference_run
    shutil.rmtree(run_dir)
    process = subprocess.Popen(
        [sys.executable, "-m", "genosynth", *run_args(small_demo.url, run_dir, config_file)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    marker = Path(pipeline.marker_url(str(run_dir), "train", 1))
    deadline = time.monotonic() + 300
    while not marker.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)  # the runner and its workers, mid-run
    process.wait()
    assert marker.exists(), "the run ended before two training batches were committed"
    assert not pipeline.is_committed(str(run_dir), "report"), "killed too late to test a resume"

    resumed = genosynth(*run_args(small_demo.url, run_dir, config_file))
    assert resumed.returncode in (0, 3), resumed.stderr[-3000:]
    assert "already committed" in resumed.stdout
    expected, found = tree(reference), tree(run_dir)
    assert sorted(found) == sorted(expected)
    different = [key for key in expected if expected[key] != found[key]]
    assert different == [], f"objects differ after kill and resume: {different}"


def test_privacy_override_and_config_guard_on_an_existing_run(
    reference_run, small_demo, config_file, tmp_path
):
    finished = tmp_path / "run"
    shutil.copytree(reference_run[1], finished)  # a finished run; the reference itself stays untouched
    allowed = genosynth(*run_args(small_demo.url, finished, config_file, "--allow-privacy-failure"))
    assert allowed.returncode == 0, allowed.stderr[-3000:]
    assert "already committed" in allowed.stdout
    changed = genosynth(*run_args(small_demo.url, finished, config_file, "--seed", "99"))
    assert changed.returncode == 2
    assert "started with seed=0, found 99" in changed.stderr
    assert len(changed.stderr.strip().splitlines()) == 1


def test_bad_input_exits_2_with_one_line(tmp_path):
    missing = tmp_path / "no-such-dataset"
    result = genosynth("run", str(missing), "--out", str(tmp_path / "run"))
    assert result.returncode == 2
    assert str(missing) in result.stderr and len(result.stderr.strip().splitlines()) == 1
    unknown = genosynth("step", "trian", "--run", str(tmp_path / "run"))
    assert unknown.returncode == 2 and "unknown step 'trian'" in unknown.stderr


def test_budget_refusal_exits_4_before_training(small_demo, config_file, tmp_path):
    run_dir = tmp_path / "run"
    # One worker: the gate runs right after prep, and nothing else is started once it refuses.
    result = genosynth(
        *run_args(small_demo.url, run_dir, config_file, "--budget", "0.000001", "--max-parallel", "1")
    )
    assert result.returncode == 4, result.stderr[-3000:]
    assert "budget" in result.stderr.lower()
    assert pipeline.is_committed(str(run_dir), "prep")
    assert not (run_dir / run_layout.TRAIN).exists()
    assert not pipeline.is_committed(str(run_dir), "gwas-real")
    assert (run_dir / "cost.json").is_file()  # the exit step still wrote the final totals


def test_status_shows_committed_steps_and_the_ledger_without_a_cluster(reference_run, monkeypatch, tmp_path):
    env = {**os.environ, "KUBECONFIG": str(tmp_path / "no-kubeconfig"), "HOME": str(tmp_path)}
    env.pop("KUBERNETES_SERVICE_HOST", None)
    result = genosynth("status", str(reference_run[1]), env=env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    batches = len(pipeline.read_batches(str(reference_run[1])))
    assert f"  train           {batches}/{batches} batches committed" in lines
    assert "  report          committed" in lines
    assert any(line.startswith("workflow: unavailable (no kubeconfig") for line in lines)
    assert any(line.startswith("ledger: $") for line in lines)
    as_json = genosynth("status", str(reference_run[1]), "--json", env=env)
    assert '"batches_done"' in as_json.stdout


def test_two_runs_on_one_out_run_each_task_once(small_demo, config_file, tmp_path):
    """Two real `genosynth run` processes on one --out: the second is refused, a third waits its turn."""
    run_dir = tmp_path / "run"
    command = [sys.executable, "-m", "genosynth", *run_args(small_demo.url, run_dir, config_file)]
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lease_file = run_dir / run_layout.LEASE
    deadline = time.monotonic() + 120
    while not lease_file.exists() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert lease_file.exists(), "the first run never took the lease"
    waiting = subprocess.Popen([*command, "--wait", "900"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    refused = genosynth(*run_args(small_demo.url, run_dir, config_file))
    assert first.poll() is None, "the first run ended before the second started: nothing concurrent"
    assert refused.returncode == 5, refused.stderr[-2000:]
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "another `genosynth run` is running on this run URL" in lines[0]
    _, first_err = first.communicate(timeout=900)
    assert first.returncode in (0, 3), first_err[-3000:]
    waited_out, waited_err = waiting.communicate(timeout=900)
    assert waiting.returncode in (0, 3), waited_err[-3000:]
    assert "(1 tasks ran," in waited_out  # only the on-exit step: everything else was committed

    from genosynth.cost.ledger import read_records

    records = read_records(str(run_dir))
    per_node: dict[tuple, int] = {}
    for record in records:
        node = (record["step"], record["batch"])
        per_node[node] = per_node.get(node, 0) + 1
    assert per_node.pop(("finalize", None)) == 2
    assert set(per_node.values()) == {1}, per_node  # every other task ran exactly once
    attempts = run_dir / run_layout.MARKERS / "attempts"
    assert sorted(os.listdir(attempts / "finalize")) == ["0001.json", "0002.json"]
    assert all(os.listdir(f) == ["0001.json"] for f in attempts.iterdir() if f.name != "finalize")
    assert not lease_file.exists()
