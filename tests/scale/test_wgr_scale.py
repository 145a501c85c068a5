"""The scalable GWAS on a small biobank-sim: agreement with the exact LMM and with PLINK 2 ``--glm``,
and a calibrated score test on a null binary trait."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from genosynth.gwas import run_gwas
from genosynth.gwas.wgr import run_wgr, wgr_step1

N_SAMPLES, N_SNPS, SEED = 2000, 6000, 3
LOCUS_BP = 250_000
TRAITS, COVARIATES = ["quant", "disease", "null_quant", "null_binary"], ["sex", "age"]


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    from genosynth.datasets.biobank_sim import make_biobank_sim

    folder = tmp_path_factory.mktemp("biobank")
    dataset = make_biobank_sim(str(folder / "ds"), n_samples=N_SAMPLES, n_snps=N_SNPS, seed=SEED,
                               plink=str(folder / "plink" / "bb"))
    return dataset, folder


@pytest.fixture(scope="module")
def wgr_result(cohort):
    return run_wgr(cohort[0], TRAITS, COVARIATES)


def _lambda_gc(p: np.ndarray) -> float:
    return float(np.median(stats.chi2.isf(p, 1)) / stats.chi2.ppf(0.5, 1))


def _locus_minimum(table: pd.DataFrame, planted: dict) -> float:
    near = (table["chr"] == planted["chr"]) & ((table["pos"] - planted["pos"]).abs() <= LOCUS_BP)
    return float(table.loc[near, "p"].min())


def test_biobank_sim_records_its_planted_loci_and_writes_plink(cohort):
    dataset, folder = cohort
    planted = dataset.provenance["planted"]
    assert {p["trait"] for p in planted} == {"quant", "disease"} and len(planted) == 10
    assert dataset.variants["chr"].nunique() == 22 and dataset.n_variants == N_SNPS
    assert set(dataset.samples["disease"].unique()) == {0, 1}
    bim = pd.read_csv(folder / "plink" / "bb.bim", sep="\t", header=None)
    assert list(bim[1]) == list(dataset.variants["id"])
    assert (bim.groupby(0, sort=False)[2].apply(lambda cm: bool(np.all(np.diff(cm) >= 0)))).all()


def test_wgr_finds_the_planted_loci_the_exact_lmm_finds(cohort, wgr_result):
    dataset = cohort[0]
    lmm = run_gwas(dataset, ["quant"], covariates=COVARIATES, model="lmm", loco=True).table
    ours = wgr_result.table[wgr_result.table["trait"] == "quant"]
    merged = lmm.merge(ours, on="snp", suffixes=("_lmm", "_wgr"))
    assert len(merged) == len(lmm)
    r = np.corrcoef(-np.log10(merged["p_lmm"]), -np.log10(merged["p_wgr"]))[0, 1]
    assert r >= 0.95, r
    for planted in (p for p in dataset.provenance["planted"] if p["trait"] == "quant"):
        exact, scalable = _locus_minimum(lmm, planted), _locus_minimum(ours, planted)
        assert exact < 1e-6 and scalable < 1e-6, (planted, exact, scalable)
        assert abs(np.log10(exact) - np.log10(scalable)) < 0.35 * -np.log10(exact), (planted, exact, scalable)


@pytest.mark.skipif(shutil.which("plink2") is None, reason="plink2 (Debian plink2) is not installed")
def test_wgr_linear_step_is_plink2_glm_on_the_loco_adjusted_trait(cohort, wgr_result, tmp_path):
    dataset, folder = cohort
    step1 = wgr_step1(dataset, TRAITS, COVARIATES)
    ids = dataset.sample_ids[step1.analysed]
    columns = {f"quant_loco{c}": step1.adjusted(c)[:, 0] for c in step1.chromosomes}
    frame = pd.DataFrame({"FID": ids, "IID": ids, **columns, "sex": step1.covariates[:, 1],
                          "age": step1.covariates[:, 2]})
    frame.to_csv(tmp_path / "adjusted.txt", sep=" ", index=False, float_format="%.17g")
    adjusted = str(tmp_path / "adjusted.txt")
    subprocess.run(["plink2", "--bfile", str(folder / "plink" / "bb"), "--pheno", adjusted,
                    "--pheno-name", ",".join(columns), "--covar", adjusted,
                    "--covar-name", "sex,age", "--glm", "hide-covar", "log10", "omit-ref", "--threads", "1",
                    "--out", str(tmp_path / "glm")], check=True, capture_output=True)
    ours = wgr_result.table[wgr_result.table["trait"] == "quant"].set_index("snp")
    deltas = []
    for c in step1.chromosomes:
        glm = pd.read_csv(tmp_path / f"glm.quant_loco{c}.glm.linear", sep="\t")
        glm = glm[glm["#CHROM"].astype(str) == c].set_index("ID")
        delta = (-np.log10(ours["p"].reindex(glm.index)) - glm["LOG10_P"]).abs()
        # PLINK 2 prints 6 significant digits: the comparison is exact to that precision.
        printed = 0.5 * 10.0 ** (np.floor(np.log10(glm["LOG10_P"].clip(lower=1e-12))) - 5)
        assert (delta <= 1e-6 + printed).all(), delta.max()
        deltas.append(delta[glm["LOG10_P"] < 1.0])
    # Where -log10 p < 1 the printed value carries 7 decimals: there the tolerance is the target's.
    assert float(pd.concat(deltas).max()) <= 1e-6


def test_score_test_is_calibrated_on_the_null_binary_trait(wgr_result):
    table = wgr_result.table
    assert 0.9 <= _lambda_gc(table.loc[table["trait"] == "null_binary", "p"].to_numpy()) <= 1.1
    assert 0.9 <= _lambda_gc(table.loc[table["trait"] == "null_quant", "p"].to_numpy()) <= 1.1
    assert (table.loc[table["trait"].str.startswith("null"), "p"] > 5e-8).all()
    assert wgr_result.log["traits"]["null_binary"]["test"] == "score-spa"


def test_binary_trait_finds_its_planted_loci(cohort, wgr_result):
    dataset = cohort[0]
    disease = wgr_result.table[wgr_result.table["trait"] == "disease"]
    planted = [p for p in dataset.provenance["planted"] if p["trait"] == "disease"]
    found = [_locus_minimum(disease, p) < 1e-5 for p in planted]
    assert sum(found) >= 3, found


def test_gwas_command_runs_wgr(cohort, tmp_path):
    dataset = cohort[0]
    out = tmp_path / "wgr.tsv"
    done = subprocess.run([sys.executable, "-m", "genosynth", "gwas", dataset.url,
                           "--traits", "quant,disease", "--covariates", "sex,age", "--model", "wgr",
                           "--out", str(out)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    table = pd.read_csv(out, sep="\t")
    assert list(table.columns) == ["trait", "snp", "chr", "pos", "n", "n_miss", "af", "beta", "se", "p"]
    log = json.loads((tmp_path / "wgr.tsv.log.json").read_text())
    assert len(table) == sum(entry["snps_analysed"] for entry in log["traits"].values()) > N_SNPS
    assert log["model"] == "wgr" and log["traits"]["disease"]["test"] == "score-spa"
