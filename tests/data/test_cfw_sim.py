"""cfw-sim at reduced size: the study's shape (columns, chromosomes, dosages, quality) and determinism."""

from __future__ import annotations

import numpy as np
import pytest

from genosynth.datasets.cfw_sim import MOUSE_AUTOSOMES, make_cfw_sim, snp_counts
from genosynth.prep.qc import run_qc


@pytest.fixture(scope="module")
def small_cfw(tmp_path_factory):
    return make_cfw_sim(str(tmp_path_factory.mktemp("cfw") / "ds"), seed=2, n_individuals=160,
                        n_snps=3800, length_scale=0.04)


def test_shape_like_the_study(small_cfw):
    ds = small_cfw
    assert (ds.n_samples, ds.n_variants) == (160, 3800)
    samples = ds.samples
    assert samples.shape[1] == 164 and list(samples.columns[:4]) == ["id", "discard", "round", "SW1"]
    kinds = ds.column_kinds
    assert kinds["round"] == "categorical" and kinds["cage"] == "categorical"
    assert all(kinds[f"SW{r}"] == "binary" for r in range(1, 26))
    assert len(ds.traits) == 132 and "abBMD" in ds.traits and ds.covariates == ["SW16"]
    # One-hot columns agree with the round column.
    assert (samples[[f"SW{r}" for r in range(1, 26)]].sum(axis=1) == 1).all()
    assert (samples["SW16"] == (samples["round"] == "SW16")).all()
    assert samples["discard"].sum() == 16
    assert 0.01 < samples[ds.traits].isna().to_numpy().mean() < 0.12
    # Correlated body weights.
    assert samples["bw_week01"].corr(samples["bw_week12"]) > 0.5


def test_genotypes_chromosomes_dosages_and_quality(small_cfw):
    ds = small_cfw
    assert list(ds.chromosome_slices()) == list(MOUSE_AUTOSOMES)
    sizes = ds.variants.groupby("chr", sort=False).size()
    assert sizes.to_dict() == snp_counts(3800, MOUSE_AUTOSOMES)
    assert ds.variants["pos"].is_monotonic_increasing is False  # restarts per chromosome
    assert all(ds.variants["pos"].iloc[s].is_monotonic_increasing for s in ds.chromosome_slices().values())
    dosages = ds.dosages()
    assert np.nanmin(dosages) >= 0 and np.nanmax(dosages) <= 2
    non_integer = (dosages != np.rint(dosages)).mean()
    assert 0.012 < non_integer < 0.03
    assert ds.descriptor["has_dosages"]
    quality = ds.variants["quality"]
    assert 0.8 < (quality >= 0.95).mean() < 0.95
    planted = [p for p in ds.provenance["planted"] if p["trait"] == "abBMD"]
    assert sorted(p["chr"] for p in planted) == ["11", "5"]
    qc = run_qc(ds, maf=0.02)
    assert qc.log["snps"]["dropped"]["quality"] > 0.05 * ds.n_variants
    assert qc.log["samples"]["dropped"]["discard"] == 16


def test_deterministic_per_seed(tmp_path, small_cfw):
    again = make_cfw_sim(str(tmp_path / "again"), seed=2, n_individuals=160, n_snps=3800, length_scale=0.04)
    assert again.descriptor["checksums"] == small_cfw.descriptor["checksums"]
