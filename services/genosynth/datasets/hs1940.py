"""GEMMA's ``mouse_hs1940`` example (1,940 heterogeneous-stock mice, 12,226 SNPs, 6 phenotypes).

Read from the Debian ``gemma-doc`` package's BIMBAM files; sample IDs come from the matching PLINK
``.fam`` when it is there, so the BIMBAM and PLINK imports of this cohort name individuals alike.
"""

from __future__ import annotations

import os

from genosynth.errors import InputError
from genosynth.formats.bimbam import import_bimbam
from genosynth.formats.dataset import Dataset
from genosynth.formats.text_tables import open_lines

DEFAULT_DIR = "/usr/share/doc/gemma/example"
STEM = "mouse_hs1940"
INSTALL_HINT = "install GEMMA's example data with `apt-get install gemma-doc`"


def hs1940_files(data_dir: str = DEFAULT_DIR) -> dict[str, str]:
    """Paths of the hs1940 BIMBAM trio (and ``fam``); :class:`InputError` with the install hint if absent."""
    paths = {kind: os.path.join(data_dir, f"{STEM}.{kind}.txt.gz") for kind in ("geno", "pheno", "anno")}
    paths["fam"] = os.path.join(data_dir, f"{STEM}.fam.gz")
    for kind in ("geno", "pheno", "anno"):
        if not os.path.exists(paths[kind]):
            raise InputError(paths[kind], f"hs1940 example data not found; {INSTALL_HINT}")
    return paths


def get_hs1940(out_url: str, *, data_dir: str = DEFAULT_DIR) -> Dataset:
    """Import mouse_hs1940 into an internal dataset at ``out_url`` (traits ``trait1..trait6``)."""
    paths = hs1940_files(data_dir)
    sample_ids = None
    if os.path.exists(paths["fam"]):
        sample_ids = [line.split()[1] for _, line in open_lines(paths["fam"]) if line.strip()]
    return import_bimbam(
        paths["geno"], paths["pheno"], paths["anno"], out_url, sample_ids=sample_ids,
        provenance={"dataset": "hs1940", "source": f"Debian gemma-doc: {STEM}.{{geno,pheno,anno}}.txt.gz"},
    )
