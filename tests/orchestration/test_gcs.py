"""Object storage on gs:// end to end, against a real GCS emulator started by the test."""

from __future__ import annotations

import subprocess
import sys

import pytest

from genosynth import pipeline, run_layout, storage
from genosynth.run_state import BatchPlan


def test_storage_round_trip_on_the_emulator(gcs_env):
    fs, _ = storage.filesystem("gs://genosynth-storage/x")
    fs.mkdir("genosynth-storage")
    base = "gs://genosynth-storage/run"
    BatchPlan.build({"batch": b, "chr": "1", "start": 5 * b, "stop": 5 * b + 5, "context_start": 5 * b,
                     "context_stop": 5 * b + 5, "run_start": 0, "positioned": True}
                    for b in range(2)).write(base)
    storage.write_bytes(storage.join(base, "train/batch-00000/model.bin"), b"\x00\x01")
    assert storage.read_json(storage.join(base, "prep/batches.json"))["batches"][1]["start"] == 5
    assert storage.list_keys(base) == ["prep", "train"]
    marker = pipeline.marker_url(base, "train", 0)
    assert not storage.is_committed(marker) and not pipeline.is_committed(base, "train", 0)
    storage.commit(marker, {"step": "train", "batch": 0})
    assert pipeline.is_committed(base, "train", 0)
    assert storage.read_commit(marker) == {"step": "train", "batch": 0}
    assert pipeline.read_batches(base) == [0, 1]
    storage.uncommit(marker, storage.join(base, "train/batch-00000"))
    assert not pipeline.is_committed(base, "train", 0)
    assert storage.list_keys(storage.join(base, "train")) == []
    with pytest.raises(FileNotFoundError):
        storage.read_bytes(storage.join(base, "missing.json"))


@pytest.mark.slow
def test_demo_run_with_input_and_run_on_gs(gcs_env):
    from genosynth.datasets.demo import make_demo

    fs, _ = storage.filesystem("gs://genosynth-e2e/x")
    fs.mkdir("genosynth-e2e")
    dataset = make_demo("gs://genosynth-e2e/cohorts/demo", seed=0, n_individuals=200, snps_per_chromosome=200)
    run_url = "gs://genosynth-e2e/runs/demo"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "genosynth",
            "run",
            dataset.url,
            "--out",
            run_url,
            "--config-text",
            "{batch_snps: 300, gwas_model: lm, loco: false}",
            "--no-progress",
            "--allow-privacy-failure",
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert storage.exists(run_layout.url(run_url, "report/index.html"))
    assert storage.exists(run_layout.url(run_url, "synthetic/dataset.json"))
    assert storage.exists(run_layout.url(run_url, run_layout.COMPARE_METRICS))
    assert pipeline.is_committed(run_url, "report")
    assert storage.list_keys(run_layout.url(run_url, run_layout.LEDGER))
