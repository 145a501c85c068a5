"""The phenotype model recovers a planted architecture: QTL effects, heritability, genetic correlation.

A small cohort (independent SNPs, 3 chromosomes) with two correlated traits is simulated with known lead
QTLs, a polygenic background of known heritability and genetic correlation, and a covariate. The model is
fitted on it, then phenotypes are sampled for fresh genotypes, SNP block by SNP block, and measured with
estimators written here (least squares, Haseman-Elston regression on the dense kinship). Every test runs
for both fits: the exact one (REML on the kinship's eigendecomposition) and the moment one of biobank-sized
cohorts (no n x n matrix).
"""

import numpy as np
import pandas as pd
import pytest

from genosynth.formats.dataset import write_dataset
from genosynth.phenotypes.model import fit_phenotype_model, sample_phenotypes

N_REAL, N_SYNTH, M, CHROMS = 700, 2000, 1200, 3
H2, RG, RE = 0.5, 0.6, 0.2
QTL = {"a": (100, 0.45), "b": (900, -0.4)}
SEX_EFFECT = 1.0


def _genotypes(rng: np.random.Generator, n: int, freqs: np.ndarray) -> np.ndarray:
    return rng.binomial(2, freqs, size=(n, len(freqs))).astype(np.float32)


def _plant(rng: np.random.Generator, x: np.ndarray, freqs: np.ndarray, sex: np.ndarray,
           effects: np.ndarray) -> pd.DataFrame:
    xs = (x - 2 * freqs) / np.sqrt(2 * freqs * (1 - freqs))
    g = xs @ effects
    g = (g - g.mean(axis=0)) / g.std(axis=0) * np.sqrt(H2)
    e = rng.multivariate_normal([0, 0], [[1 - H2, RE * (1 - H2)], [RE * (1 - H2), 1 - H2]], size=len(x))
    table = {"id": [f"i{i}" for i in range(len(x))], "sex": sex}
    for k, name in enumerate(("a", "b")):
        snp, beta = QTL[name]
        table[name] = g[:, k] + e[:, k] + beta * (x[:, snp] - 2 * freqs[snp]) + SEX_EFFECT * sex
    return pd.DataFrame(table)


