"""Reference tools for the genetics tests: GEMMA (``-gk 1``) and PLINK 2 (``--make-king``), run on small
files written by the tests themselves."""

from __future__ import annotations

import shutil

import pytest


@pytest.fixture(scope="session")
def gemma_bin() -> str:
    path = shutil.which("gemma")
    if path is None:
        pytest.fail("GEMMA not installed: apt-get install gemma")
    return path


@pytest.fixture(scope="session")
def plink2_bin() -> str:
    path = shutil.which("plink2")
    if path is None:
        pytest.fail("PLINK 2 not installed: apt-get install plink2")
    return path
