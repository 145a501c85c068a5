"""Committed outputs are whole and never rewritten; one run per run URL (the lease); attempt records.

The tear test replays a real run of the toy DAG write by write: for every commit point (every object the
run wrote, in the order it wrote them) it builds the state a writer killed between open and write leaves
(everything before it, the object itself only as a truncated temporary file, nothing after) and resumes.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from pathlib import Path

import pytest

from genosynth import pipeline, run_layout, storage
from genosynth.run_config import RunConfig
from genosynth.runners import lease
from genosynth.runners.local import prepare_run, run_pipeline
from genosynth.runners.step import execute_step

from . import toy_dag


def _objects(root: Path) -> dict[str, bytes]:
    """Every object a reader can see (temporary files are not objects), except timing records."""
    out = {}
    for path in sorted(root.rglob("*")):
        key = path.relative_to(root).as_posix()
        if path.is_file() and storage.TEMP_TAG not in path.name and not key.startswith(pipeline.TIMING_KEYS):
            out[key] = path.read_bytes()
    return out


def _toy_run(run_dir: Path) -> None:
    prepare_run(str(run_dir), RunConfig(dataset_url="unused://dataset", seed=7))
    run_pipeline(str(run_dir), steps_ref=toy_dag.STEPS_REF, max_parallel=1, progress=False,
                 use_processes=False)


def test_a_torn_write_at_every_commit_point_is_repaired_by_resume(tmp_path):
    reference = tmp_path / "reference"
    _toy_run(reference)
    expected = _objects(reference)
    written = sorted((p for p in reference.rglob("*") if p.is_file()), key=lambda p: p.stat().st_mtime_ns)
    keys = [p.relative_to(reference).as_posix() for p in written if p.name != run_layout.CONFIG]
    assert len(keys) > 20
    for point, key in enumerate(keys):
        run_dir = tmp_path / f"torn-{point:03d}"
        (run_dir).mkdir()
        shutil.copy(reference / run_layout.CONFIG, run_dir / run_layout.CONFIG)
        for earlier in keys[:point]:
            (run_dir / earlier).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(reference / earlier, run_dir / earlier)
        torn = run_dir / key
        torn.parent.mkdir(parents=True, exist_ok=True)
        # Opened (truncated) and killed before its bytes were written:
        (torn.parent / f".{torn.name}{storage.TEMP_TAG}torn").write_bytes(b"")
        assert not torn.exists()
        run_pipeline(str(run_dir), steps_ref=toy_dag.STEPS_REF, max_parallel=1, progress=False,
                     use_processes=False)
        assert _objects(run_dir) == expected, f"resume after a torn write of {key} differs"


def test_no_step_rewrites_another_steps_committed_output(tmp_path):
    run_dir = tmp_path / "run"
    _toy_run(run_dir)
    committed = {p: p.stat().st_mtime_ns for p in run_dir.rglob("*") if p.is_file()
                 and not p.relative_to(run_dir).as_posix().startswith(pipeline.TIMING_KEYS)}
    run_pipeline(str(run_dir), steps_ref=toy_dag.STEPS_REF, max_parallel=1, progress=False,
                 use_processes=False)
    for path, stamp in committed.items():
        if path.name != "finalized.json":  # the on-exit step runs again by design
            assert path.stat().st_mtime_ns == stamp, path


def test_attempt_records_get_unique_numbers(tmp_path):
    run_url = str(tmp_path / "run")
    prepare_run(run_url, RunConfig(dataset_url="unused://dataset", seed=7))
    folder = Path(run_layout.url(run_url, run_layout.MARKERS, "attempts", "prep"))
    folder.mkdir(parents=True)
    (folder / "0002.json").write_text("{}")  # a concurrent attempt took number 2 already
    (folder / "0003.json").write_text("{}")
    assert execute_step(run_url, "prep", steps=toy_dag.STEPS).attempt == 4
    assert sorted(os.listdir(folder)) == ["0002.json", "0003.json", "0004.json"]


# --- the lease -----------------------------------------------------------------------------------------
def _lease_doc(url: str, **fields) -> None:
    document = {"owner": "elsewhere:1:x", "host": "elsewhere", "pid": 1, "acquired_at": time.time(),
                "heartbeat_at": time.time(), "ttl_seconds": 60.0, **fields}
    storage.write_json(run_layout.url(url, run_layout.LEASE), document)


@pytest.mark.parametrize("scheme", ["file", "gs"])
def test_the_lease_is_exclusive_expires_and_is_released(tmp_path, scheme, request):
    if scheme == "gs":
        request.getfixturevalue("gcs_env")
        fs, _ = storage.filesystem("gs://genosynth-lease/x")
        if not fs.exists("genosynth-lease"):
            fs.mkdir("genosynth-lease")
        run_url = f"gs://genosynth-lease/{tmp_path.name}/run"
    else:
        run_url = str(tmp_path / "run")
    held = lease.acquire(run_url)
    with pytest.raises(lease.RunBusyError, match="another `genosynth run` is running on this run URL"):
        lease.acquire(run_url)
    started = time.monotonic()
    with pytest.raises(lease.RunBusyError):
        lease.acquire(run_url, wait=2.0)  # waits, then gives up
    assert time.monotonic() - started >= 2.0
    held.release()
    assert not storage.exists(run_layout.url(run_url, run_layout.LEASE))
    # A live lease of another host is respected; one whose heartbeat is older than its ttl is taken over.
    _lease_doc(run_url)
    with pytest.raises(lease.RunBusyError, match="host elsewhere"):
        lease.acquire(run_url)
    _lease_doc(run_url, heartbeat_at=time.time() - 120)
    with lease.acquire(run_url) as taken:
        assert storage.read_json(run_layout.url(run_url, run_layout.LEASE))["owner"] == taken.owner
    # A lease of a process of this host that no longer exists is stale at once (a run killed by SIGKILL).
    _lease_doc(run_url, host=socket.gethostname(), pid=2**22 + 12345)
    with lease.acquire(run_url):
        pass


def test_the_heartbeat_notices_a_lost_lease(tmp_path):
    run_url = str(tmp_path / "run")
    held = lease.acquire(run_url, ttl=0.4)
    _lease_doc(run_url)  # someone else's now
    deadline = time.monotonic() + 5
    while held.alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not held.alive()
    held.release()
    assert json.loads(Path(run_layout.url(run_url, run_layout.LEASE)).read_text())["host"] == "elsewhere"