@pytest.fixture(scope="module")
def planted_data(tmp_path_factory):
    """The real cohort (dataset and table), fresh genotypes to sample for, and the allele frequencies."""
    rng = np.random.default_rng(11)
    freqs = rng.uniform(0.15, 0.85, M)
    effects = rng.multivariate_normal([0, 0], [[1, RG], [RG, 1]], size=M) / np.sqrt(M)
    x = _genotypes(rng, N_REAL, freqs)
    samples = _plant(rng, x, freqs, rng.integers(0, 2, N_REAL).astype(float), effects)
    variants = pd.DataFrame({"id": [f"s{j}" for j in range(M)],
                             "chr": np.repeat(["1", "2", "3"], M // CHROMS),
                             "pos": np.tile(np.arange(1, M // CHROMS + 1) * 100_000, CHROMS),
                             "ref": "A", "alt": "G"})
    dataset = write_dataset(str(tmp_path_factory.mktemp("planted") / "real"), samples, variants, x,
                            traits=["a", "b"], covariates=["sex"])
    return dataset, samples, _genotypes(rng, N_SYNTH, freqs), freqs


def _fit(dataset, method: str):
    return fit_phenotype_model(dataset, traits=["a", "b"], covariates=["sex"], groups=[["a", "b"]],
                               options={"fit": method})


@pytest.fixture(scope="module", params=["exact", "moments"])
def planted(planted_data, request):
    dataset, samples, x_syn, freqs = planted_data
    model = _fit(dataset, request.param)
    assert model.settings["fit"] == request.param
    blocks = ((lo, x_syn[:, lo : lo + 250]) for lo in range(0, M, 250))
    synthetic = sample_phenotypes(model, blocks, n=N_SYNTH, seed=5, ids=[f"syn{i}" for i in range(N_SYNTH)])
    return model, samples, synthetic, x_syn, freqs


def test_the_moment_fit_agrees_with_the_exact_fit(planted_data):
    exact, moments = _fit(planted_data[0], "exact"), _fit(planted_data[0], "moments")
    for a, b in zip(exact.traits, moments.traits, strict=True):
        assert a.qtl_snps.tolist() == b.qtl_snps.tolist()
        np.testing.assert_allclose(b.qtl_effects, a.qtl_effects, atol=0.01)
        # Monte Carlo REML against REML; the backgrounds are ridges at those penalties.
        assert b.vg == pytest.approx(a.vg, rel=0.05) and b.ve == pytest.approx(a.ve, rel=0.03)
        assert np.corrcoef(a.background, b.background)[0, 1] > 0.99
        assert "fit" in a.log and a.log["fit"] == "exact" and b.log["fit"] == "moments"
    assert moments.genetic_correlation[0, 1] == pytest.approx(exact.genetic_correlation[0, 1], abs=0.1)


def _haseman_elston(x: np.ndarray, freqs: np.ndarray, y1: np.ndarray, y2: np.ndarray) -> float:
    """Cross-trait HE regression slope of y1_i y2_j on the standardised kinship, over pairs i != j."""
    xs = (x - 2 * freqs) / np.sqrt(2 * freqs * (1 - freqs))
    kinship = xs @ xs.T / xs.shape[1]
    pairs = ~np.eye(len(x), dtype=bool)
    z1, z2 = (y1 - y1.mean()) / y1.std(), (y2 - y2.mean()) / y2.std()
    product = np.outer(z1, z2)
    product = 0.5 * (product + product.T)
    k = kinship[pairs]
    return float((k * product[pairs]).sum() / (k * k).sum())


def test_lead_qtls_and_covariate_effects_are_recovered(planted):
    model = planted[0]
    for tm in model.traits:
        snp, beta = QTL[tm.name]
        assert snp in tm.qtl_snps.tolist()
        effect = tm.qtl_effects[tm.qtl_snps.tolist().index(snp)]
        assert effect == pytest.approx(beta, abs=0.12)
        assert tm.covariate_effects[1] == pytest.approx(SEX_EFFECT, abs=0.2)
        assert "qtl_calibration" not in tm.log  # numeric traits keep their fitted effects by default
        # Background effects: one per SNP, shrunk (BLUP) below the planted variance, restored at sampling.
        assert tm.background.shape == (M,)
        assert 0 < tm.fitted_variance < tm.genetic_variance


def test_synthetic_phenotypes_keep_heritability_and_genetic_correlation(planted):
    model, real, synthetic, x_syn, freqs = planted
    fixed = np.column_stack([np.ones(N_SYNTH), synthetic["sex"].to_numpy(float)])
    residual = {}
    for name in ("a", "b"):
        snp, _ = QTL[name]
        tm = next(t for t in model.traits if t.name == name)
        design = np.column_stack([fixed, x_syn[:, snp]])
        coef = np.linalg.lstsq(design, synthetic[name].to_numpy(float), rcond=None)[0]
        # The model's effect, which the test above compares with the planted one.
        assert coef[-1] == pytest.approx(tm.qtl_effects[tm.qtl_snps.tolist().index(snp)], abs=0.08)
        residual[name] = synthetic[name].to_numpy(float) - design @ coef
    h2 = [_haseman_elston(x_syn, freqs, residual[t], residual[t]) for t in ("a", "b")]
    for value in h2:
        assert value == pytest.approx(H2, abs=0.15)
    rg = _haseman_elston(x_syn, freqs, residual["a"], residual["b"]) / np.sqrt(h2[0] * h2[1])
    assert rg == pytest.approx(RG, abs=0.3)
    # The phenotypic correlation (genetic plus residual) is the real one.
    assert np.corrcoef(synthetic["a"], synthetic["b"])[0, 1] == pytest.approx(
        np.corrcoef(real["a"], real["b"])[0, 1], abs=0.1)


def _t_statistic(x: np.ndarray, y: np.ndarray, fixed: np.ndarray) -> float:
    """Least-squares t statistic of ``x`` (n,) added to ``y ~ fixed``."""
    design = np.column_stack([fixed, x])
    coef, rss = np.linalg.lstsq(design, y, rcond=None)[:2]
    sigma2 = float(rss[0]) / (len(y) - design.shape[1])
    return float(coef[-1] / np.sqrt(sigma2 * np.linalg.inv(design.T @ design)[-1, -1]))


@pytest.fixture(scope="module")
def binary_cohort(tmp_path_factory):
    """Cases of a liability threshold model (one QTL, a polygenic part, prevalence 0.3), fresh genotypes."""
    rng = np.random.default_rng(21)
    n, m = 1200, 400
    freqs = rng.uniform(0.2, 0.8, m)
    x = _genotypes(rng, n, freqs)
    xs = (x - 2 * freqs) / np.sqrt(2 * freqs * (1 - freqs))
    polygenic = xs @ rng.normal(0, 1, m)
    liability = 0.35 * xs[:, 50] + polygenic / polygenic.std() * np.sqrt(0.3) + rng.normal(0, np.sqrt(0.6), n)
    cases = (liability > np.quantile(liability, 0.7)).astype(float)
    samples = pd.DataFrame({"id": [f"i{i}" for i in range(n)], "case": cases})
    variants = pd.DataFrame({"id": [f"s{j}" for j in range(m)], "chr": np.repeat(["1", "2"], m // 2),
                             "pos": np.tile(np.arange(1, m // 2 + 1) * 100_000, 2), "ref": "A", "alt": "G"})
    dataset = write_dataset(str(tmp_path_factory.mktemp("binary") / "real"), samples, variants, x,
                            traits=["case"], covariates=[])
    return dataset, samples, x, _genotypes(rng, n, freqs)


def test_calibrated_qtl_effects_keep_a_binary_traits_association(binary_cohort):
    """Effects fitted on the 0/1 scale are attenuated by the liability cut when sampled; the calibration
    scales them so the synthetic cases carry the real QTL's association."""
    dataset, samples, x, x_syn = binary_cohort
    n = len(x)
    ones = np.ones((n, 1))
    real = _t_statistic(x[:, 50], samples["case"].to_numpy(float), ones)
    ratios = {}
    for effects in ("fitted", "calibrated"):
        model = fit_phenotype_model(dataset, traits=["case"], covariates=[], groups=[["case"]],
                                    options={"qtl_effects": effects, "fit": "exact"})
        (trait,) = model.traits
        assert 50 in trait.qtl_snps.tolist()
        draws = [sample_phenotypes(model, [(0, x_syn)], n=n, seed=seed, ids=[f"s{i}" for i in range(n)])
                 for seed in range(8)]
        assert all(d["case"].mean() == pytest.approx(0.3, abs=0.01) for d in draws)
        ratios[effects] = np.mean([_t_statistic(x_syn[:, 50], d["case"].to_numpy(float), ones)
                                   for d in draws]) / real
    assert ratios["calibrated"] == pytest.approx(1.0, abs=0.12)
    assert ratios["fitted"] < ratios["calibrated"] - 0.08
    # The default calibrates binary traits (as here) and leaves numeric ones as fitted.
    auto = fit_phenotype_model(dataset, traits=["case"], covariates=[], groups=[["case"]],
                               options={"fit": "exact"})
    np.testing.assert_allclose(auto.traits[0].qtl_effects, model.traits[0].qtl_effects, rtol=0.05)
    # The calibration scaled the QTL up, and logged the locus's tops.
    (locus,) = [c for c in model.traits[0].log["qtl_calibration"] if 50 in c["snps"]]
    assert locus["scale"] > 1.0 and locus["top_model"] == pytest.approx(locus["top_real"], rel=0.02)
