"""Ready-made cohorts: ``genosynth datasets get {demo|hs1940|cfw-sim} --out URL [--seed N]``.

- ``hs1940``: GEMMA's example outbred mice (Debian ``gemma-doc``), imported from BIMBAM.
- ``demo``: a small msprime cohort with planted QTL that runs end to end in seconds.
- ``cfw-sim``: an msprime cohort shaped like the CFW study (1,220 x 92,734, 164 phenotype columns).
"""

from __future__ import annotations

from collections.abc import Callable

from genosynth.errors import InputError
from genosynth.formats.dataset import Dataset

NAMES = ("demo", "hs1940", "cfw-sim")


def get_dataset(name: str, out_url: str, *, seed: int = 0) -> Dataset:
    """Build dataset ``name`` at ``out_url``; deterministic per ``seed`` (``hs1940`` ignores it)."""
    return _builder(name)(out_url, seed)


def _builder(name: str) -> Callable[[str, int], Dataset]:
    if name == "hs1940":
        from genosynth.datasets.hs1940 import get_hs1940

        return lambda out, seed: get_hs1940(out)
    if name == "demo":
        from genosynth.datasets.demo import make_demo

        return lambda out, seed: make_demo(out, seed=seed)
    if name == "cfw-sim":
        from genosynth.datasets.cfw_sim import make_cfw_sim

        return lambda out, seed: make_cfw_sim(out, seed=seed)
    raise InputError("datasets get", f"unknown dataset {name!r}; expected one of: {', '.join(NAMES)}")
