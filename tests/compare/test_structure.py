"""Structure metrics: allele frequencies, LD decay, kinship and PCA."""

from __future__ import annotations

import numpy as np
import pytest

from genosynth.compare import structure


def test_allele_frequency_agreement():
    af = np.linspace(0.05, 0.95, 50)
    same = structure.allele_frequency_metrics(af, af)
    assert same["correlation"] == pytest.approx(1.0) and same["max_abs_difference"] == 0.0
    shifted = structure.allele_frequency_metrics(af, np.clip(af + 0.1, 0, 1))
    assert shifted["mean_abs_difference"] == pytest.approx(0.1, abs=0.01)


def test_ld_decay_bins_pairs_by_distance_and_uses_r_squared():
    rng = np.random.default_rng(0)
    g = rng.integers(0, 3, size=(400, 1)).astype(np.float32)
    independent = rng.integers(0, 3, size=(400, 1)).astype(np.float32)
    # SNPs 0 and 1 identical 500 bp apart; SNP 2 independent, 2 Mb away.
    dosages = np.hstack([g, g, independent])
    sets = structure.ld_pairs(dosages, np.array(["1", "1", "1"]), np.array([1000.0, 1500.0, 2_001_000.0]), 10)
    curve = structure.ld_decay(dosages, sets)
    first = curve["mean_r2"][0]  # 0-1 kb bin holds only the identical pair
    assert curve["pairs"][0] == 1 and first == pytest.approx(1.0)
    far = [r2 for r2, n, left in zip(curve["mean_r2"], curve["pairs"], curve["bin_left"], strict=True)
           if n and left >= 1e6]
    assert far and max(far) < 0.05
    assert structure.ld_decay_distance(curve, curve)["mean_abs_difference"] == 0.0


def test_pca_of_the_same_cohort_has_no_distance_and_a_one_sided_one_does():
    rng = np.random.default_rng(2)
    p1 = rng.uniform(0.1, 0.9, size=300)
    p2 = np.clip(p1 + rng.normal(0, 0.25, size=300), 0.02, 0.98)
    # Two subpopulations in the real cohort; the "synthetic" cohort draws from only one of them.
    real = np.vstack([rng.binomial(2, p1, size=(100, 300)), rng.binomial(2, p2, size=(100, 300))])
    metrics, scores = structure.pca_comparison(real, real.copy(), k=4)
    assert metrics["centroid_distance_sd"] == pytest.approx(0.0, abs=1e-9)
    assert metrics["mean_wasserstein_sd"] == pytest.approx(0.0, abs=1e-9)
    assert scores["real"].shape == (200, 4)
    one_sided = rng.binomial(2, p1, size=(200, 300))
    shifted, _ = structure.pca_comparison(real, one_sided, k=4)
    assert shifted["centroid_distance_sd"] > 0.8
    assert shifted["score_sd_ratio"][0] < 0.5  # PC1 separated the subpopulations; one is missing


def test_kinship_quantiles_compare_distributions():
    values = np.linspace(-0.1, 0.3, 1000)
    same = structure.kinship_quantiles(values, values)
    assert same["mean_abs_difference"] == 0.0
    assert structure.kinship_quantiles(values, values + 0.05)["mean_abs_difference"] == pytest.approx(0.05)
