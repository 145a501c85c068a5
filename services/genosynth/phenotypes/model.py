"""Phenotype synthesis from the real genetic architecture, for all traits at once.

Fit (on the real training split), per genetic trait (numeric or binary columns among the traits):

1. the null REML mixed model (:func:`genosynth.genetics.reml.fit_null_rotated`, GEMMA's REML) with the
   covariates ``W`` as fixed effects and the centred-genotype kinship
   (it sets the variance components ``vg``, ``ve`` and the ridge penalty of step 2);
2. lead QTLs by stepwise selection on LOCO scans: the whole-genome ridge (SNP-BLUP) background is fitted
   once per step; each chromosome is scanned against the phenotype less the background predicted from
   the *other* chromosomes (as REGENIE's step 2), so a chromosome-wide signal is found on its own
   chromosome; the best SNP enters the fixed effects while ``p < p_enter``, up to ``max_qtl``;
3. the final REML fit with ``[W, X_q]``: covariate effects ``a``, unshrunk QTL effects ``b``, ``vg``, ``ve``;
4. whole-genome background effects ``u``, one per SNP: ridge of ``y - W a - X_q b`` on every SNP
   (:mod:`genosynth.genetics.ridge`), penalty ``m ve / vg`` (BLUP, ``background: blup``) or chosen by
   5-fold cross-validation (``background: cv``);
5. the QTL effects calibrated locus by locus (``qtl_effects``; :func:`_calibrate_qtls`): scaled so that
   phenotypes drawn from the model on the training genotypes give each locus's real top LOCO statistic
   on average, which undoes the attenuation of a binary trait's liability cut (``auto``: binary traits
   only).

Two fits of the same model (``fit``; ``auto`` picks by cohort size, :func:`fit_method`):

* ``exact`` (below :data:`MOMENTS_FROM` individuals): GEMMA's REML on the kinship eigendecomposition of
  each trait's individuals, refitted as each QTL enters; every ridge solved exactly from it
  (``X X^T = m K``, :func:`genosynth.genetics.ridge.dual_solve`).
* ``moments`` (from :data:`MOMENTS_FROM`): no n x n matrix (:mod:`genosynth.genetics.moments`). Monte Carlo
  REML started from Haseman-Elston components, for the null model (whose variance ratio the selection
  keeps) and the final one; GLS effects and every ridge by conjugate gradients on products with ``X``.
  Memory is the genotypes plus ``n x`` a few dozen vectors per trait; time grows as ``n m`` per product.

Traits are fitted in groups: each selection round takes one step of every trait of the group still
selecting from a single pass over the genotypes (:func:`_loco_round`).

Across traits, the genetic part of the background keeps the correlation of the fitted genetic values and
the residual part the correlation of the residuals (within each phenotype column group). Every other column
comes from a Gaussian copula (:mod:`genosynth.phenotypes.copula`); each synthetic individual takes the
missing-value pattern of a random real one.

Sample, streamed SNP batch by batch as the synthetic genotypes ``X`` are assembled (centred on the real
allele means, ``Xc``)::

    y = W a + (X_q - mean_real) b + s (Xc u + Xc z) + e

``z`` restores the genetic variance the ridge shrank away (``restore: random``, ``z ~ N(0, (vg_sample -
var(Xc u)) / sum_j var_j)`` per SNP, correlated across traits), or ``u`` is scaled up instead (``restore:
scale``). ``s`` sets the background variance to the real ``vg`` share of the sample and ``e ~ N(0, ve)``, so
variance and heritability match. Only ``n x batch`` arrays are made; binary traits are a liability cut at
the real prevalence.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from genosynth.formats.dataset import Dataset
from genosynth.genetics.calibration import (
    DRAWS,
    LD_MIN,
    REACH,
    calibrate_scales,
    ld_with,
    merge_overlapping,
    window_tops,
)
from genosynth.genetics.chromosomes import chromosome_columns
from genosynth.genetics.covariates import category_levels, indicator_coding, with_intercept
from genosynth.genetics.device import cpu_threads
from genosynth.genetics.dosages import centre, observed_means
from genosynth.genetics.kinship import centred_kinship_blocked
from genosynth.genetics.moments import (
    REML_SAMPLES,
    TRACE_VECTORS,
    gls_effects,
    he_components,
    he_pairs,
    lay_out,
    mc_reml,
    padded_solve,
    row_square_sums,
)
from genosynth.genetics.reml import Eigen, NullModel, eigendecompose_many, fit_null_rotated
from genosynth.genetics.ridge import (
    BLOCK,
    blup_penalty,
    cv_penalty,
    dual_effects,
    dual_solve,
    genetic_values,
)
from genosynth.genetics.scan import f_pvalue, padded_scans
from genosynth.genetics.variance import background_mixing, haseman_elston_pairs, sqrt_psd
from genosynth.gwas.wgr import AUTO_WGR_FROM
from genosynth.phenotypes.copula import GaussianCopula, nearest_correlation

DEFAULTS: dict[str, Any] = {"p_enter": 1e-5, "max_qtl": 12, "min_observed": 20, "background": "blup",
                            "restore": "random", "fit": "auto", "qtl_effects": "auto"}
BACKGROUNDS = ("blup", "cv")
RESTORES = ("random", "scale")
FITS = ("auto", "exact", "moments")
QTL_EFFECTS = ("auto", "calibrated", "fitted")
#: Cohort size from which ``fit: auto`` fits without n x n matrices (where the GWAS's ``auto`` leaves the
#: exact LMM for WGR, for the same reason: docs/scaling.md).
MOMENTS_FROM = AUTO_WGR_FROM


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
                levels[c] = category_levels(table[c].dropna().tolist())
            else:
                means[c] = float(np.nan_to_num(pd.to_numeric(table[c], errors="coerce").mean()))
        return cls(list(columns), levels, means)

    def matrix(self, table: pd.DataFrame) -> np.ndarray:
        """``(n, 1 + encoded columns)``; missing covariates are mean-imputed (or all-zero indicators)."""
        parts = [np.zeros((len(table), 0))]
        for c in self.columns:
            if c in self.levels:
                parts.append(indicator_coding(table[c].to_numpy(), self.levels[c]))
            else:
                values = pd.to_numeric(table[c], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
                parts.append(np.where(np.isnan(values), self.means[c], values)[:, None])
        return with_intercept(np.concatenate(parts, axis=1))


@dataclass
class TraitModel:
    name: str
    kind: str                     # numeric | binary
    covariate_effects: np.ndarray  # (c,) including the intercept
    qtl_snps: np.ndarray          # (q,) SNP indices into the training variants
    qtl_effects: np.ndarray       # (q,)
    qtl_centres: np.ndarray       # (q,) real mean dosage the effects are centred on
    background: np.ndarray        # (m,) ridge effect per SNP (on dosages centred at the real means)
    vg: float                     # REML polygenic variance (per unit of kinship)
    ve: float                     # REML residual variance
    genetic_variance: float       # vg times the mean kinship diagonal: the background variance to reach
    fitted_variance: float        # variance of Xc u on the real individuals (below genetic_variance)
    prevalence: float             # binary traits: share of ones
    log: dict[str, Any] = field(default_factory=dict)


@dataclass
class PhenotypeModel:
    columns: list[str]                      # every sample column but ``id``, in table order
    kinds: dict[str, str]
    traits: list[TraitModel]
    genetic_correlation: np.ndarray         # (t, t) of the background genetic values
    residual_correlation: np.ndarray        # (t, t) of the residuals
    snp_centres: np.ndarray                 # (m,) real mean dosage per SNP
    snp_variance: float                     # sum over SNPs of the real dosage variance
    design: CovariateDesign
    copula: GaussianCopula
    missing_patterns: np.ndarray            # (n_real, len(columns)) bool, True where missing
    settings: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        return {
            "settings": self.settings,
            "traits": {t.name: {"kind": t.kind, **t.log} for t in self.traits},
            "genetic_correlation": self.genetic_correlation.round(6).tolist(),
            "residual_correlation": self.residual_correlation.round(6).tolist(),
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


def _check_settings(settings: dict[str, Any]) -> None:
    if settings["background"] not in BACKGROUNDS:
        raise ValueError(f"model_options.phenotypes.background {settings['background']!r}: expected one of "
                         f"{', '.join(BACKGROUNDS)}")
    if settings["fit"] not in FITS:
        raise ValueError(f"model_options.phenotypes.fit {settings['fit']!r}: expected one of "
                         f"{', '.join(FITS)}")
    if settings["qtl_effects"] not in QTL_EFFECTS:
        raise ValueError(f"model_options.phenotypes.qtl_effects {settings['qtl_effects']!r}: expected one of "
                         f"{', '.join(QTL_EFFECTS)}")
    if settings["restore"] not in RESTORES:
        raise ValueError(f"model_options.phenotypes.restore {settings['restore']!r}: expected one of "
                         f"{', '.join(RESTORES)}")


def fit_phenotype_model(
    dataset: Dataset, *, traits: list[str], covariates: list[str], groups: list[list[str]],
    options: dict[str, Any] | None = None,
) -> PhenotypeModel:
    """Fit the phenotype model on a real (training) dataset; see the module docstring."""
    settings = {**DEFAULTS, **(options or {})}
    _check_settings(settings)
    samples = dataset.samples
    kinds = dataset.column_kinds
    columns = [c for c in samples.columns if c != "id"]
    covariates = [c for c in covariates if c in samples.columns]
    # Only the run's traits get a genetic model (all of them when none are named); the other columns are
    # kept by the copula.
    genetic = [t for t in _genetic_traits(dataset, traits, int(settings["min_observed"]))
               if t not in covariates and (not traits or t in traits)]
    design = CovariateDesign.of(samples, covariates, kinds)
    w_all = design.matrix(samples)
    dosages = dataset.dosages()
    snp_means = observed_means(dosages)
    xc = centre(dosages, snp_means.astype(np.float32))  # float32, as the dataset decodes them
    del dosages
    chromosomes = chromosome_columns(dataset.variants["chr"].to_numpy())
    method = fit_method(settings["fit"], len(xc))
    kernel: _Exact | _Moments = _Exact(xc) if method == "exact" else _Moments(xc)
    trait_models, residuals = [], {}
    for group in kernel.groups(genetic):
        trait_values = {name: pd.to_numeric(samples[name], errors="coerce").to_numpy(dtype=np.float64,
                                                                                     na_value=np.nan)
                        for name in group}
        fits = kernel.start([(name, kinds[name], trait_values[name]) for name in group], w_all, xc)
        fitted = _fit_traits(fits, kernel, xc, chromosomes, settings)
        if settings["qtl_effects"] != "fitted":
            _calibrate_qtls([model for model, _ in fitted], fits, [values for _, (values, _) in fitted],
                            kernel, xc, chromosomes, settings["restore"],
                            binary_only=settings["qtl_effects"] == "auto")
        for (model, (values, resid)), fit in zip(fitted, fits, strict=True):
            model.qtl_centres = snp_means[model.qtl_snps].astype(np.float64)
            model.log["fit"] = method
            trait_models.append(model)
            residuals[model.name] = pd.Series(np.nan, index=samples.index)
            residuals[model.name].iloc[fit.rows] = values + resid
    genetic_corr, residual_corr = _trait_correlations(pd.DataFrame(residuals), trait_models, kernel.pairs,
                                                      groups)
    others = [c for c in columns if c not in genetic]
    copula = GaussianCopula.fit(samples[others], kinds)
    missing = samples[columns].isna().to_numpy()
    return PhenotypeModel(columns, dict(kinds), trait_models, genetic_corr, residual_corr, snp_means,
                          kernel.snp_variance, design, copula, missing, {**settings, "fit": method})


def fit_method(setting: str, n: int) -> str:
    """``exact`` (REML on kinship eigendecompositions) or ``moments`` (no n x n matrix) for ``n``
    individuals: ``auto`` picks the moments from :data:`MOMENTS_FROM` individuals.

    >>> fit_method("auto", 1_940), fit_method("auto", 10_000), fit_method("exact", 10_000)
    ('exact', 'moments', 'exact')
    """
    if setting == "auto":
        return "moments" if n >= MOMENTS_FROM else "exact"
    return setting


def _penalty(x: np.ndarray, rows: np.ndarray, r: np.ndarray, delta: float, settings: dict[str, Any]) -> float:
    """The background's ridge penalty for the residual ``r`` of the individuals ``rows`` of ``x``."""
    lam = blup_penalty(x.shape[1], delta)
    if settings["background"] == "cv":
        lam, _ = cv_penalty(x[rows], r, lam * np.array([0.03, 0.1, 0.3, 1.0, 3.0, 10.0]))
    return lam


