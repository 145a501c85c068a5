"""The compare step end to end on small msprime runs, and the privacy gate built on it."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from compare_cohorts import N_TRAIN, build_run

from genosynth import compare_records, run_layout, storage
from genosynth.compare import gate, step
from genosynth.errors import InputError
from genosynth.formats.dataset import Dataset, write_dataset
from genosynth.run_config import RunConfig


def _metrics(run_url: str) -> dict:
    return storage.read_json(run_layout.url(run_url, run_layout.COMPARE_METRICS))


def _released(run_url: str) -> bool:
    """The release decision, from its own object; assemble's synthetic/dataset.json is never rewritten."""
    descriptor = storage.read_bytes(run_layout.url(run_url, run_layout.SYNTHETIC, "dataset.json"))
    released = compare_records.is_released(run_url)
    assert storage.read_bytes(run_layout.url(run_url, run_layout.SYNTHETIC, "dataset.json")) == descriptor
    assert "released" not in storage.read_json(run_layout.url(run_url, run_layout.SYNTHETIC, "dataset.json"))
    return bool(released)


def test_a_copy_of_the_training_cohort_scores_perfect_fidelity_and_no_privacy(copy_run):
    metrics = _metrics(copy_run)
    for trait in ("trait_a", "trait_b"):
        for row in metrics["association"][trait]["thresholds"].values():
            assert row["f1"] == 1.0 and row["locus_recall"] == 1.0
    privacy = metrics["privacy"]
    assert privacy["identical_genomes"] == N_TRAIN
    assert privacy["aats"] == 0.0
    assert privacy["membership_auc"] > 0.95
    assert privacy["fraction_closer_than_real_p1"] == 1.0
    assert privacy["max_king_kinship"] == pytest.approx(0.5)
    assert metrics["structure"]["allele_frequency"]["correlation"] == pytest.approx(1.0)
    assert metrics["structure"]["pca"]["centroid_distance_sd"] == pytest.approx(0.0, abs=1e-6)


def test_the_gate_blocks_a_copy_of_the_training_cohort(copy_run):
    verdict = compare_records.read_gate(copy_run)
    assert not verdict.passed
    assert any(f.startswith(f"identical genomes: {N_TRAIN}") for f in verdict.failures)
    assert not _released(copy_run)


def test_fresh_genomes_of_the_same_population_pass_the_gate_and_are_released(fresh_run):
    privacy = _metrics(fresh_run)["privacy"]
    assert privacy["identical_genomes"] == 0
    assert privacy["aats"] == pytest.approx(0.5, abs=0.08)
    assert privacy["membership_auc"] == pytest.approx(0.5, abs=0.08)
    assert abs(privacy["privacy_loss"]) < 0.1
    verdict = compare_records.read_gate(fresh_run)
    assert verdict.passed, verdict.failures
    assert _released(fresh_run)


def test_fresh_genomes_recover_the_planted_loci(fresh_run):
    association = _metrics(fresh_run)["association"]
    for trait in ("trait_a", "trait_b"):
        assert association[trait]["thresholds"]["bonferroni"]["locus_recall"] == 1.0


def _clone(run_url: str, tmp_path) -> str:
    target = tmp_path / "run"
    shutil.copytree(run_url, target)
    return str(target)


def test_a_lightly_perturbed_copy_is_still_blocked(tmp_path, copy_run):
    # 3% of calls redrawn: no genome is identical any more, but each sits next to its training original.
    rng = np.random.default_rng(5)
    run_url = _clone(copy_run, tmp_path)
    train = Dataset.open(run_layout.url(run_url, run_layout.PREP_TRAIN))
    dosages = train.dosages()
    flip = rng.uniform(size=dosages.shape) < 0.03
    dosages[flip] = rng.integers(0, 3, size=int(flip.sum()))
    write_dataset(run_layout.url(run_url, run_layout.SYNTHETIC), train.samples, train.variants, dosages,
                  traits=train.traits, covariates=train.covariates, column_kinds=train.column_kinds)
    step.run(run_url)
    verdict = compare_records.read_gate(run_url)
    privacy = _metrics(run_url)["privacy"]
    assert privacy["identical_genomes"] == 0
    assert not verdict.passed
    assert any("membership" in f for f in verdict.failures)
    assert any("closer to a training genome" in f for f in verdict.failures)
    assert not _released(run_url)


def test_thresholds_come_from_the_run_config(tmp_path, copy_run):
    run_url = _clone(copy_run, tmp_path)
    config = RunConfig.load(run_url)
    config.privacy = {key: None for key in gate.DEFAULT_THRESHOLDS}  # every check disabled
    config.save(run_url)
    verdict = gate.apply(run_url)
    assert verdict.passed and verdict.checks == []
    assert compare_records.read_gate(run_url).passed and _released(run_url)
    config.privacy = {"max_membership_auc": 0.99, "min_aats": None}
    config.save(run_url)
    failed = {c.metric for c in gate.apply(run_url).checks if not c.passed}
    assert "membership_auc_beyond_noise" in failed and "aats" not in failed
    assert not _released(run_url)


def test_bad_thresholds_are_input_errors():
    with pytest.raises(InputError, match="unknown privacy threshold 'max_identical'"):
        gate.thresholds_from_config({"max_identical": 0})
    with pytest.raises(InputError, match=r"privacy\.min_aats"):
        gate.thresholds_from_config({"min_aats": "high"})
    assert gate.thresholds_from_config({"min_aats": 0.45})["min_aats"] == 0.45


def test_an_unmeasurable_metric_fails_its_check():
    verdict = gate.evaluate({"identical_genomes": 0, "membership_auc_beyond_noise": float("nan")},
                            {"max_identical_genomes": 0, "max_membership_auc": 0.6})
    assert not verdict.passed
    assert verdict.failures[0].startswith("membership-inference AUC, beyond noise: nan")


def test_read_gate_before_compare_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="compare step has not run"):
        compare_records.read_gate(str(tmp_path))


def test_rerunning_compare_writes_identical_bytes(fresh_run):
    keys = (run_layout.COMPARE_METRICS, step.DETAILS, gate.GATE)
    before = [storage.read_bytes(run_layout.url(fresh_run, key)) for key in keys]
    step.run(fresh_run)
    assert [storage.read_bytes(run_layout.url(fresh_run, key)) for key in keys] == before


def test_a_synthetic_cohort_on_other_snps_is_rejected(tmp_path, population):
    run_url = build_run(str(tmp_path / "run"), population, "fresh")
    synth = Dataset.open(run_layout.url(run_url, run_layout.SYNTHETIC))
    write_dataset(synth.url, synth.samples, synth.variants.iloc[:-1], synth.dosages()[:, :-1],
                  traits=synth.traits, covariates=synth.covariates)
    with pytest.raises(InputError, match="variants differ from prep/train"):
        step.run(run_url)


def test_missing_gwas_tables_are_input_errors(tmp_path, population):
    run_url = build_run(str(tmp_path / "run"), population, "fresh")
    storage.remove(run_layout.url(run_url, run_layout.GWAS_SYNTHETIC))
    with pytest.raises(InputError, match="GWAS table not found"):
        step.run(run_url)
