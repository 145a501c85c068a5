"""Shared fixtures: small real cohorts written once per test session.

- ``gemma_example_dir``: Debian ``gemma-doc`` example files (mouse_hs1940, HLC, BXD).
- ``hs1940_dataset``: mouse_hs1940 imported from BIMBAM (1,940 x 12,226; traits trait1..trait6).
- ``demo_dataset``: the msprime demo cohort (seed 0) with planted QTL recorded in its provenance.
- ``write_hs1940_subset``: writes the first mice of mouse_hs1940 on some chromosomes as a BIMBAM trio.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable, Collection
from pathlib import Path

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


@pytest.fixture(scope="session")
def write_hs1940_subset(gemma_example_dir) -> Callable[[Path, Collection[str], int], list[list[str]]]:
    """``write(folder, chromosomes, n_mice)``: ``hs.geno.txt``, ``hs.pheno.txt`` and ``hs.anno.txt`` of the
    first ``n_mice`` mice and the SNPs on ``chromosomes``; returns the phenotype rows (strings, "NA")."""
    stem = os.path.join(gemma_example_dir, "mouse_hs1940")

    def write(folder: Path, chromosomes: Collection[str], n_mice: int) -> list[list[str]]:
        keep: set[str] = set()
        with gzip.open(f"{stem}.anno.txt.gz", "rt") as src, open(folder / "hs.anno.txt", "w") as dst:
            for line in src:
                fields = line.split()
                if fields[2] in chromosomes:
                    keep.add(fields[0])
                    dst.write(line)
        with gzip.open(f"{stem}.geno.txt.gz", "rt") as src, open(folder / "hs.geno.txt", "w") as dst:
            for line in src:
                fields = [f.strip() for f in line.split(",")]
                if fields[0] in keep:
                    dst.write(", ".join(fields[: 3 + n_mice]) + "\n")
        with gzip.open(f"{stem}.pheno.txt.gz", "rt") as src:
            rows = [line.rstrip("\n").split("\t") for _, line in zip(range(n_mice), src, strict=False)]
        (folder / "hs.pheno.txt").write_text("".join("\t".join(row) + "\n" for row in rows))
        return rows

    return write
