"""Phenotype synthesis conditioned on synthetic genotypes, for all traits at once.

Fit (on the real training split), per genetic trait (numeric or binary columns among the traits):

1. a REML mixed model with the covariates as fixed effects and the centred-genotype kinship;
2. stepwise QTL selection: scan all SNPs with the variance ratio held at the null fit, add the best SNP
   to the fixed effects if ``p < p_enter``, refit, repeat (one lead SNP per locus; relatedness is in the
   model, so it does not leak into the effect estimates and create false loci);
3. the final REML fit: covariate effects ``a``, QTL effects ``b``, polygenic and residual variances.

Across traits, genetic and residual parts share the traits' residual correlation (within each phenotype
column group). Every other column (covariates, categorical or sparse columns) comes from a Gaussian copula
(:mod:`genosynth.phenotypes.copula`); each synthetic individual takes the missing-value pattern of a random
real one, so missing rates and co-missingness are kept.

Sample, for synthetic genotypes ``X`` (centred ``Xc``, ``m`` SNPs) and synthetic covariates ``W``::

    y = W a + X_q b + g + e,   g = Xc u, u ~ N(0, vg / m)   (so g ~ N(0, vg K_syn)),   e ~ N(0, ve)

and the noise ``g + e`` is made orthogonal to ``[W, X_q]`` in the metric of its own covariance, so the
mixed-model estimates of ``a`` and ``b`` on the synthetic cohort equal the real ones: the synthetic GWAS
reproduces the real effect sizes and p-value scale at the same sample size, without inflation.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import linalg

from genosynth.formats.dataset import Dataset
from genosynth.phenotypes.copula import GaussianCopula, nearest_correlation
from genosynth.phenotypes.mixed import Rotation, centre, fit_null, scan

DEFAULTS = {"p_enter": 1e-5, "max_qtl": 12, "min_observed": 20}


@dataclass
class CovariateDesign:
    """Encodes covariate columns as a design matrix with an intercept (categories: one-hot, first dropped)."""

    columns: list[str]
    levels: dict[str, list[Any]]
    means: dict[str, float]

    @classmethod
    def of(cls, table: pd.DataFrame, columns: list[str], kinds: dict[str, str]) -> CovariateDesign:
        levels, means = {}, {}
        for c in columns:
            if kinds.get(c) == "categorical":
                levels[c] = sorted(table[c].dropna().unique().tolist(), key=str)
            else:
                means[c] = float(np.nan_to_num(pd.to_numeric(table[c], errors="coerce").mean()))
        return cls(list(columns), levels, means)

    def matrix(self, table: pd.DataFrame) -> np.ndarray:
        """``(n, 1 + encoded columns)``; missing covariates are mean-imputed (or all-zero indicators)."""
        parts = [np.ones((len(table), 1))]
        for c in self.columns:
            if c in self.levels:
                values = table[c].to_numpy()
                parts.append(np.stack([values == level for level in self.levels[c][1:]], axis=1)
                              .reshape(len(table), -1).astype(np.float64))
            else:
                values = pd.to_numeric(table[c], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
                parts.append(np.where(np.isnan(values), self.means[c], values)[:, None])
        return np.concatenate(parts, axis=1)


@dataclass
class TraitModel:
    name: str
    kind: str                     # numeric | binary
    covariate_effects: np.ndarray  # (c,) including the intercept
    qtl_snps: np.ndarray          # (q,) SNP indices into the training variants
    qtl_effects: np.ndarray       # (q,)
    qtl_centres: np.ndarray       # (q,) real mean dosage the effects are centred on
    vg: float
    ve: float
    prevalence: float             # binary traits: share of ones
    log: dict[str, Any] = field(default_factory=dict)


@dataclass
class PhenotypeModel:
    columns: list[str]                      # every sample column but ``id``, in table order
    kinds: dict[str, str]
    traits: list[TraitModel]
    trait_correlation: np.ndarray           # (t, t) shared by genetic and residual parts
    design: CovariateDesign
    copula: GaussianCopula
    missing_patterns: np.ndarray            # (n_real, len(columns)) bool, True where missing

    def describe(self) -> dict[str, Any]:
        return {
            "traits": {t.name: {"kind": t.kind, **t.log} for t in self.traits},
            "trait_correlation": self.trait_correlation.round(6).tolist(),
            "copula": self.copula.describe(),
            "covariates": self.design.columns,
        }


def _genetic_traits(dataset: Dataset, traits: list[str], minimum: int) -> list[str]:
    samples, kinds = dataset.samples, dataset.column_kinds
    out = []
    for name in dict.fromkeys([*dataset.traits, *traits]):
        if name not in samples.columns or kinds.get(name) not in ("numeric", "binary"):
            continue
        values = pd.to_numeric(samples[name], errors="coerce")
        if values.notna().sum() >= minimum and values.var() > 0:
            out.append(name)
    return out


def fit_phenotype_model(
    dataset: Dataset, *, traits: list[str], covariates: list[str], groups: list[list[str]],
    options: dict[str, Any] | None = None,
) -> PhenotypeModel:
    """Fit the phenotype model on a real (training) dataset; see the module docstring."""
    settings = {**DEFAULTS, **(options or {})}
    samples = dataset.samples
    kinds = dataset.column_kinds
    columns = [c for c in samples.columns if c != "id"]
    covariates = [c for c in covariates if c in samples.columns]
    # Only the run's traits get a genetic model (all of them when none are named): each costs a rotation
    # of every genotype, and the other columns are kept by the copula.
    genetic = [t for t in _genetic_traits(dataset, traits, int(settings["min_observed"]))
               if t not in covariates and (not traits or t in traits)]
    design = CovariateDesign.of(samples, covariates, kinds)
    w_all = design.matrix(samples)
    dosages = dataset.dosages()
    snp_means = np.nan_to_num(np.nanmean(dosages, axis=0))
    xc = centre(dosages).astype(np.float32)
    del dosages
    kinship = (xc.astype(np.float64) @ xc.T.astype(np.float64)) / max(xc.shape[1], 1)
    # One rotated genotype matrix (n x m float64) at a time: memory does not grow with the number of
    # missing-value patterns (cfw-sim: one per trait, 0.6 GB each).
    cached_key, rotation, xt = None, None, None
    trait_models, residuals = [], {}
    for name in genetic:
        y = pd.to_numeric(samples[name], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        observed = ~np.isnan(y)
        key = np.packbits(observed).tobytes()
        if key != cached_key:
            rotation = xt = None  # free the previous pattern's arrays before making the next ones
            rotation = Rotation.of(kinship[np.ix_(observed, observed)])
            xt = rotation.rotate(xc[observed].astype(np.float64))
            cached_key = key
        model, resid = _fit_trait(name, kinds[name], y[observed], w_all[observed], xc[observed], rotation, xt,
                                  settings)
        model.qtl_centres = snp_means[model.qtl_snps].astype(np.float64)
        trait_models.append(model)
        residuals[name] = pd.Series(np.nan, index=samples.index)
        residuals[name][observed] = resid
    correlation = _trait_correlation(pd.DataFrame(residuals), genetic, groups)
    others = [c for c in columns if c not in genetic]
    copula = GaussianCopula.fit(samples[others], kinds)
    missing = samples[columns].isna().to_numpy()
    return PhenotypeModel(columns, dict(kinds), trait_models, correlation, design, copula, missing)


def _fit_trait(name: str, kind: str, y: np.ndarray, w: np.ndarray, xc: np.ndarray, rotation: Rotation,
               xt: np.ndarray, settings: dict[str, Any]) -> tuple[TraitModel, np.ndarray]:
    yt, wt = rotation.rotate(y), rotation.rotate(w)
    selected: list[int] = []
    steps = []
    null = fit_null(rotation, yt, wt)
    pve0 = null.pve
    while len(selected) < int(settings["max_qtl"]):
        fixed = np.concatenate([wt, xt[:, selected]], axis=1)
        p = scan(rotation, null.delta, yt, fixed, xt)
        p[selected] = 1.0
        best = int(np.argmin(p))
        if not p[best] < float(settings["p_enter"]):
            break
        selected.append(best)
        steps.append({"snp": best, "p": float(p[best])})
        null = fit_null(rotation, yt, np.concatenate([wt, xt[:, selected]], axis=1))
    c = w.shape[1]
    effects = null.beta
    fitted = w @ effects[:c] + xc[:, selected].astype(np.float64) @ effects[c:]
    model = TraitModel(
        name=name, kind=kind, covariate_effects=effects[:c], qtl_snps=np.array(selected, dtype=np.int64),
        qtl_effects=effects[c:], qtl_centres=np.zeros(len(selected)), vg=null.vg, ve=null.ve,
        prevalence=float(np.mean(y)) if kind == "binary" else float("nan"),
        log={"n": len(y), "pve_null": pve0, "pve": null.pve, "vg": null.vg, "ve": null.ve, "qtl": steps},
    )
    return model, y - fitted


def _trait_correlation(residuals: pd.DataFrame, traits: list[str], groups: list[list[str]]) -> np.ndarray:
    if not traits:
        return np.zeros((0, 0))
    corr = np.nan_to_num(residuals[traits].corr(min_periods=3).to_numpy())
    group_of = {c: i for i, g in enumerate(groups) for c in g}
    same = np.array([[group_of.get(a, -1) == group_of.get(b, -2) or a == b for b in traits] for a in traits])
    corr = np.where(same, corr, 0.0)
    np.fill_diagonal(corr, 1.0)
    return nearest_correlation(corr)


def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh(matrix)
    return vectors * np.sqrt(np.maximum(values, 0.0))


def sample_phenotypes(
    model: PhenotypeModel, blocks: Iterable[tuple[int, np.ndarray]], *, n: int, n_snps: int, seed: int,
    ids: list[str],
) -> pd.DataFrame:
    """Synthetic sample table for ``n`` synthetic individuals.

    Parameters
    ----------
    blocks : iterable of (start, (n, k) float dosages)
        The synthetic genotypes in SNP order, streamed once (``n_snps`` SNPs in all).
    ids : the synthetic sample ids, ``n`` of them.

    Returns
    -------
    DataFrame ``(n, 1 + len(model.columns))``: ``id`` then every column of the real table.
    """
    rng = np.random.default_rng([seed, 303])
    table = model.copula.sample(n, rng)
    missing = model.missing_patterns[rng.integers(0, len(model.missing_patterns), n)]
    w = model.design.matrix(table)
    t = len(model.traits)
    vg = np.array([tm.vg for tm in model.traits])
    ve = np.array([tm.ve for tm in model.traits])
    genetic_root = _sqrt_psd(model.trait_correlation * np.sqrt(np.outer(vg, vg))) if t else np.zeros((0, 0))
    residual_root = _sqrt_psd(model.trait_correlation * np.sqrt(np.outer(ve, ve))) if t else np.zeros((0, 0))
    wanted = {int(s) for tm in model.traits for s in tm.qtl_snps}
    qtl_dosage: dict[int, np.ndarray] = {}
    polygenic = np.zeros((n, t))
    kinship = np.zeros((n, n))
    for start, block in blocks:
        xc = centre(block)
        kinship += xc @ xc.T
        # u ~ N(0, Sigma_g / m) per SNP: g = Xc u has covariance Sigma_g (x) K_syn.
        u = rng.standard_normal((block.shape[1], t)) @ genetic_root.T / np.sqrt(n_snps)
        polygenic += xc @ u
        for s in wanted & set(range(start, start + block.shape[1])):
            column = block[:, s - start].astype(np.float64)
            qtl_dosage[s] = np.where(np.isnan(column), np.nanmean(column), column)
    kinship /= max(n_snps, 1)
    residual = rng.standard_normal((n, t)) @ residual_root.T
    out = {"id": ids}
    for i, tm in enumerate(model.traits):
        x_q = (np.stack([qtl_dosage[int(s)] for s in tm.qtl_snps], axis=1) if len(tm.qtl_snps)
               else np.zeros((n, 0)))
        fixed_design = np.concatenate([w, x_q - tm.qtl_centres[None, :]], axis=1)
        effects = np.concatenate([tm.covariate_effects, tm.qtl_effects])
        observed = ~missing[:, model.columns.index(tm.name)]
        noise = polygenic[:, i] + residual[:, i]
        noise[observed] = _orthogonal_noise(noise[observed], fixed_design[observed],
                                            kinship[np.ix_(observed, observed)], tm.vg, tm.ve)
        y = fixed_design @ effects + noise
        if tm.kind == "binary":
            cut = np.quantile(y[observed], 1.0 - tm.prevalence) if observed.any() else 0.0
            y = (y > cut).astype(np.float64)
        out[tm.name] = y
    for column in table.columns:
        out[column] = table[column].to_numpy()
    frame = pd.DataFrame(out)[["id", *model.columns]]
    for j, column in enumerate(model.columns):
        if missing[:, j].any():
            frame[column] = frame[column].astype(object if frame[column].dtype == object else np.float64)
            frame.loc[missing[:, j], column] = np.nan if frame[column].dtype != object else None
    return frame


def _orthogonal_noise(noise: np.ndarray, design: np.ndarray, kinship: np.ndarray, vg: float,
                      ve: float) -> np.ndarray:
    """Remove from ``noise`` its GLS projection on ``design`` under V = vg K + ve I (so C^T V^-1 e = 0)."""
    if not len(noise):
        return noise
    v = vg * kinship + max(ve, 1e-12) * np.eye(len(noise))
    factor = linalg.cho_factor(v + 1e-9 * np.trace(v) / len(v) * np.eye(len(v)))
    vinv_c = linalg.cho_solve(factor, design)
    gram = design.T @ vinv_c
    coef = np.linalg.lstsq(gram, vinv_c.T @ noise, rcond=None)[0]
    return noise - design @ coef
