"""The REML null fit against GEMMA's own null estimates, a dense likelihood and the one-way ANOVA case.

GEMMA: ``gemma -lmm 1`` on the first 300 mice of mouse_hs1940 and the SNPs of chromosome 1, with and
without covariates; its log prints the REML log-likelihood, pve, vg, ve and the covariate effects "in the
null model" to six significant digits. Both fits use GEMMA's kinship file (``-gk 1``), double-centred
over the analysed mice as GEMMA does.
"""

from __future__ import annotations

import math
import os
import subprocess

import numpy as np
import pytest
import torch

from genosynth.genetics.kinship import double_centre
from genosynth.genetics.reml import (
    L_MAX,
    L_MIN,
    eigendecompose,
    fit_null,
    fit_null_rotated,
    logdet_v,
    logdet_zz,
    region_ends,
    reml_weights,
    restricted_loglik,
)

N_MICE = 300
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def hs_chromosome1(tmp_path_factory, write_hs1940_subset, gemma_bin):
    """BIMBAM files of the subset, GEMMA's kinship of it, and a runner of ``gemma -lmm 1``."""
    folder = tmp_path_factory.mktemp("reml")
    rows = write_hs1940_subset(folder, ("1",), N_MICE)
    (folder / "hs.cov.txt").write_text("".join(f"1\t{row[5]}\n" for row in rows))  # intercept, trait6
    base = ["-g", "hs.geno.txt", "-p", "hs.pheno.txt", "-a", "hs.anno.txt", "-n", "1"]
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    subprocess.run([gemma_bin, *base, "-gk", "1", "-o", "kin"], cwd=folder, check=True, capture_output=True,
                   env=env)

    def gemma_null(covariates: bool) -> dict[str, list[float]]:
        extra = ["-c", "hs.cov.txt"] if covariates else []
        name = f"lmm{int(covariates)}"
        subprocess.run([gemma_bin, *base, *extra, "-k", "output/kin.cXX.txt", "-lmm", "1", "-o", name],
                       cwd=folder, check=True, capture_output=True, env=env)
        log = (folder / "output" / f"{name}.log.txt").read_text()
        return {line.split("=")[0].strip("# ").strip(): [float(v) for v in line.split("=")[1].split()]
                for line in log.splitlines() if line.startswith("##") and "=" in line
                and ("null model" in line or "analyzed individuals" in line)}

    phenotypes = np.array([[math.nan if v == "NA" else float(v) for v in row] for row in rows])
    return np.loadtxt(folder / "output" / "kin.cXX.txt"), phenotypes, gemma_null


@pytest.mark.parametrize("with_covariates", [False, True])
def test_null_fit_matches_gemma_null_estimates(hs_chromosome1, with_covariates):
    kinship, phenotypes, gemma_null = hs_chromosome1
    reference = gemma_null(with_covariates)
    y = phenotypes[:, 0]
    analysed = ~np.isnan(y) & (~np.isnan(phenotypes[:, 5]) if with_covariates else True)
    assert analysed.sum() == reference["number of analyzed individuals"][0]
    k = double_centre(kinship[np.ix_(analysed, analysed)])
    covariates = phenotypes[analysed, 5:6] if with_covariates else None
    null = fit_null(k, y[analysed], covariates, device=CPU)

    def close(ours: float, label: str, index: int = 0) -> None:  # GEMMA prints six significant digits
        assert ours == pytest.approx(reference[label][index], rel=2e-5, abs=1e-6), label

    close(null.pve, "pve estimate in the null model")
    close(null.vg, "vg estimate in the null model")
    close(null.ve, "ve estimate in the null model")
    close(null.logl, "REMLE log-likelihood in the null model")
    assert len(null.beta) == len(reference["beta estimate in the null model"])  # intercept first, as GEMMA's
    for j, effect in enumerate(null.beta):
        close(float(effect), "beta estimate in the null model", j)


def _dense_reml(lam: float, kinship: np.ndarray, z: np.ndarray, y: np.ndarray) -> float:
    """GEMMA's restricted log-likelihood at ``lambda`` with ``V = lambda K + I`` built densely."""
    n, c = z.shape
    df = n - c
    v = lam * kinship + np.eye(n)
    vinv_z, vinv_y = np.linalg.solve(v, z), np.linalg.solve(v, y)
    zvz = z.T @ vinv_z
    pyy = y @ vinv_y - (z.T @ vinv_y) @ np.linalg.solve(zvz, z.T @ vinv_y)
    return (0.5 * df * (math.log(df) - math.log(2 * math.pi) - 1.0) - 0.5 * np.linalg.slogdet(v)[1]
            - 0.5 * (np.linalg.slogdet(zvz)[1] - np.linalg.slogdet(z.T @ z)[1]) - 0.5 * df * math.log(pyy))


