"""Options of run_gwas beyond GEMMA's defaults: the joint missing-phenotype rule and sample subsets."""

from __future__ import annotations

import numpy as np
import pytest

from genosynth.errors import InputError
from genosynth.formats.dataset import Dataset, write_dataset
from genosynth.gwas import run_gwas


def test_missing_any_keeps_individuals_with_every_trait(hs_subset):
    ds = Dataset.open(hs_subset.dataset_url)
    complete = int(ds.samples[["trait1", "trait6"]].notna().all(axis=1).sum())
    result = run_gwas(ds, ["trait1", "trait6"], model="lm", missing="any")
    assert {entry["individuals_analysed"] for entry in result.log["traits"].values()} == {complete}
    assert result.log["missing_phenotypes"] == "any"
    assert set(result.table["n"]) == {complete}


def test_sample_subset_equals_the_same_individuals_in_per_trait_mode(hs_subset):
    ds = Dataset.open(hs_subset.dataset_url)
    observed = ds.samples["trait1"].notna().to_numpy()
    chosen = ds.sample_ids[observed][:300]
    subset = run_gwas(ds, ["trait1"], model="lm", samples=chosen)
    assert set(subset.table["n"]) == {300}
    with pytest.raises(InputError, match="unknown sample id"):
        run_gwas(ds, ["trait1"], model="lm", samples=["no_such_mouse"])


def test_categorical_trait_is_refused_and_unknown_model_too(hs_subset):
    with pytest.raises(InputError, match="unknown model"):
        run_gwas(hs_subset.dataset_url, ["trait1"], model="bslmm")
    with pytest.raises(InputError, match="no trait"):
        run_gwas(hs_subset.dataset_url, [], model="lm")


def test_lmm_pvalues_are_uniform_without_signal(hs_subset):
    """A permuted trait has no association: the LMM's p-values are close to uniform (lambda_GC near 1)."""
    from scipy import stats

    ds = Dataset.open(hs_subset.dataset_url)
    rng = np.random.default_rng(7)
    samples = ds.samples.copy()
    values = samples["trait1"].to_numpy(dtype=float).copy()
    observed = ~np.isnan(values)
    values[observed] = rng.permutation(values[observed])
    url = hs_subset.dataset_url + "_permuted"
    permuted = write_dataset(url, samples.assign(trait1=values), ds.variants, ds.dosages(), traits=["trait1"])
    p = run_gwas(permuted, ["trait1"], model="lmm").table["p"].to_numpy()
    inflation = np.median(stats.chi2.isf(p, 1)) / stats.chi2.ppf(0.5, 1)
    assert 0.8 < inflation < 1.2


def test_traits_sharing_individuals_give_the_same_results_together_or_alone(hs_subset):
    """trait2 and trait4 are observed on the same mice: one eigendecomposition and shared SNP sums."""
    together = run_gwas(hs_subset.dataset_url, ["trait2", "trait4"], model="lmm")
    alone = run_gwas(hs_subset.dataset_url, ["trait2"], model="lmm")
    rows = together.table[together.table["trait"] == "trait2"].reset_index(drop=True)
    assert rows["snp"].tolist() == alone.table["snp"].tolist()
    np.testing.assert_allclose(rows["p"], alone.table["p"], rtol=1e-9)
    np.testing.assert_allclose(rows["l_remle"], alone.table["l_remle"], rtol=1e-9)
