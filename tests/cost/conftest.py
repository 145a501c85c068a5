"""Fixtures of the cost tests: a run folder with config and batches, and real Prometheus servers.

``pushgateway`` and ``prometheus`` start Debian's ``prometheus-pushgateway`` and ``prometheus`` on free
127.0.0.1 ports; Prometheus scrapes the Pushgateway every second with ``honor_labels`` and evaluates the
chart's cost rules, as a cluster's Prometheus would.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from genosynth.run_config import RunConfig
from genosynth.run_state import BatchPlan

REPO = Path(__file__).resolve().parents[2]
RULES_FILE = REPO / "charts" / "genosynth" / "files" / "prometheus-rules.yaml"
DASHBOARD_FILE = REPO / "charts" / "genosynth" / "files" / "dashboard.json"


def make_run(run_url: str, *, n_batches: int = 4, batch_snps: int = 2000, **config: Any) -> str:
    """A run as prep leaves it: ``config.json`` and ``prep/batches.json`` with ``n_batches`` batches."""
    RunConfig(dataset_url="demo", batch_snps=batch_snps, **config).save(run_url)
    batches = [{"batch": b, "chr": "1", "start": b * batch_snps, "stop": (b + 1) * batch_snps,
                "context_start": b * batch_snps, "context_stop": (b + 1) * batch_snps, "run_start": 0,
                "positioned": True} for b in range(n_batches)]
    BatchPlan.build(batches, [["trait1"]]).write(run_url)
    return run_url


@pytest.fixture
def run_url(tmp_path: Path) -> str:
    return make_run(str(tmp_path / "run"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _binary(name: str) -> str:
    path = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)
    if path is None:
        pytest.fail(f"{name} not installed: apt-get install prometheus prometheus-pushgateway (see .ci/run)")
    return path


def _wait_ready(url: str, proc: subprocess.Popen, log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"server exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"{url} not ready after {timeout} s: {log.read_text()[-2000:]}")


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture
def pushgateway(tmp_path: Path) -> Iterator[str]:
    """URL of a fresh Pushgateway on 127.0.0.1."""
    port = _free_port()
    log = tmp_path / "pushgateway.log"
    with log.open("w") as out:
        # Debian's build persists to a system file by default; a test server keeps its groups in memory.
        proc = subprocess.Popen([_binary("prometheus-pushgateway"), f"--web.listen-address=127.0.0.1:{port}",
                                 "--persistence.file="], stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(f"{url}/-/ready", proc, log)
        yield url
    finally:
        _stop(proc)


class Prometheus:
    """A Prometheus server scraping one Pushgateway, with the chart's rules loaded."""

    def __init__(self, url: str):
        self.url = url

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Instant query; returns the result vector (raises on a PromQL error)."""
        query = urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(f"{self.url}/api/v1/query?{query}", timeout=10) as response:
            body = json.load(response)
        assert body["status"] == "success", body
        return body["data"]["result"]

    def wait_for(self, expr: str, predicate, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Poll ``expr`` until ``predicate(result)`` holds (scrapes and rule evaluations are periodic)."""
        deadline = time.monotonic() + timeout
        result: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            result = self.query(expr)
            if predicate(result):
                return result
            time.sleep(0.5)
        raise AssertionError(f"{expr}: condition not met within {timeout} s; last result {result}")


@pytest.fixture
def prometheus(tmp_path: Path, pushgateway: str) -> Iterator[Prometheus]:
    port = _free_port()
    config = tmp_path / "prometheus.yml"
    target = pushgateway.removeprefix("http://")
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        f"rule_files:\n  - {RULES_FILE}\n"
        "scrape_configs:\n  - job_name: pushgateway\n    honor_labels: true\n"
        f"    static_configs:\n      - targets: ['{target}']\n"
    )
    log = tmp_path / "prometheus.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [_binary("prometheus"), f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{port}"],
            stdout=out, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(f"{url}/-/ready", proc, log)
        yield Prometheus(url)
    finally:
        _stop(proc)
