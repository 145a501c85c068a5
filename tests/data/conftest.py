"""Fixtures of the data tests: run the real command line in a subprocess."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass

import pytest


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str


@pytest.fixture(scope="session")
def run_cli():
    def _run(*args: str) -> CliResult:
        done = subprocess.run([sys.executable, "-m", "genosynth", *args], capture_output=True, text=True,
                              timeout=300)
        return CliResult(done.returncode, done.stdout, done.stderr)

    return _run
