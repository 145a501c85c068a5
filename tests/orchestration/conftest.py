"""Fixtures of the orchestration tests: Argo's CRD schemas and a GCS emulator on 127.0.0.1."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

# gcsfs reads this when it is imported: it must be set before anything imports gcsfs. The emulator does
# not serve the gRPC bucket-layout probe, which would otherwise stall each new bucket for a minute.
os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")

REPO_ROOT = Path(__file__).resolve().parents[2]
# In CI a copy of shared/ sits beside the clone; the schemas are Argo v4.1's own CRDs.
ARGO_SCHEMA_DIR = REPO_ROOT.parent / "shared" / "schemas" / "argo-v4.1"


@pytest.fixture(scope="session")
def argo_schema_dir() -> Path:
    if not (ARGO_SCHEMA_DIR / "argoproj.io_workflowtemplates.yaml").exists():
        pytest.skip("Argo v4.1 CRD schemas not found at ../shared/schemas/argo-v4.1 (beside the repository)")
    return ARGO_SCHEMA_DIR


@pytest.fixture(scope="session")
def strict_errors(argo_schema_dir, tmp_path_factory):
    """``strict_errors(manifest) -> [problem, ...]`` against the strict Argo v4.1 schemas."""
    from genosynth.runners.argo_schema import validation_errors

    cache_dir = tmp_path_factory.mktemp("argo-strict-schemas")
    return lambda manifest: validation_errors(manifest, argo_schema_dir, cache_dir=cache_dir)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def gcs_emulator():
    """A real GCS JSON-API emulator (PyPI gcp-storage-emulator) in a child process, in memory.

    Yields the emulator's base URL; ``STORAGE_EMULATOR_HOST`` must point at it for gcsfs to use it.
    """
    for module in ("gcsfs", "gcp_storage_emulator"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed (pip install '.[dev]')")
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gcp_storage_emulator",
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--in-memory",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if process.poll() is not None:
                pytest.fail(f"GCS emulator exited with status {process.returncode}")
            time.sleep(0.1)
    else:
        process.kill()
        pytest.fail("GCS emulator did not start within 30 s")
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
def gcs_env(gcs_emulator, monkeypatch):
    """Environment for gcsfs to talk to the emulator (also inherited by subprocesses)."""
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "genosynth-test")
    return gcs_emulator