def test_restricted_loglik_and_its_derivative_match_the_dense_likelihood():
    rng = np.random.default_rng(5)
    g = rng.binomial(2, 0.4, size=(40, 120)).astype(float)
    g -= g.mean(axis=0)
    kinship = g @ g.T / g.shape[1]
    z = np.column_stack([np.ones(40), rng.normal(size=40)])
    y = rng.normal(size=40) + g[:, 0]
    eigen = eigendecompose(kinship, CPU)
    fixed = torch.cat([eigen.rotate(z), eigen.rotate(y)[:, None]], dim=1)
    t = torch.tensor([-3.0, 0.0, 0.7, 4.0], dtype=torch.float64)
    h = reml_weights(eigen.values, t)  # (4, 40)
    gram = torch.einsum("gi,ia,ib->gab", h, fixed, fixed)
    d_gram = torch.einsum("gi,ia,ib->gab", h * h - h, fixed, fixed)
    logdet, d_logdet, _ = logdet_v(eigen.values, t)
    np.testing.assert_allclose(logdet.numpy(), [np.linalg.slogdet(math.exp(v) * kinship + np.eye(40))[1]
                                                for v in t.tolist()], rtol=1e-10)
    zz = logdet_zz(fixed.T @ fixed, 2)
    assert float(zz) == pytest.approx(np.linalg.slogdet(z.T @ z)[1], rel=1e-12)
    value, derivative, _, _ = restricted_loglik(gram, d_gram, logdet, d_logdet, zz, 2, 38)
    dense = [_dense_reml(math.exp(v), kinship, z, y) for v in t.tolist()]
    np.testing.assert_allclose(value.numpy(), dense, rtol=1e-10)
    step = 1e-5
    slope = [(_dense_reml(math.exp(v + step), kinship, z, y) - _dense_reml(math.exp(v - step), kinship, z, y))
             / (2 * step) for v in t.tolist()]
    np.testing.assert_allclose(derivative.numpy(), slope, rtol=1e-5, atol=1e-7)


def test_balanced_families_give_the_one_way_anova_reml_estimates():
    """Six families of five, kinship 1/5 within a family (double-centred): REML gives ``ve = MSW`` and
    ``vg = MSB - MSW`` (Searle, Casella & McCulloch 1992, one-way random model; ``lambda K`` has eigenvalue
    ``lambda`` on the family contrasts), with the log-likelihood in closed form."""
    families, size = 6, 5
    n = families * size
    family = np.repeat(np.arange(families), size)
    kinship = double_centre((family[:, None] == family[None, :]) / size)
    y = np.array([4.1, 5.0, 3.2, 4.4, 4.8, 1.0, 2.2, 0.4, 1.9, 1.3, 6.5, 7.1, 5.9, 6.0, 7.7,
                  3.3, 2.1, 2.9, 3.8, 3.0, 0.2, -1.1, 0.9, 0.5, -0.3, 5.2, 4.6, 5.5, 3.9, 4.7])
    means = np.array([y[family == f].mean() for f in range(families)])
    msb = size * ((means - y.mean()) ** 2).sum() / (families - 1)
    msw = ((y - means[family]) ** 2).sum() / (n - families)
    null = fit_null(kinship, y, device=CPU)
    assert null.ve == pytest.approx(msw, rel=1e-9)
    assert null.vg == pytest.approx(msb - msw, rel=1e-9)
    assert null.lambda_ == pytest.approx(msb / msw - 1, rel=1e-9)
    assert null.beta == pytest.approx([y.mean()], rel=1e-12)  # balanced: GLS intercept is the mean
    df, s = n - 1, msb / msw
    logl = 0.5 * df * (math.log(df) - math.log(2 * math.pi) - 1) - 0.5 * (families - 1) * math.log(s) \
        - 0.5 * df * math.log(df * msw)
    assert null.logl == pytest.approx(logl, rel=1e-10)
    trace = (families - 1) / n  # tr(K) / n of the double-centred kinship
    assert null.pve == pytest.approx(trace * null.lambda_ / (trace * null.lambda_ + 1), rel=1e-12)
    assert null.delta == pytest.approx(1 / null.lambda_)


def test_region_ends_cut_gemmas_range_into_equal_log_regions():
    ends = region_ends(CPU).numpy()
    assert len(ends) == 11
    assert ends[0] == pytest.approx(math.log(L_MIN)) and ends[-1] == pytest.approx(math.log(L_MAX))
    np.testing.assert_allclose(np.diff(ends), math.log(1e10) / 10, rtol=1e-12)


def test_rotation_and_eigendecomposition_rebuild_the_kinship():
    rng = np.random.default_rng(2)
    g = rng.normal(size=(12, 4))
    kinship = g @ g.T / 4  # rank 4: eight eigenvalues are round-off, set to zero
    eigen = eigendecompose(kinship, CPU)
    assert int((eigen.values == 0).sum()) == 8
    u, d = eigen.vectors.numpy(), eigen.values.numpy()
    np.testing.assert_allclose(u @ np.diag(d) @ u.T, kinship, atol=1e-12)
    assert eigen.trace == pytest.approx(np.trace(kinship) / 12, rel=1e-12)
    np.testing.assert_allclose(eigen.rotate(g).numpy(), u.T @ g, atol=1e-12)


def test_rotated_fit_equals_the_kinship_fit_and_keeps_to_the_range_it_is_given():
    rng = np.random.default_rng(3)
    g = rng.binomial(2, 0.4, size=(150, 400)).astype(float)
    g -= g.mean(axis=0)
    kinship = g @ g.T / 400
    y = g[:, :40] @ rng.normal(scale=0.3, size=40) + rng.normal(size=150)  # lambda well above 0.01
    full = fit_null(kinship, y, device=CPU)
    eigen = eigendecompose(kinship, CPU)
    ones = np.ones((150, 1))
    rotated = fit_null_rotated(eigen, eigen.rotate(ones), eigen.rotate(y))
    assert rotated.lambda_ == pytest.approx(full.lambda_, rel=1e-10)
    assert rotated.logl == pytest.approx(full.logl, rel=1e-12)
    assert full.lambda_ > 0.05
    narrowed = fit_null_rotated(eigen, eigen.rotate(ones), eigen.rotate(y), l_min=1e-4, l_max=0.01)
    assert narrowed.lambda_ == pytest.approx(0.01, rel=1e-9)  # the REML optimum lies beyond the range
    assert narrowed.logl < full.logl
