"""The CFW run config and the benchmark's process-tree measurement, on small real data."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from genosynth.run_config import RunConfig

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "cfw-sim.yaml"
# `pytest` started without `python -m` does not put the repository root (the benchmarks) on the path.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from benchmarks.bench_scale import measure  # noqa: E402


@pytest.fixture(scope="module")
def small_cfw(tmp_path_factory):
    from genosynth.datasets.cfw_sim import make_cfw_sim

    # All 164 phenotype columns of cfw-sim, on a few mice and SNPs.
    return make_cfw_sim(str(tmp_path_factory.mktemp("cfw") / "cfw"), seed=3, n_individuals=120,
                        n_snps=1500, length_scale=0.02)


def test_config_names_numeric_traits_and_the_study_covariate(small_cfw):
    config = RunConfig.from_file(str(CONFIG), dataset_url=small_cfw.url)
    kinds = small_cfw.column_kinds
    assert "abBMD" in config.traits and config.covariates == ["SW16"]
    assert 1 <= len(config.traits) <= 12, "a handful of traits, not all 132"
    assert all(t in small_cfw.traits and kinds[t] == "numeric" for t in config.traits)
    assert all(c in small_cfw.covariates for c in config.covariates)
    assert config.model == "mosaic" and config.gwas_model == "lmm" and config.loco


def test_config_qc_thresholds_are_the_studys_and_accepted_by_qc(small_cfw):
    from genosynth.prep.qc import run_qc

    config = RunConfig.from_file(str(CONFIG), dataset_url=small_cfw.url)
    assert config.qc["maf"] == 0.02 and config.qc["min_quality"] == 0.95
    result = run_qc(small_cfw, **config.qc)
    kept = int(result.snp_mask.sum())
    assert 0 < kept < small_cfw.n_variants  # quality and MAF filters both bite on cfw-sim


def test_measure_sees_the_memory_and_cpu_of_child_processes():
    # A parent that starts a child holding ~300 MB: the peak is the tree's, not the parent's.
    child = "import numpy as np, time; a = np.ones(300_000_000 // 8); time.sleep(1.5)"
    parent = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {child!r}], check=True)"
    result = measure([sys.executable, "-c", parent])
    assert result["rc"] == 0
    assert result["peak_rss_mb"] > 300
    assert result["wall_s"] >= 1.5
    assert 0 < result["cpu_s"] < result["wall_s"] + 5


def test_measure_stops_a_process_tree_that_passes_the_memory_limit():
    child = "import numpy as np, time; a = np.ones(400_000_000 // 8); time.sleep(30)"
    parent = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {child!r}], check=True)"
    result = measure([sys.executable, "-c", parent], limit_mb=250)
    assert result["stopped"]
    assert result["wall_s"] < 20, "the whole tree was stopped, not left to sleep"
    assert result["rc"] != 0
    assert result["cpu_s"] != result["cpu_s"], "CPU time of a stopped tree is unknown (NaN)"
