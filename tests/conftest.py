"""Shared fixtures: small real cohorts written once per test session.

- ``gemma_example_dir``: Debian ``gemma-doc`` example files (mouse_hs1940, HLC, BXD).
- ``hs1940_dataset``: mouse_hs1940 imported from BIMBAM (1,940 x 12,226; traits trait1..trait6).
- ``demo_dataset``: the msprime demo cohort (seed 0) with planted QTL recorded in its provenance.
"""

from __future__ import annotations

import os

import pytest

GEMMA_EXAMPLE_DIR = "/usr/share/doc/gemma/example"


@pytest.fixture(scope="session")
def gemma_example_dir() -> str:
    if not os.path.exists(os.path.join(GEMMA_EXAMPLE_DIR, "mouse_hs1940.geno.txt.gz")):
        pytest.fail("GEMMA example data missing: apt-get install gemma-doc")
    return GEMMA_EXAMPLE_DIR


@pytest.fixture(scope="session")
def hs1940_dataset(tmp_path_factory, gemma_example_dir):
    from genosynth.datasets.hs1940 import get_hs1940

    return get_hs1940(str(tmp_path_factory.mktemp("hs1940") / "dataset"), data_dir=gemma_example_dir)


@pytest.fixture(scope="session")
def demo_dataset(tmp_path_factory):
    from genosynth.datasets.demo import make_demo

    return make_demo(str(tmp_path_factory.mktemp("demo") / "dataset"), seed=0)