# Eigendecompositions (n x n float64 each) held at once while a group of traits is fitted together.
EIGEN_BUDGET = 512 * 2**20
# The moment fit's vectors of a group of traits: per trait n x (trace probes + simulated phenotypes + 1)
# float64.
MOMENT_BUDGET = 512 * 2**20
# Seed of the draws that calibrate the QTL effects (the fit is deterministic).
CALIBRATION_SEED = 404


def _fit_groups(traits: list[str], n: int) -> list[list[str]]:
    """The traits in groups fitted together: as many as keep their kinship eigenvectors within
    ``EIGEN_BUDGET`` (traits sharing a missing-value pattern share one)."""
    size = max(1, EIGEN_BUDGET // (8 * max(n, 1) ** 2))
    return [traits[i : i + size] for i in range(0, len(traits), size)]


def _pattern_key(observed: np.ndarray) -> bytes:
    return np.packbits(observed).tobytes()


def _pattern_eigens(kinship: np.ndarray, observed: list[np.ndarray]) -> dict[bytes, Eigen]:
    """The kinship's eigendecomposition on each distinct set of observed individuals, as many side by
    side as this process has threads (each on one thread)."""
    patterns = {_pattern_key(o): o for o in observed}
    keys, threads = list(patterns), cpu_threads()
    out: dict[bytes, Eigen] = {}
    for lo in range(0, len(keys), threads):
        chunk = keys[lo : lo + threads]
        kinships = [kinship[np.ix_(patterns[k], patterns[k])] for k in chunk]
        out.update(zip(chunk, eigendecompose_many(kinships, threads=threads), strict=True))
    return out


@dataclass
class _TraitFit:
    """One trait's stepwise selection: its observed individuals, its null model (variance components and
    fixed effects) and the current fixed effects (covariates and the QTLs selected so far)."""

    name: str
    kind: str
    rows: np.ndarray          # (n_t,) observed individuals, indices into the cohort
    y: np.ndarray             # (n_t,)
    w: np.ndarray             # (n_t, c) covariates with intercept
    trace: float              # mean kinship diagonal over ``rows``: tr(x x^T / m) / n_t
    null: NullModel | None = None
    pve0: float = float("nan")
    eigen: Eigen | None = None              # exact fit: of the observed individuals' kinship x x^T / m
    gram_values: np.ndarray | None = None   # exact fit: (n_t,) eigenvalues of x x^T = m K
    alpha: np.ndarray | None = None         # moment fit: the last dual solution (a warm start)
    selected: list[int] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    done: bool = False

    def fixed(self, x: np.ndarray) -> np.ndarray:
        """``(n_t, c + q)``: covariates then the selected QTLs' dosages."""
        return np.concatenate([self.w, x[np.ix_(self.rows, self.selected)].astype(np.float64)], axis=1)

    def enter(self, snp: int, p: float) -> None:
        """Add a QTL to the fixed effects (the kernel refits the null model after the round)."""
        self.selected.append(snp)
        self.steps.append({"snp": snp, "p": p})


class _Exact:
    """GEMMA's REML on the kinship's eigendecomposition of each trait's individuals (one n x n
    decomposition per missing-value pattern); every ridge solved exactly from it."""

    def __init__(self, x: np.ndarray) -> None:
        self.kinship = centred_kinship_blocked(x)
        # Sum over SNPs of the dosage variance: tr(X X^T) / n = m tr(K) / n.
        self.snp_variance = float(np.trace(self.kinship)) * x.shape[1] / max(len(x), 1)
        self.m = x.shape[1]

    def groups(self, traits: list[str]) -> list[list[str]]:
        return _fit_groups(traits, len(self.kinship))

    def start(self, traits: list[tuple[str, str, np.ndarray]], w_all: np.ndarray, x: np.ndarray,
              ) -> list[_TraitFit]:
        """Null fits of ``(name, kind, values (n,) NaN where missing)`` per trait."""
        eigens = _pattern_eigens(self.kinship, [~np.isnan(v) for _, _, v in traits])
        fits = []
        for name, kind, y in traits:
            observed = ~np.isnan(y)
            rows = np.flatnonzero(observed)
            eigen = eigens[_pattern_key(observed)]
            fit = _TraitFit(name, kind, rows, y[rows], w_all[rows], eigen.trace, eigen=eigen,
                            gram_values=self.m * eigen.values.cpu().numpy())
            self.after_round([fit], x)
            fit.pve0 = fit.null.pve
            fits.append(fit)
        return fits

    def after_round(self, fits: list[_TraitFit], x: np.ndarray) -> None:
        """REML (and GLS effects) with the current fixed effects of each trait that took a QTL."""
        for fit in fits:
            e = fit.eigen
            rotated = torch.cat([e.rotate(fit.w), e.rotate(x[np.ix_(fit.rows, fit.selected)])], dim=1)
            fit.null = fit_null_rotated(e, rotated, e.rotate(fit.y))

    def finish(self, fits: list[_TraitFit], x: np.ndarray) -> None:
        """Nothing: the REML of every trait is current after each round."""

    def duals(self, fits: list[_TraitFit], x: np.ndarray, rs: list[np.ndarray], lams: list[float],
              ) -> list[np.ndarray]:
        """Dual ridge coefficients ``(x x^T + lam I)^-1 r`` (n_t,) of each trait on its individuals."""
        return [dual_solve(f.gram_values, f.eigen.vectors.cpu().numpy(), r, lam)
                for f, r, lam in zip(fits, rs, lams, strict=True)]

    def dual_columns(self, fit: _TraitFit, x: np.ndarray, v: np.ndarray, lam: float, *,
                     start: np.ndarray | None = None) -> np.ndarray:
        """Dual ridge coefficients ``(x x^T + lam I)^-1 v`` (n_t, k) of several vectors of one trait (exact;
        ``start`` is not needed)."""
        return dual_solve(fit.gram_values, fit.eigen.vectors.cpu().numpy(), v, lam)

    def pairs(self, table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return haseman_elston_pairs(self.kinship, table)


class _Moments:
    """The kinship model without an n x n matrix (:mod:`genosynth.genetics.moments`): Monte Carlo REML
    from Haseman-Elston components, GLS effects and dual ridges by conjugate gradients, several traits
    per product."""

    def __init__(self, x: np.ndarray) -> None:
        self.x = x
        self.row_squares = row_square_sums(x)
        self.snp_variance = float(self.row_squares.sum()) / max(len(x), 1)
        self.m = x.shape[1]

    def groups(self, traits: list[str]) -> list[list[str]]:
        size = max(1, MOMENT_BUDGET // (8 * max(len(self.x), 1) * (TRACE_VECTORS + REML_SAMPLES + 1)))
        return [traits[i : i + size] for i in range(0, len(traits), size)]

    def start(self, traits: list[tuple[str, str, np.ndarray]], w_all: np.ndarray, x: np.ndarray,
              ) -> list[_TraitFit]:
        """Null models of ``(name, kind, values (n,) NaN where missing)`` per trait."""
        fits = []
        for name, kind, y in traits:
            rows = np.flatnonzero(~np.isnan(y))
            trace = float(self.row_squares[rows].sum()) / (self.m * max(len(rows), 1))
            fits.append(_TraitFit(name, kind, rows, y[rows], w_all[rows], trace))
        self.finish(fits, x)
        for fit in fits:
            fit.pve0 = fit.null.pve
        return fits

    def after_round(self, fits: list[_TraitFit], x: np.ndarray) -> None:
        """Nothing: the selection uses only the variance ratio, which stays the null model's."""

    def finish(self, fits: list[_TraitFit], x: np.ndarray) -> None:
        """Monte Carlo REML (from Haseman-Elston components) and GLS effects with each trait's current fixed
        effects, all traits together."""
        rows, fixed, ys = [f.rows for f in fits], [f.fixed(x) for f in fits], [f.y for f in fits]
        deltas = mc_reml(x, rows, fixed, ys, he_components(x, rows, fixed, ys, row_squares=self.row_squares))
        effects, ves = gls_effects(x, rows, fixed, ys, [blup_penalty(self.m, d) for d in deltas])
        for fit, delta, ve, beta in zip(fits, deltas, ves, effects, strict=True):
            fit.null = self._null(fit, ve / delta, ve, beta)

    @staticmethod
    def _null(fit: _TraitFit, vg: float, ve: float, beta: np.ndarray) -> NullModel:
        ratio = vg / ve
        return NullModel(lambda_=ratio, vg=vg, ve=ve, pve=fit.trace * ratio / (fit.trace * ratio + 1),
                         logl=float("nan"), beta=beta)

    def duals(self, fits: list[_TraitFit], x: np.ndarray, rs: list[np.ndarray], lams: list[float],
              ) -> list[np.ndarray]:
        """One conjugate-gradient solve of every trait at once, each from its last solution."""
        rows = [fit.rows for fit in fits]
        rhs, masks, penalties, _ = lay_out(len(x), rows, [r[:, None] for r in rs], lams)
        start = lay_out(len(x), rows, [np.zeros((len(f.rows), 1)) if f.alpha is None else f.alpha[:, None]
                                       for f in fits], lams)[0]
        alphas, _ = padded_solve(x, rhs, masks, penalties, start=start)
        for j, fit in enumerate(fits):
            fit.alpha = alphas[fit.rows, j]
        return [fit.alpha for fit in fits]

    def dual_columns(self, fit: _TraitFit, x: np.ndarray, v: np.ndarray, lam: float, *,
                     start: np.ndarray | None = None) -> np.ndarray:
        """Dual ridge coefficients ``(x x^T + lam I)^-1 v`` (n_t, k) of several vectors of one trait, in one
        conjugate-gradient solve from ``start`` (n_t, k) when given."""
        rhs, masks, penalties, _ = lay_out(len(x), [fit.rows], [v], [lam])
        guess = None if start is None else lay_out(len(x), [fit.rows], [start], [lam])[0]
        return padded_solve(x, rhs, masks, penalties, start=guess)[0][fit.rows]

    def pairs(self, table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return he_pairs(self.x, table, row_squares=self.row_squares)


def _fit_traits(fits: list[_TraitFit], kernel: _Exact | _Moments, x: np.ndarray,
                chromosomes: list[slice | np.ndarray], settings: dict[str, Any],
                ) -> list[tuple[TraitModel, tuple[np.ndarray, np.ndarray]]]:
    """Architecture of several traits at once, each on its observed individuals.

    Parameters
    ----------
    fits : the traits' starting states (null fits); kernel : how null models and ridges are solved
    x : (n, m) centred dosages of every individual (float32)
    chromosomes : the columns of ``x`` on each chromosome (a slice where they are contiguous)

    Each round runs one selection step of every trait still selecting, from one pass over ``x`` for all
    of them. Returns per trait its model, and its fitted background genetic values and residuals
    ``(n_t,)`` each.
    """
    m = x.shape[1]
    col_sq = _column_squares(x, [fit.rows for fit in fits])
    while True:
        active = [i for i, fit in enumerate(fits)
                  if not fit.done and len(fit.selected) < int(settings["max_qtl"])]
        if not active:
            break
        t2, df = _loco_round([fits[i] for i in active], kernel, x, chromosomes, col_sq[:, active])
        entered = []
        for row, i in enumerate(active):
            fit = fits[i]
            scores = t2[row]
            scores[fit.selected] = 0.0
            # p falls as the statistic grows: only the best SNP's p-value is needed.
            best = int(np.argmax(scores))
            p = float(f_pvalue(scores[best], int(df[row])))
            if p < float(settings["p_enter"]):
                fit.enter(best, p)
                entered.append(fit)
            else:
                fit.done = True
        kernel.after_round(entered, x)
    kernel.finish(fits, x)
    # Background effects u = x^T alpha of every trait, from one pass.
    rs, lams = [], []
    for fit in fits:
        rs.append(fit.y - fit.fixed(x) @ fit.null.beta)
        lams.append(_penalty(x, fit.rows, rs[-1], fit.null.delta, settings))
    duals = kernel.duals(fits, x, rs, lams)
    alphas = np.zeros((x.shape[0], len(fits)))
    for j, (fit, alpha) in enumerate(zip(fits, duals, strict=True)):
        alphas[fit.rows, j] = alpha
    effects = dual_effects(x, alphas)
    out = []
    for j, (fit, r, lam, alpha) in enumerate(zip(fits, rs, lams, duals, strict=True)):
        values = r - lam * alpha  # x x^T alpha, the genetic values x u
        null, c = fit.null, fit.w.shape[1]
        # Mean kinship diagonal: tr(x x^T / m) / n.
        genetic_variance = null.vg * fit.trace
        fitted_variance = float(np.var(values))
        model = TraitModel(
            name=fit.name, kind=fit.kind, covariate_effects=null.beta[:c],
            qtl_snps=np.array(fit.selected, dtype=np.int64), qtl_effects=null.beta[c:],
            qtl_centres=np.zeros(len(fit.selected)), background=effects[:, j].astype(np.float32),
            vg=null.vg, ve=null.ve, genetic_variance=genetic_variance, fitted_variance=fitted_variance,
            prevalence=float(np.mean(fit.y)) if fit.kind == "binary" else float("nan"),
            log={"n": len(fit.y), "pve_null": fit.pve0, "pve": null.pve, "vg": null.vg, "ve": null.ve,
                 "penalty": lam, "penalty_blup": blup_penalty(m, null.delta),
                 "background_variance": genetic_variance, "background_fitted_variance": fitted_variance,
                 "qtl": fit.steps},
        )
        out.append((model, (values, r - values)))
    return out


def _calibrate_qtls(models: list[TraitModel], fits: list[_TraitFit], values: list[np.ndarray],
                    kernel: _Exact | _Moments, x: np.ndarray, chromosomes: list[slice | np.ndarray],
                    restore: str, *, binary_only: bool) -> None:
    """Scale each trait's QTL effects (each binary trait's with ``binary_only``), locus by locus, to the
    factor at which phenotypes drawn from its model on the training genotypes give the locus's observed
    top LOCO statistic on average (:mod:`genosynth.genetics.calibration`). ``values`` (n_t,) are each
    trait's fitted genetic values ``x u``. The factors and the tops before and after go to the trait's log.

    The statistic is the selection's (:func:`_loco_round` with the covariates alone). The draws are the
    sampler's, liability cut included for a binary trait, which the factor then also corrects: effects
    fitted on the 0/1 scale are attenuated by the cut. That bias is systematic (factors 1.2-1.4 on
    hs1940's binary traits); a numeric trait's factors are near 1 there (0.75-1.17) and lowered the
    GEMMA F1 of the synthetic cohort, so ``qtl_effects: auto`` calibrates the binary traits alone
    (docs/synthesis.md).
    """
    todo = [j for j, model in enumerate(models)
            if len(model.qtl_snps) and (model.kind == "binary" or not binary_only)]
    if not todo:
        return
    m = x.shape[1]
    rng = np.random.default_rng(CALIBRATION_SEED)
    randoms = genetic_values(x, rng.standard_normal((m, DRAWS * len(todo)))
                             / np.sqrt(max(kernel.snp_variance, 1e-300)))
    columns = [np.arange(m)[cols] for cols in chromosomes]
    chromosome_of = np.empty(m, dtype=np.int64)
    for i, cols in enumerate(columns):
        chromosome_of[cols] = i
    for slot, j in enumerate(todo):
        model, fit = models[j], fits[j]
        random = randoms[fit.rows, slot * DRAWS : (slot + 1) * DRAWS]
        rest = _draws_without_qtls(model, fit, values[j], random, restore, rng)
        windows = [_locus_window(x, fit.rows, snp, columns[chromosome_of[snp]]) for snp in model.qtl_snps]
        loci = merge_overlapping(windows)
        loco = _LocoResponses(kernel, fit, x, chromosomes,
                              [int(chromosome_of[model.qtl_snps[locus[0]]]) for locus in loci])
        _calibrate_loci(model, fit, x, rest, [np.unique(np.concatenate([windows[i] for i in locus]))
                                              for locus in loci], loci, loco)


def _calibrate_loci(model: TraitModel, fit: _TraitFit, x: np.ndarray, rest: np.ndarray,
                    windows: list[np.ndarray], loci: list[list[int]], loco: _LocoResponses) -> None:
    """One trait's factors (:func:`_calibrate_qtls`): ``rest`` (n_t, k) are its draws without QTLs,
    ``windows`` the SNPs of each locus and ``loci`` the QTLs (indices into ``model.qtl_snps``) of each."""
    genotypes = [x[np.ix_(fit.rows, window)].astype(np.float64) for window in windows]
    dosages = x[np.ix_(fit.rows, model.qtl_snps)].astype(np.float64)
    signal = np.stack([dosages[:, locus] @ model.qtl_effects[locus] for locus in loci], axis=1)
    everyone = np.ones(len(fit.rows), dtype=bool)

    def scans(responses: list[np.ndarray]) -> np.ndarray:
        return np.stack([window_tops(g, r, fit.w) for g, r in zip(genotypes, responses, strict=True)])

    if model.kind == "binary":
        def tops(scales: np.ndarray) -> np.ndarray:
            liability = rest + (signal @ scales)[:, None]
            return scans(loco(np.stack([_liability_cut(column, model.prevalence, everyone)
                                        for column in liability.T], axis=1)))
    else:
        # Linear in the phenotype: one solve of the draws and of each locus's signal serves every factor.
        solved = loco(np.concatenate([rest, signal], axis=1))
        k = rest.shape[1]

        def tops(scales: np.ndarray) -> np.ndarray:
            return scans([r[:, :k] + (r[:, k:] @ scales)[:, None] for r in solved])

    observed = scans(loco(fit.y[:, None]))[:, 0]
    scales = calibrate_scales(observed, tops)
    before, after = tops(np.ones(len(loci))).mean(axis=1), tops(scales).mean(axis=1)
    factor = np.ones(len(model.qtl_snps))
    for locus, scale in zip(loci, scales, strict=True):
        factor[locus] = scale
    model.qtl_effects = model.qtl_effects * factor
    model.log["qtl_calibration"] = [
        {"snps": [int(model.qtl_snps[i]) for i in locus], "snps_in_locus": len(window),
         "scale": round(float(c), 4), "top_real": round(float(o), 3),
         "top_model_fitted": round(float(b), 3), "top_model": round(float(a), 3)}
        for locus, window, c, o, b, a in zip(loci, windows, scales, observed, before, after, strict=True)]


class _LocoResponses:
    """A trait's phenotypes less the ridge background of the other chromosomes, as the selection scans them
    (:func:`_loco_round` with the covariates alone; :func:`_loco_phenotypes` of their dual ridge
    coefficients off the covariates at the BLUP penalty). Called with phenotypes (n_t, k), it gives one
    (n_t, k) array per chromosome of ``loci``; each solve starts from the last (the calibration's draws
    change little from one call to the next)."""

    def __init__(self, kernel: _Exact | _Moments, fit: _TraitFit, x: np.ndarray,
                 chromosomes: list[slice | np.ndarray], loci: list[int]) -> None:
        self.kernel, self.fit, self.x, self.chromosomes, self.loci = kernel, fit, x, chromosomes, loci
        self.basis = np.linalg.qr(fit.w)[0]
        self.lam = blup_penalty(x.shape[1], fit.null.delta)
        self.start: np.ndarray | None = None

    def __call__(self, phenotypes: np.ndarray) -> list[np.ndarray]:
        fit, x = self.fit, self.x
        residual = phenotypes - self.basis @ (self.basis.T @ phenotypes)
        start = self.start if self.start is not None and self.start.shape == residual.shape else None
        alpha = self.kernel.dual_columns(fit, x, residual, self.lam, start=start)
        self.start = alpha
        padded = np.zeros((x.shape[0], alpha.shape[1]))
        padded[fit.rows] = alpha
        own = {c: _loco_phenotypes(x[:, self.chromosomes[c]].astype(np.float64), padded, self.lam)[fit.rows]
               for c in dict.fromkeys(self.loci)}
        return [own[c] for c in self.loci]


def _draws_without_qtls(model: TraitModel, fit: _TraitFit, values: np.ndarray, random: np.ndarray,
                        restore: str, rng: np.random.Generator) -> np.ndarray:
    """Phenotypes ``(n_t, k)`` drawn from a trait's model on its training individuals, as the sampler draws
    them but without the QTLs: covariates, the background restored from the fitted genetic values
    ``values`` (n_t,) with the random ones ``random`` (n_t, k) and rescaled to the genetic variance, and a
    fresh residual."""
    n_t, k = random.shape
    everyone = np.ones(n_t, dtype=bool)
    out = (fit.w @ model.covariate_effects)[:, None] + np.sqrt(model.ve) * rng.standard_normal((n_t, k))
    for draw in range(k):
        background = _restored(values[:, None], random[:, [draw]], np.array([[model.genetic_variance]]),
                               restore)[:, 0]
        out[:, draw] += _scaled_to(background, model.genetic_variance, everyone)
    return out


def _locus_window(x: np.ndarray, rows: np.ndarray, snp: int, chromosome: np.ndarray) -> np.ndarray:
    """The SNPs of a lead QTL's locus: within :data:`REACH` positions of it on its ``chromosome`` (its sorted
    columns) and at r^2 >= :data:`LD_MIN` with it over ``rows``."""
    at = int(np.searchsorted(chromosome, snp))
    lo = max(0, at - REACH)
    near = chromosome[lo : at + REACH + 1]
    return near[ld_with(x[np.ix_(rows, near)].astype(np.float64), at - lo) >= LD_MIN]


def _loco_round(fits: list[_TraitFit], kernel: _Exact | _Moments, x: np.ndarray,
                chromosomes: list[slice | np.ndarray], col_sq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One selection step of several traits: F statistics (t, m) of every SNP against each trait's
    residual less the ridge background of the *other* chromosomes, and their degrees of freedom (t,).

    Each trait's residual ``r`` after its fixed effects has dual ridge coefficients ``alpha`` (BLUP
    penalty ``lam``); its whole background is ``x x^T alpha = r - lam alpha`` and chromosome c's own part
    ``x_c x_c^T alpha``. The traits' vectors are laid out on every individual (zero where a trait is not
    observed), so each chromosome's columns are read and made float64 once per round for every trait:
    one product for the traits' own parts and one for their scans (:func:`genosynth.genetics.scan.
    padded_scans`). ``col_sq`` (m, t): column sums of squares of ``x`` over each trait's individuals.
    """
    n, t = x.shape[0], len(fits)
    alphas = np.zeros((n, t))
    bases, offsets, residual, lams = [], [0], [], []
    for fit in fits:
        fixed = fit.fixed(x)
        residual.append(fit.y - fixed @ np.linalg.lstsq(fixed, fit.y, rcond=None)[0])
        lams.append(blup_penalty(x.shape[1], fit.null.delta))
        q = np.zeros((n, fixed.shape[1]))
        q[fit.rows] = np.linalg.qr(fixed)[0]
        bases.append(q)
        offsets.append(offsets[-1] + fixed.shape[1])
    masks = np.zeros((n, t))
    for j, (fit, alpha) in enumerate(zip(fits, kernel.duals(fits, x, residual, lams), strict=True)):
        alphas[fit.rows, j] = alpha
        masks[fit.rows, j] = 1.0
    basis = np.concatenate(bases, axis=1)
    df = np.array([len(fit.rows) - q.shape[1] - 1 for fit, q in zip(fits, bases, strict=True)])
    t2 = np.zeros((t, x.shape[1]))
    for cols in chromosomes:
        part = x[:, cols].astype(np.float64)
        responses = masks * _loco_phenotypes(part, alphas, np.asarray(lams))
        t2[:, cols] = padded_scans(part, basis, offsets, responses, col_sq[cols], df)
    return t2, df


def _loco_phenotypes(part: np.ndarray, alphas: np.ndarray, lams: np.ndarray | float) -> np.ndarray:
    """Phenotypes less the ridge background of the other chromosomes (LOCO, as REGENIE's step 2), from
    their dual ridge coefficients.

    With ``alpha = (x x^T + lam I)^-1 r`` the whole background is ``x x^T alpha = r - lam alpha``, so
    ``r`` less the other chromosomes' part is ``lam alpha + x_c x_c^T alpha``.

    Parameters
    ----------
    part : (n, m_c) chromosome c's columns of ``x``, float64; alphas : (n, k) dual coefficients laid out
        on all individuals (zero where a column's trait is not observed); lams : (k,) or scalar penalties

    Returns
    -------
    (n, k); off a column's individuals it holds ``x_c x_c^T alpha``, which the caller drops
    """
    return alphas * lams + part @ (part.T @ alphas)


def _column_squares(x: np.ndarray, rows: list[np.ndarray]) -> np.ndarray:
    """Column sums of squares (m, t) of ``x`` over each of t sets of rows, float64, an ``(n, BLOCK)``
    slice at a time."""
    indicator = np.zeros((x.shape[0], len(rows)))
    for j, r in enumerate(rows):
        indicator[r, j] = 1.0
    out = np.empty((x.shape[1], len(rows)))
    for lo in range(0, x.shape[1], BLOCK):
        part = x[:, lo : lo + BLOCK].astype(np.float64)
        out[lo : lo + BLOCK] = (part * part).T @ indicator
    return out


def _trait_correlations(residuals: pd.DataFrame, models: list[TraitModel],
                        pairs: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
                        groups: list[list[str]]) -> tuple[np.ndarray, np.ndarray]:
    """Genetic and residual correlations ``(t, t)`` of the traits' residuals after the fixed effects.

    The genetic covariance of two traits is the cross-trait Haseman-Elston slope on the kinship (over
    individuals observed for both; ``pairs(table)`` gives the slopes and the mean products of the (n, k)
    residuals, as :func:`genosynth.genetics.variance.haseman_elston_pairs`); the residual one is what
    remains of their covariance, so the phenotypic correlation is kept. Traits in different phenotype
    groups get zero.
    """
    t = len(models)
    genetic, residual = np.eye(t), np.eye(t)
    group_of = {c: i for i, g in enumerate(groups) for c in g}
    for members in _grouped(models, group_of):
        if len(members) < 2:
            continue
        table = residuals[[models[i].name for i in members]].to_numpy(dtype=np.float64, na_value=np.nan)
        cov_g, cov = pairs(table)
        for x, i in enumerate(members):
            a = models[i]
            for y, j in enumerate(members[:x]):
                b = models[j]
                if np.isnan(cov_g[x, y]):
                    continue
                rg = float(np.clip(cov_g[x, y] / np.sqrt(max(a.vg * b.vg, 1e-300)), -0.99, 0.99))
                shared_g = rg * np.sqrt(a.genetic_variance * b.genetic_variance)
                re = float(np.clip((cov[x, y] - shared_g) / np.sqrt(max(a.ve * b.ve, 1e-300)), -0.99, 0.99))
                genetic[i, j] = genetic[j, i] = rg
                residual[i, j] = residual[j, i] = re
    return nearest_correlation(genetic), nearest_correlation(residual)


def _grouped(models: list[TraitModel], group_of: dict[str, int]) -> list[list[int]]:
    """Indices of the models in each phenotype group (a model outside every group stands alone)."""
    out: dict[object, list[int]] = {}
    for i, m in enumerate(models):
        out.setdefault(group_of.get(m.name, ("alone", i)), []).append(i)
    return list(out.values())


def sample_phenotypes(
    model: PhenotypeModel, blocks: Iterable[tuple[int, np.ndarray]], *, n: int, seed: int, ids: list[str],
) -> pd.DataFrame:
    """Synthetic sample table for ``n`` synthetic individuals.

    Parameters
    ----------
    blocks : iterable of (start, (n, k) float dosages)
        The synthetic genotypes in SNP order, streamed once; only ``n x k`` arrays are made from them.
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
    effects = (np.stack([tm.background for tm in model.traits], axis=1).astype(np.float64) if t
               else np.zeros((len(model.snp_centres), 0)))
    # Independent random backgrounds with var(X z) about 1 per trait, mixed in after the pass.
    random_sd = 1.0 / np.sqrt(max(model.snp_variance, 1e-300))
    ve = np.array([tm.ve for tm in model.traits])
    residual_root = (sqrt_psd(model.residual_correlation * np.sqrt(np.outer(ve, ve))) if t
                     else np.zeros((0, 0)))
    wanted = {int(s) for tm in model.traits for s in tm.qtl_snps}
    qtl_dosage: dict[int, np.ndarray] = {}
    fitted = np.zeros((n, t))
    random = np.zeros((n, t))
    for start, block in blocks:
        stop = start + block.shape[1]
        centres = model.snp_centres[start:stop].astype(np.float32)
        xc = centre(block.astype(np.float32), centres).astype(np.float64)
        fitted += xc @ effects[start:stop]
        random += xc @ (rng.standard_normal((block.shape[1], t)) * random_sd)
        for s in wanted & set(range(start, stop)):
            column = block[:, s - start].astype(np.float64)
            qtl_dosage[s] = np.where(np.isnan(column), model.snp_centres[s], column)
    residual = rng.standard_normal((n, t)) @ residual_root.T
    sd_g = np.sqrt([tm.genetic_variance for tm in model.traits])
    background = _restored(fitted, random, model.genetic_correlation * np.outer(sd_g, sd_g),
                           model.settings.get("restore", "random"))
    out = {"id": ids}
    for i, tm in enumerate(model.traits):
        x_q = (np.stack([qtl_dosage[int(s)] for s in tm.qtl_snps], axis=1) if len(tm.qtl_snps)
               else np.zeros((n, 0)))
        observed = ~missing[:, model.columns.index(tm.name)]
        y = (w @ tm.covariate_effects + (x_q - tm.qtl_centres[None, :]) @ tm.qtl_effects
             + _scaled_to(background[:, i], tm.genetic_variance, observed) + residual[:, i])
        out[tm.name] = _liability_cut(y, tm.prevalence, observed) if tm.kind == "binary" else y
    for column in table.columns:
        out[column] = table[column].to_numpy()
    frame = pd.DataFrame(out)[["id", *model.columns]]
    for j, column in enumerate(model.columns):
        if missing[:, j].any():
            frame[column] = frame[column].astype(object if frame[column].dtype == object else np.float64)
            frame.loc[missing[:, j], column] = np.nan if frame[column].dtype != object else None
    return frame


def _restored(fitted: np.ndarray, random: np.ndarray, covariance: np.ndarray, restore: str) -> np.ndarray:
    """The sampled backgrounds (n, t): the fitted genetic values ``X u`` (n, t) with the independent random
    ones ``X z`` (n, t) mixed in to reach the genetic ``covariance`` (t, t) (``restore: random``), or the
    fitted ones alone (``restore: scale``, scaled up afterwards by :func:`_scaled_to`)."""
    if restore == "scale":
        return fitted
    return fitted + random @ background_mixing(fitted, random, covariance)


def _scaled_to(values: np.ndarray, variance: float, observed: np.ndarray) -> np.ndarray:
    """``values`` (n,) scaled to ``variance`` over the ``observed`` individuals (n,) bool: the real genetic
    variance, on the sampled cohort's own LD and relatedness."""
    spread = float(np.var(values[observed])) if observed.sum() > 1 else 0.0
    return values * (np.sqrt(variance / spread) if spread > 0 else 1.0)


def _liability_cut(liability: np.ndarray, prevalence: float, observed: np.ndarray) -> np.ndarray:
    """0/1 (n,) cases above the liability's ``1 - prevalence`` quantile over the ``observed`` individuals."""
    cut = np.quantile(liability[observed], 1.0 - prevalence) if observed.any() else 0.0
    return (liability > cut).astype(np.float64)
