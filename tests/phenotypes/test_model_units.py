"""Units of genosynth.phenotypes.model: settings, centring, binary traits, missing values, other columns.

A small cohort (independent SNPs, 2 chromosomes) with one numeric trait carrying a strong lead QTL, one
binary trait made by cutting a liability, a categorical covariate and a free-text-like categorical column.
"""

import numpy as np
import pandas as pd
import pytest

from genosynth.formats.dataset import write_dataset
from genosynth.phenotypes.model import MOMENTS_FROM, fit_method, fit_phenotype_model, sample_phenotypes

N, M, N_SYNTH = 400, 300, 600
QTL_SNP, QTL_EFFECT = 40, 0.8


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    rng = np.random.default_rng(3)
    freqs = rng.uniform(0.2, 0.8, M)
    x = rng.binomial(2, freqs, size=(N, M)).astype(np.float32)
    xs = (x - 2 * freqs) / np.sqrt(2 * freqs * (1 - freqs))
    g = xs @ rng.normal(0, 1 / np.sqrt(M), M)
    strain = rng.choice(["A", "B", "C"], N)
    quantitative = (g + QTL_EFFECT * (x[:, QTL_SNP] - 2 * freqs[QTL_SNP]) + 0.5 * (strain == "B")
                    + rng.normal(0, 0.8, N))
    liability = g + rng.normal(0, 1, N)
    case = (liability > np.quantile(liability, 0.7)).astype(float)
    quantitative[rng.random(N) < 0.1] = np.nan  # 10% missing
    samples = pd.DataFrame({"id": [f"i{i}" for i in range(N)], "q": quantitative, "case": case,
                            "strain": strain, "batch": rng.choice(["x", "y"], N)})
    variants = pd.DataFrame({"id": [f"s{j}" for j in range(M)], "chr": np.repeat(["1", "2"], M // 2),
                             "pos": np.tile(np.arange(1, M // 2 + 1) * 500_000, 2), "ref": "A", "alt": "G"})
    dataset = write_dataset(str(tmp_path_factory.mktemp("units") / "real"), samples, variants, x,
                            traits=["q", "case"], covariates=["strain"])
    model = fit_phenotype_model(dataset, traits=["q", "case"], covariates=["strain"], groups=[["q", "case"]])
    x_syn = rng.binomial(2, freqs, size=(N_SYNTH, M)).astype(np.float32)
    blocks = ((lo, x_syn[:, lo : lo + 64]) for lo in range(0, M, 64))
    synthetic = sample_phenotypes(model, blocks, n=N_SYNTH, seed=9, ids=[f"syn{i}" for i in range(N_SYNTH)])
    return model, samples, synthetic, x_syn, dataset


@pytest.mark.parametrize("key, value", [("background", "lasso"), ("restore", "none"), ("fit", "approximate"),
                                        ("qtl_effects", "shrunk")])
def test_unknown_settings_are_rejected_with_the_allowed_values(cohort, tmp_path, key, value):
    samples = cohort[1]
    variants = pd.DataFrame({"id": ["s0", "s1"], "chr": ["1", "1"], "pos": [1, 2], "ref": "A", "alt": "G"})
    rng = np.random.default_rng(0)
    small = write_dataset(str(tmp_path / "small"), samples.iloc[:50].reset_index(drop=True), variants,
                          rng.integers(0, 3, (50, 2)).astype(np.float32), traits=["q"], covariates=[])
    with pytest.raises(ValueError, match=f"model_options.phenotypes.{key}"):
        fit_phenotype_model(small, traits=["q"], covariates=[], groups=[], options={key: value})


def test_the_lead_qtl_and_the_covariate_levels_are_fitted(cohort):
    model = cohort[0]
    q = next(t for t in model.traits if t.name == "q")
    assert QTL_SNP in q.qtl_snps.tolist()
    assert q.qtl_effects[q.qtl_snps.tolist().index(QTL_SNP)] == pytest.approx(QTL_EFFECT, abs=0.25)
    # intercept, strain B, strain C (A is the reference level)
    assert q.covariate_effects.shape == (3,)
    assert q.covariate_effects[1] == pytest.approx(0.5, abs=0.3)
    assert model.describe()["covariates"] == ["strain"]


def test_binary_traits_keep_their_prevalence_and_stay_binary(cohort):
    model, samples, synthetic, *_ = cohort
    case = next(t for t in model.traits if t.kind == "binary")
    assert case.prevalence == pytest.approx(samples["case"].mean())
    observed = synthetic["case"].dropna()
    assert set(observed.unique()) <= {0.0, 1.0}
    assert observed.mean() == pytest.approx(samples["case"].mean(), abs=0.03)


def test_the_synthetic_table_has_every_real_column_and_real_missingness(cohort):
    _, samples, synthetic, *_ = cohort
    assert list(synthetic.columns) == list(samples.columns)
    assert len(synthetic) == N_SYNTH and synthetic["id"].is_unique
    assert synthetic["q"].isna().mean() == pytest.approx(samples["q"].isna().mean(), abs=0.04)
    # Non-genetic columns come from the copula: the same categories in about the same shares.
    assert set(synthetic["batch"].dropna()) <= {"x", "y"}
    assert set(synthetic["strain"].dropna()) == {"A", "B", "C"}


def test_synthetic_phenotypes_follow_the_synthetic_genotypes(cohort):
    _, _, synthetic, x_syn, _ = cohort
    observed = synthetic["q"].notna().to_numpy()
    slope = np.polyfit(x_syn[observed, QTL_SNP], synthetic["q"].to_numpy(float)[observed], 1)[0]
    assert slope == pytest.approx(QTL_EFFECT, abs=0.25)


def test_the_same_seed_gives_the_same_table(cohort):
    model, _, synthetic, x_syn, _ = cohort
    blocks = ((lo, x_syn[:, lo : lo + 100]) for lo in range(0, M, 100))  # other block sizes, same values
    again = sample_phenotypes(model, blocks, n=N_SYNTH, seed=9, ids=list(synthetic["id"]))
    pd.testing.assert_frame_equal(again, synthetic, check_exact=False, rtol=1e-6)


def test_traits_fitted_together_equal_traits_fitted_one_at_a_time(cohort, monkeypatch):
    # q misses 10% of the individuals and case none: the grouped rounds lay each trait out on every
    # individual, and must give what a fit of that trait alone gives.
    model, dataset = cohort[0], cohort[4]
    monkeypatch.setattr("genosynth.phenotypes.model.EIGEN_BUDGET", 1)  # groups of one trait
    alone = fit_phenotype_model(dataset, traits=["q", "case"], covariates=["strain"], groups=[["q", "case"]])
    for together, single in zip(model.traits, alone.traits, strict=True):
        assert together.name == single.name
        assert together.qtl_snps.tolist() == single.qtl_snps.tolist()
        np.testing.assert_allclose(together.qtl_effects, single.qtl_effects, rtol=1e-9)
        np.testing.assert_allclose(together.background, single.background, rtol=1e-5, atol=1e-9)
        assert together.vg == pytest.approx(single.vg, rel=1e-9)
    np.testing.assert_allclose(model.genetic_correlation, alone.genetic_correlation, atol=1e-12)


def test_auto_fits_without_n_by_n_matrices_from_the_biobank_size(cohort):
    assert cohort[0].settings["fit"] == "exact"  # 400 individuals, the default "auto"
    assert [fit_method("auto", n) for n in (MOMENTS_FROM - 1, MOMENTS_FROM)] == ["exact", "moments"]
    assert fit_method("exact", 10 * MOMENTS_FROM) == "exact" and fit_method("moments", 10) == "moments"
