"""The per-SNP REML search (secant start, Newton on the Chebyshev interpolant, Illinois fallback) against
an independent dense computation of the restricted likelihood, on real genotypes of the hs1940 subset.

The reference builds ``V = lambda K + I`` explicitly, takes ``log|V|``, ``log|Z'V^-1 Z|`` and ``y'Py`` with
dense linear algebra and maximises over ``log lambda`` on GEMMA's [1e-5, 1e5] by a fine grid polished with
a bounded scalar search: no eigendecomposition, no Gram recursion, no interpolation.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import optimize

from genosynth.formats.dataset import Dataset
from genosynth.genetics.dosages import mean_impute
from genosynth.genetics.kinship import centred_kinship, double_centre
from genosynth.gwas import lmm
from genosynth.gwas.filters import FilterSettings, snp_filters
from genosynth.gwas.lmm import LmmPattern

N_MICE = 200
N_SNPS = 10


@pytest.fixture(scope="module")
def small_problem(hs_subset):
    ds = Dataset.open(hs_subset.dataset_url)
    y = ds.samples[["trait1", "trait6"]].to_numpy(dtype=float)
    rows = np.flatnonzero(~np.isnan(y).any(axis=1))[:N_MICE]
    dosages = ds.dosages()[rows]
    stats = snp_filters(dosages, np.ones((len(rows), 1)), FilterSettings())
    kinship = double_centre(centred_kinship(dosages[:, stats.passed]))
    tested = np.flatnonzero(stats.passed)[:: max(1, int(stats.passed.sum()) // N_SNPS)][:N_SNPS]
    snps = mean_impute(dosages[:, tested], 2.0 * stats.af[tested])
    return kinship, np.ones((len(rows), 1)), y[rows], snps


def _dense_reml(log_lambda: float, kinship, covariates, y, x) -> float:
    """GEMMA's restricted log-likelihood of ``y = W a + x b + g + e`` at ``lambda``, densely."""
    n = len(y)
    z = np.column_stack([covariates, x])
    df = n - z.shape[1]
    v = math.exp(log_lambda) * kinship + np.eye(n)
    _, logdet_v = np.linalg.slogdet(v)
    vinv_z = np.linalg.solve(v, z)
    vinv_y = np.linalg.solve(v, y)
    zvz = z.T @ vinv_z
    _, logdet_zvz = np.linalg.slogdet(zvz)
    _, logdet_zz = np.linalg.slogdet(z.T @ z)
    pyy = y @ vinv_y - (z.T @ vinv_y) @ np.linalg.solve(zvz, z.T @ vinv_y)
    return (0.5 * df * (math.log(df) - math.log(2 * math.pi) - 1.0) - 0.5 * logdet_v
            - 0.5 * (logdet_zvz - logdet_zz) - 0.5 * df * math.log(pyy))


def _dense_optimum(kinship, covariates, y, x) -> tuple[float, float]:
    grid = np.linspace(math.log(1e-5), math.log(1e5), 61)
    values = [_dense_reml(t, kinship, covariates, y, x) for t in grid]
    best = int(np.argmax(values))
    if best in (0, len(grid) - 1):
        return grid[best], values[best]
    found = optimize.minimize_scalar(lambda t: -_dense_reml(t, kinship, covariates, y, x),
                                     bounds=(grid[best - 1], grid[best + 1]), method="bounded",
                                     options={"xatol": 1e-10})
    return float(found.x), float(-found.fun)


def test_newton_search_finds_the_dense_reml_optimum(small_problem, monkeypatch):
    kinship, covariates, y, snps = small_problem
    reference = np.array([_dense_optimum(kinship, covariates, y[:, 0], x) for x in snps.T])
    # The search itself, with the SNPs rotated in float64: the optimum to the reference's own precision.
    monkeypatch.setattr(lmm, "SNP_ROTATION_DTYPE", torch.float64)
    exact = LmmPattern(kinship, covariates, y[:, :1], device=torch.device("cpu")).scan(snps)[0]
    assert np.max(np.abs(exact.logl - reference[:, 1])) < 1e-9
    assert np.max(np.abs(np.log(exact.lambda_) - reference[:, 0])) < 1e-5
    # As run (float32 rotation, LmmPattern.rotate_snps): what the rotation costs (measured 1.2e-6).
    monkeypatch.setattr(lmm, "SNP_ROTATION_DTYPE", torch.float32)
    as_run = LmmPattern(kinship, covariates, y[:, :1], device=torch.device("cpu")).scan(snps)[0]
    assert np.max(np.abs(as_run.logl - reference[:, 1])) < 1e-5
    assert np.max(np.abs(np.log(as_run.lambda_) - reference[:, 0])) < 1e-3


def test_traits_searched_together_give_each_trait_alone(small_problem):
    kinship, covariates, y, snps = small_problem
    together = LmmPattern(kinship, covariates, y, device=torch.device("cpu")).scan(snps)
    for k in range(y.shape[1]):
        alone = LmmPattern(kinship, covariates, y[:, k:k + 1], device=torch.device("cpu")).scan(snps)[0]
        for field in ("beta", "se", "p", "lambda_", "logl"):
            np.testing.assert_allclose(getattr(together[k], field), getattr(alone, field), rtol=1e-10, atol=0)
