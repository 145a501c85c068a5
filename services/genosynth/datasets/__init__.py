"""Ready-made cohorts: ``genosynth datasets get {demo|hs1940|cfw-sim|biobank-sim} --out URL [--seed N]``.

- ``hs1940``: GEMMA's example outbred mice (Debian ``gemma-doc``), imported from BIMBAM.
- ``demo``: a small msprime cohort with planted QTL that runs end to end in seconds.
- ``cfw-sim``: an msprime cohort shaped like the CFW study (1,220 x 92,734, 164 phenotype columns).
- ``biobank-sim``: an msprime human cohort of any size (``--samples N --snps M``, default 10,000 x
  50,000) with quantitative and binary traits, optionally written as PLINK 1 as well (``--plink PREFIX``).
"""

from __future__ import annotations

from collections.abc import Callable

from genosynth.errors import InputError
from genosynth.formats.dataset import Dataset

NAMES = ("demo", "hs1940", "cfw-sim", "biobank-sim")


def get_dataset(name: str, out_url: str, *, seed: int = 0, samples: int | None = None,
                snps: int | None = None, plink: str | None = None) -> Dataset:
    """Build dataset ``name`` at ``out_url``; deterministic per ``seed`` (``hs1940`` ignores it).

    ``samples``, ``snps`` and ``plink`` (a PLINK 1 prefix also written) apply to ``biobank-sim`` only.
    """
    if name == "biobank-sim":
        from genosynth.datasets.biobank_sim import make_biobank_sim

        return make_biobank_sim(out_url, n_samples=samples or 10_000, n_snps=snps or 50_000, seed=seed,
                                plink=plink)
    if samples is not None or snps is not None or plink is not None:
        raise InputError("datasets get",
                         f"--samples, --snps and --plink apply to biobank-sim only, not {name}")
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
