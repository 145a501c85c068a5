"""Association metrics on small GWAS tables with known answers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from genosynth.compare import association


def _table(trait: str, p: list[float], beta: list[float] | None = None, chrom: list[str] | None = None,
           pos: list[float | None] | None = None) -> pd.DataFrame:
    m = len(p)
    return pd.DataFrame({
        "trait": trait, "snp": [f"s{i}" for i in range(m)], "chr": chrom or ["1"] * m,
        "pos": pd.array(pos if pos is not None else [1_000_000 * (i + 1) for i in range(m)], dtype="Int64"),
        "af": 0.3, "beta": beta if beta is not None else [0.1] * m, "se": 0.05, "p": p, "n": 100,
    })


def test_a_perfect_copy_scores_one_everywhere():
    rng = np.random.default_rng(0)
    p = np.concatenate([rng.uniform(size=200), [1e-12, 1e-10, 3e-9, 2e-6]])
    real = _table("t", list(p), beta=list(rng.normal(size=p.size)))
    metrics = association.association_metrics(real, real.copy())["t"]
    for row in metrics["thresholds"].values():
        assert row["precision"] == row["recall"] == row["f1"] == 1.0
        assert row["locus_precision"] == row["locus_recall"] == 1.0
        assert row["beta_slope"] == pytest.approx(1.0)
    assert metrics["thresholds"]["1e-8"]["hits_real"] == 3
    assert metrics["neglog10p_correlation"] == pytest.approx(1.0)
    assert metrics["top_neglog10p_ratio"] == 1.0
    assert metrics["lambda_gc_delta"] == 0.0


def test_precision_recall_and_f1_count_shared_hits():
    real = _table("t", [1e-9, 1e-9, 1e-9, 1e-9, 0.5, 0.5])
    synth = _table("t", [1e-9, 1e-9, 0.5, 0.5, 1e-9, 0.5])
    row = association.association_metrics(real, synth)["t"]["thresholds"]["1e-8"]
    assert (row["hits_real"], row["hits_synthetic"], row["true_positives"]) == (4, 3, 2)
    assert row["precision"] == pytest.approx(2 / 3)
    assert row["recall"] == pytest.approx(0.5)
    assert row["f1"] == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))


def test_no_synthetic_hit_leaves_precision_undefined_and_recall_zero():
    real = _table("t", [1e-9, 0.5])
    synth = _table("t", [0.2, 0.5])
    row = association.association_metrics(real, synth)["t"]["thresholds"]["1e-8"]
    assert math.isnan(row["precision"]) and row["recall"] == 0.0 and math.isnan(row["f1"])


def test_bonferroni_threshold_is_005_over_the_snps_tested():
    real = _table("t", [0.5] * 250)
    metrics = association.association_metrics(real, real)["t"]
    assert metrics["thresholds"]["bonferroni"]["p_threshold"] == pytest.approx(0.05 / 250)


def test_hits_merge_into_loci_within_5_mb_and_unplaced_snps_stay_single():
    chrom = np.array(["1", "1", "1", "2", "2", "3"])
    pos = np.array([1e6, 4e6, 12e6, 5e6, 5.5e6, np.nan])
    loci = association.merge_loci(chrom, pos, np.array(["a", "b", "c", "d", "e", "f"]))
    assert [(lo.chrom, lo.start, lo.stop) for lo in loci] == [
        ("1", 1_000_000, 4_000_000), ("1", 12_000_000, 12_000_000), ("2", 5_000_000, 5_500_000),
        ("3", None, None)]


def test_a_shifted_peak_is_the_same_locus_but_another_chromosome_is_not():
    # Real hit at 10 Mb on chr 1; synthetic hits at 12 Mb on chr 1 (same locus) and on chr 2 (false).
    real = _table("t", [1e-12, 0.5, 0.5], chrom=["1", "1", "2"], pos=[10_000_000, 12_000_000, 10_000_000])
    synth = _table("t", [0.5, 1e-12, 1e-12], chrom=["1", "1", "2"], pos=[10_000_000, 12_000_000, 10_000_000])
    row = association.association_metrics(real, synth)["t"]["thresholds"]["1e-8"]
    assert row["f1"] == 0.0  # no shared SNP ...
    assert row["locus_recall"] == 1.0  # ... but the real locus is found,
    assert row["locus_precision"] == 0.5  # and one of two synthetic loci is false


def test_beta_slope_measures_effect_shrinkage_over_real_hits():
    real = _table("t", [1e-10, 1e-10, 0.5], beta=[0.4, -0.2, 5.0])
    synth = _table("t", [1e-10, 1e-10, 0.5], beta=[0.2, -0.1, -5.0])
    row = association.association_metrics(real, synth)["t"]["thresholds"]["1e-8"]
    assert row["beta_slope"] == pytest.approx(0.5)


def test_traits_and_snps_are_aligned_by_name():
    real = pd.concat([_table("a", [1e-9, 0.5, 0.5]), _table("b", [0.5, 0.5, 0.5])])
    synth = _table("a", [0.5, 0.5, 1e-9]).iloc[::-1]  # reversed order, trait b missing
    metrics = association.association_metrics(real, synth)
    assert list(metrics) == ["a"]
    assert metrics["a"]["thresholds"]["1e-8"]["true_positives"] == 0


def test_sign_agreement_and_slope_at_real_hits_catch_flipped_effects():
    real = _table("t", [1e-10, 1e-10, 1e-10, 0.5], beta=[0.4, -0.2, 0.3, 5.0])
    synth = _table("t", [1e-10, 1e-10, 1e-10, 0.5], beta=[-0.4, -0.2, 0.3, 5.0])
    metrics = association.association_metrics(real, synth)["t"]
    assert metrics["effect_sign_agreement_real_hits"] == pytest.approx(2 / 3)
    assert metrics["effect_slope_real_hits"] == pytest.approx((-0.16 + 0.04 + 0.09) / 0.29)


def test_lambda_gc_per_chromosome_isolates_an_inflated_chromosome():
    rng = np.random.default_rng(1)
    p = rng.uniform(size=4000)
    chrom = ["1"] * 2000 + ["2"] * 2000
    real = _table("t", list(p), chrom=chrom, pos=list(range(1, 2001)) * 2)
    inflated = np.concatenate([p[:2000], p[2000:] ** 2])
    synth = _table("t", list(inflated), chrom=chrom, pos=list(range(1, 2001)) * 2)
    by_chrom = association.association_metrics(real, synth)["t"]["lambda_gc_by_chromosome"]
    assert list(by_chrom) == ["1", "2"]
    assert by_chrom["1"]["delta"] == 0.0
    assert by_chrom["2"]["synthetic"] > 1.5 * by_chrom["2"]["real"]
