"""The pipeline's GWAS steps on a run folder, and the reference values of ANCHORS.md on full hs1940."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from genosynth import run_layout, storage
from genosynth.gwas import run_gwas
from genosynth.gwas.output import read_table
from genosynth.gwas.step import run_real, run_synthetic
from genosynth.run_config import RunConfig


def test_steps_write_real_and_synthetic_tables_reproducibly(hs_subset, tmp_path):
    run = str(tmp_path / "run")
    for key in (run_layout.PREP_COHORT, run_layout.SYNTHETIC):
        shutil.copytree(hs_subset.dataset_url, run_layout.url(run, key))
    RunConfig(dataset_url=hs_subset.dataset_url, traits=["trait1", "trait6"], covariates=["trait4"],
              gwas_model="lmm", loco=True).save(run)
    run_real(run)
    run_synthetic(run)
    real_url = run_layout.url(run, run_layout.GWAS_REAL)
    first = storage.read_bytes(real_url)
    real, synthetic = read_table(real_url), read_table(run_layout.url(run, run_layout.GWAS_SYNTHETIC))
    assert real.equals(synthetic)  # same cohort in both places: same table
    assert set(real["trait"]) == {"trait1", "trait6"}
    assert storage.read_json(real_url + ".log.json")["loco"] is True
    run_real(run)
    assert storage.read_bytes(real_url) == first  # a rerun writes identical bytes


@pytest.mark.slow
def test_hs1940_reference_values(hs1940_dataset):
    """ANCHORS.md: BIMBAM, -n 1, no covariates: 1,410 mice, 10,768 SNPs, pve 0.608801; rs3683945."""
    result = run_gwas(hs1940_dataset, ["trait1"], model="lmm")
    entry = result.log["traits"]["trait1"]
    assert entry["individuals_analysed"] == 1410
    assert entry["snps_analysed"] == 10768
    assert entry["pve"] == pytest.approx(0.608801, abs=5e-7)
    row = result.table.set_index("snp").loc["rs3683945"]
    assert row["beta"] == pytest.approx(-7.788665e-02, rel=1e-6)
    assert row["se"] == pytest.approx(6.193502e-02, rel=1e-6)
    assert np.log10(row["p"]) == pytest.approx(np.log10(2.087616e-01), abs=1e-6)
