"""Reference tools for the genetics tests: GEMMA (``-gk 1``) and PLINK 2 (``--make-king``), run on small
files written by the tests themselves."""

from __future__ import annotations

import shutil

import pytest


@pytest.fixture(scope="session")
def gemma_bin() -> str:
    return _installed("gemma", "GEMMA", "gemma")


@pytest.fixture(scope="session")
def plink2_bin() -> str:
    return _installed("plink2", "PLINK 2", "plink2")


def _installed(command: str, name: str, package: str) -> str:
    path = shutil.which(command)
    if path is None:
        pytest.fail(f"{name} not installed: apt-get install {package}")
    return path
