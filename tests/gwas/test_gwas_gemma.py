"""Our GWAS engine against real GEMMA 0.98.5 on a subset of mouse_hs1940 (800 mice, chromosomes 1-3).

Targets: the same SNP set after filters, the same analysed individuals, and max |delta log10 p_wald|
<= 1e-6 for the linear model, <= 1e-4 for the LMM and LOCO.
"""

from __future__ import annotations

import numpy as np
import pytest
from gwas_testlib import log_value, max_log10_difference

from genosynth.formats.dataset import Dataset
from genosynth.genetics.kinship import centred_kinship
from genosynth.gwas import run_gwas
from genosynth.gwas.filters import FilterSettings, snp_filters

COVARIATES = ["trait4", "trait6"]


def _ours(hs_subset, traits, covariates, model, loco=False):
    return run_gwas(hs_subset.dataset_url, traits, covariates=covariates, model=model, loco=loco)


def _compare(result, trait, reference, log, tolerance):
    ours = result.table[result.table["trait"] == trait].reset_index(drop=True)
    assert ours["snp"].tolist() == reference["rs"].tolist()  # same SNPs, same order
    assert int(ours["n"].iloc[0]) == int(log_value(log, "number of analyzed individuals"))
    assert max_log10_difference(ours["p"], reference["p_wald"]) <= tolerance
    np.testing.assert_allclose(ours["af"], reference["af"], atol=5e-4)  # GEMMA prints 3 decimals
    return ours


@pytest.mark.parametrize("with_covariates", [False, True])
def test_linear_model_matches_gemma_lm(hs_subset, gemma, with_covariates):
    covariates = COVARIATES if with_covariates else []
    result = _ours(hs_subset, ["trait1"], covariates, "lm")
    reference, log = gemma.lm(1, with_covariates)
    ours = _compare(result, "trait1", reference, log, 1e-6)
    np.testing.assert_allclose(ours["beta"], reference["beta"], rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("with_covariates", [False, True])
def test_lmm_matches_gemma_lmm(hs_subset, gemma, with_covariates):
    covariates = COVARIATES if with_covariates else []
    result = _ours(hs_subset, ["trait1", "trait6"] if not with_covariates else ["trait1"], covariates, "lmm")
    reference, log = gemma.lmm(1, with_covariates)
    ours = _compare(result, "trait1", reference, log, 1e-4)
    np.testing.assert_allclose(ours["l_remle"], reference["l_remle"], rtol=1e-4)
    entry = result.log["traits"]["trait1"]
    assert entry["pve"] == pytest.approx(log_value(log, "pve estimate in the null model"), abs=2e-6)
    assert entry["snps_analysed"] == int(log_value(log, "number of analyzed SNPs"))
    if not with_covariates:
        # trait6 has other missing individuals: its own eigendecomposition, as GEMMA -n 6.
        reference6, log6 = gemma.lmm(6)
        _compare(result, "trait6", reference6, log6, 1e-4)


@pytest.mark.parametrize("with_covariates", [False, True])
def test_loco_matches_gemma_loco(hs_subset, gemma, with_covariates):
    covariates = COVARIATES if with_covariates else []
    result = _ours(hs_subset, ["trait1"], covariates, "lmm", loco=True)
    reference, log = gemma.loco(1, with_covariates)
    _compare(result, "trait1", reference, log, 1e-4)
    assert result.log["loco"] is True


def test_kinship_matches_gemma_gk(hs_subset, gemma):
    ds = Dataset.open(hs_subset.dataset_url)
    dosages = ds.dosages()
    observed = ~np.isnan(ds.samples["trait1"].to_numpy(dtype=float))
    stats = snp_filters(dosages[observed], np.ones((observed.sum(), 1)), FilterSettings())
    ours = centred_kinship(dosages[:, stats.passed])
    np.testing.assert_allclose(ours, gemma.kinship(1), rtol=0, atol=2e-9)  # GEMMA writes 10 digits


def test_loco_kinship_is_the_full_kinship_minus_one_chromosome(hs_subset, gemma):
    from genosynth.genetics.kinship import kinship_sum, loco_kinship

    ds = Dataset.open(hs_subset.dataset_url)
    dosages = ds.dosages()
    observed = ~np.isnan(ds.samples["trait1"].to_numpy(dtype=float))
    passed = snp_filters(dosages[observed], np.ones((observed.sum(), 1)), FilterSettings()).passed
    on_chr2 = passed & (ds.variants["chr"].astype(str).to_numpy() == "2")
    total = kinship_sum(dosages[:, passed])
    part = kinship_sum(dosages[:, on_chr2])
    ours = loco_kinship(total, int(passed.sum()), part, int(on_chr2.sum()))
    np.testing.assert_allclose(ours, gemma.kinship(1, loco="2"), rtol=0, atol=2e-9)
