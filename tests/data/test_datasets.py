"""Ready-made cohorts: the demo simulation (planted QTL, determinism) and the dataset CLI."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from genosynth.datasets.demo import make_demo
from genosynth.errors import InputError
from genosynth.formats.dataset import Dataset


def test_demo_shape_columns_and_missingness(demo_dataset):
    ds = demo_dataset
    assert (ds.n_samples, ds.n_variants) == (400, 3000)
    assert ds.traits == ["body_weight", "bone_density", "glucose", "tail_length"]
    assert ds.covariates == ["sex"]
    assert ds.column_kinds["cage"] == "categorical" and ds.column_kinds["sex"] == "binary"
    assert list(ds.chromosome_slices()) == ["1", "2", "3"]
    assert ds.variants["pos"].notna().all()
    dosages = ds.dosages()
    assert 0.001 < np.isnan(dosages).mean() < 0.004
    for trait in ds.traits:
        assert 0 < ds.samples[trait].isna().sum() < 30
    # A few rare SNPs for QC to remove, the rest common.
    maf = np.minimum(ds.variants["af"], 1 - ds.variants["af"])
    assert 30 <= (maf < 0.01).sum() <= 150
    # Correlated traits: shared QTL, background and environment.
    assert ds.samples["body_weight"].corr(ds.samples["tail_length"]) > 0.3


def test_demo_planted_loci_are_strong_hits(demo_dataset):
    ds = demo_dataset
    planted = ds.provenance["planted"]
    assert {p["trait"] for p in planted} == set(ds.traits)
    ids = list(ds.variants["id"])
    dosages = ds.dosages()
    sex = ds.samples["sex"].to_numpy(float)
    for locus in planted:
        y = ds.samples[locus["trait"]].to_numpy()
        g = dosages[:, ids.index(locus["snp"])]
        ok = ~np.isnan(y) & ~np.isnan(g)
        # Least squares with the sex covariate: the effect is found with the planted sign.
        design = np.column_stack([np.ones(ok.sum()), sex[ok], g[ok]])
        coef, *_ = np.linalg.lstsq(design, y[ok], rcond=None)
        resid = y[ok] - design @ coef
        dof = ok.sum() - 3
        se = np.sqrt(resid @ resid / dof * np.linalg.inv(design.T @ design)[2, 2])
        p = 2 * stats.t.sf(abs(coef[2] / se), dof)
        assert p < 1e-7, (locus, p)
        assert np.sign(coef[2]) == np.sign(locus["beta"])


def test_demo_is_deterministic_per_seed(tmp_path, demo_dataset):
    again = make_demo(str(tmp_path / "again"), seed=0)
    assert again.descriptor["checksums"] == demo_dataset.descriptor["checksums"]
    other = make_demo(str(tmp_path / "other"), seed=1)
    assert other.descriptor["checksums"]["genotypes/00000.npy.z"] != \
        demo_dataset.descriptor["checksums"]["genotypes/00000.npy.z"]


def test_datasets_get_cli(tmp_path, run_cli):
    out = tmp_path / "demo"
    result = run_cli("datasets", "get", "demo", "--out", str(out), "--seed", "3")
    assert result.code == 0, result.stderr
    assert "400 samples x 3000 SNPs" in result.stdout
    assert Dataset.open(str(out)).provenance["seed"] == 3
    bad = run_cli("datasets", "get", "nosuch", "--out", str(tmp_path / "x"))
    assert bad.code == 2 and not (tmp_path / "x").exists()


def test_unknown_dataset_name():
    from genosynth.datasets import get_dataset

    with pytest.raises(InputError, match="expected one of: demo, hs1940, cfw-sim"):
        get_dataset("nosuch", "memory://x")


def test_export_cli_writes_each_format(tmp_path, run_cli, demo_dataset):
    for fmt, target, expected in [
        ("bimbam", tmp_path / "bimbam" / "demo", ["demo.geno.txt", "demo.pheno.txt", "demo.anno.txt"]),
        ("plink", tmp_path / "plink" / "demo", ["demo.bed", "demo.bim", "demo.fam", "demo.pheno"]),
        ("cfw", tmp_path / "cfw", ["geno.txt", "map.txt", "pheno.csv"]),
    ]:
        result = run_cli("export", demo_dataset.url, "--format", fmt, "--out", str(target))
        assert result.code == 0, result.stderr
        folder = target if fmt == "cfw" else target.parent
        assert sorted(p.name for p in folder.iterdir()) == sorted(expected)
    header = (tmp_path / "cfw" / "geno.txt").open().readline().split()
    assert header[:2] == ["id", "discard"] and len(header) == 2 + demo_dataset.n_variants


def test_export_of_a_missing_dataset_exits_2(tmp_path, run_cli):
    result = run_cli("export", str(tmp_path / "nothing"), "--format", "cfw", "--out", str(tmp_path / "o"))
    assert result.code == 2 and "not a genosynth dataset" in result.stderr
    assert not (tmp_path / "o").exists()
