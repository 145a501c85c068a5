"""``model="wgr"``: the scalable GWAS, REGENIE's two steps on streamed SNP blocks.

Step 1 (:mod:`genosynth.genetics.wgr`): level-0 ridge predictions of every SNP block (blocks of
``block_snps`` SNPs, cut at chromosome ends) under 5 penalties in 5-fold cross-validation, a level-1
ridge over them, and the leave-one-chromosome-out (LOCO) genetic prediction of each trait.
Step 2, per SNP of chromosome c, the trait minus its LOCO prediction for c:

* numeric traits: the per-SNP linear model of :mod:`genosynth.gwas.linear` (Wald, ``F(1, n - q - 1)``),
  so given the same adjusted phenotype it is PLINK 2's ``--glm`` (and GEMMA's ``-lm 1``);
* binary traits (0/1): the score test of :mod:`genosynth.genetics.score` with the saddlepoint
  approximation, on a null logistic model with the LOCO prediction as an offset. The level-1 model here
  is linear (REGENIE's is logistic); its prediction ``g`` on the probability scale enters the logit as
  ``g / (p (1 - p))`` (``p`` the case fraction), the first-order change of the logit.

Individuals analysed: those with every requested trait and covariate observed. SNP filters as the exact
engine's (GEMMA's defaults, :mod:`genosynth.gwas.filters`), on those individuals; missing calls are
mean-imputed. Memory: one SNP block (``n x block_snps``) plus the level-0 predictions
(``n x blocks x 5 x traits`` float32), never an ``n x n`` matrix; genotypes are read twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from genosynth.errors import InputError
from genosynth.formats.dataset import Dataset
from genosynth.genetics import score as score_test
from genosynth.genetics import wgr
from genosynth.genetics.dosages import mean_impute
from genosynth.gwas import filters as snp_filters
from genosynth.gwas.engine import TABLE_COLUMNS, GwasResult
from genosynth.gwas.linear import linear_regression

BLOCK_SNPS = 500
FOLDS = 5
#: Cohort size from which ``gwas_model: auto`` picks WGR over the exact LMM (docs/scaling.md).
AUTO_WGR_FROM = 5_000


def _design(dataset: Dataset, traits: Sequence[str], covariates: Sequence[str]):
    """Traits (N, t) and covariates with intercept (N, q) of every person, NaN where missing."""
    frame = dataset.phenotypes([*traits, *covariates])
    kinds = dataset.column_kinds
    for name in traits:
        if kinds.get(name) == "categorical" or not pd.api.types.is_numeric_dtype(frame[name]):
            raise InputError(dataset.url,
                             f"trait {name!r} is categorical; GWAS needs a numeric or binary trait",
                             column=name)
    columns = [np.ones(len(frame))]
    for name in covariates:
        series = frame[name]
        if kinds.get(name) == "categorical" or not pd.api.types.is_numeric_dtype(series):
            levels = sorted(series.dropna().astype(str).unique())
            for level in levels[1:]:
                indicator = (series.astype(str) == level).to_numpy(dtype=np.float64)
                indicator[series.isna().to_numpy()] = np.nan
                columns.append(indicator)
        else:
            columns.append(series.to_numpy(dtype=np.float64, na_value=np.nan))
    y = frame[list(traits)].to_numpy(dtype=np.float64, na_value=np.nan)
    return y, np.column_stack(columns)


def _blocks(chrom: np.ndarray, size: int) -> list[tuple[int, int, str]]:
    """SNP blocks ``(start, stop, chromosome)`` of at most ``size`` SNPs, never across a chromosome end."""
    out, start = [], 0
    for i in range(1, len(chrom) + 1):
        if i == len(chrom) or chrom[i] != chrom[start]:
            for lo in range(start, i, size):
                out.append((lo, min(lo + size, i), str(chrom[start])))
            start = i
    return out


@dataclass
class Step1:
    """What step 1 leaves for step 2.

    ``analysed`` (N,) bool mask of the cohort; ``y`` (n, t) traits and ``covariates`` (n, q, intercept
    first) of the analysed individuals; ``binary`` (t,); ``chromosomes`` in file order; ``loco`` (n, C, t)
    LOCO genetic predictions in trait units; ``blocks`` and their filter outcomes ``stats``.
    """

    analysed: np.ndarray
    y: np.ndarray
    covariates: np.ndarray
    binary: np.ndarray
    chromosomes: list[str]
    loco: np.ndarray
    blocks: list[tuple[int, int, str]]
    stats: list[snp_filters.SnpStats]
    level1: dict[str, dict[str, float]]
    timings: dict[str, float]

    def adjusted(self, chromosome: str) -> np.ndarray:
        """(n, t) traits minus their LOCO prediction for ``chromosome`` (step 2's numeric traits)."""
        return self.y - self.loco[:, self.chromosomes.index(chromosome), :]


def wgr_step1(ds: Dataset, traits: Sequence[str], covariates: Sequence[str] = (), *,
              block_snps: int = BLOCK_SNPS, folds: int = FOLDS, seed: int = 0,
              settings: snp_filters.FilterSettings | None = None,
              progress: Callable[[str], None] | None = None) -> Step1:
    """Step 1: level-0 ridge per SNP block, level-1 ridge, LOCO predictions (one pass over the SNPs)."""
    settings = settings or snp_filters.FilterSettings()
    say = progress or (lambda message: None)
    clock: dict[str, float] = {}
    y_all, c_all = _design(ds, traits, covariates)
    analysed = ~np.isnan(y_all).any(axis=1) & ~np.isnan(c_all).any(axis=1)
    y, cov = y_all[analysed], c_all[analysed]
    n = int(analysed.sum())
    if n < 2 * folds + cov.shape[1]:
        raise InputError(ds.url, f"only {n} individuals have every trait and covariate observed")
    kinds = ds.column_kinds
    binary = np.array([kinds.get(name) == "binary" or set(np.unique(y[:, j])) <= {0.0, 1.0}
                       for j, name in enumerate(traits)])
    basis, _ = np.linalg.qr(cov)
    y_res = wgr.project_out(basis, y)
    y_sd = y_res.std(axis=0)
    if np.any(y_sd <= 0):
        raise InputError(ds.url,
                         f"trait {traits[int(np.argmin(y_sd))]!r} is constant on the analysed individuals")
    y_std = y_res / y_sd
    chrom = ds.variants["chr"].astype(str).to_numpy()
    chromosomes = list(dict.fromkeys(chrom))
    blocks = _blocks(chrom, block_snps)
    fold = wgr.assign_folds(n, folds, seed)

    started = time.perf_counter()
    penalties = wgr.ridge_penalties(len(chrom))
    level0: list[np.ndarray] = []
    column_chromosome: list[int] = []
    stats: list[snp_filters.SnpStats] = []
    say(f"wgr step 1: level 0 over {len(blocks)} blocks of <= {block_snps} SNPs, {n} individuals")
    for start, stop, c in blocks:
        dosages = ds.dosages(start, stop)[analysed]
        block_stats = snp_filters.snp_filters(dosages, cov, settings)
        stats.append(block_stats)
        passed = block_stats.passed
        if not passed.any():
            continue
        x = mean_impute(dosages[:, passed], 2.0 * block_stats.af[passed])
        x = wgr.standardise_columns(wgr.project_out(basis, x))
        level0.append(wgr.level0_block(x, y_std, fold, penalties).astype(np.float32))
        column_chromosome.extend([chromosomes.index(c)] * len(penalties))
    clock["level0"] = time.perf_counter() - started

    started = time.perf_counter()
    column_chromosome_arr = np.asarray(column_chromosome)
    loco = np.zeros((n, len(chromosomes), len(traits)))
    level1_log = {}
    for j, name in enumerate(traits):
        w = np.concatenate([block[:, j, :] for block in level0], axis=1).astype(np.float64)
        fit = wgr.level1_fit(w, y_std[:, j], fold, wgr.level1_penalties(w.shape[1]))
        loco[:, :, j] = wgr.loco_predictions(w, fit, fold, column_chromosome_arr, len(chromosomes)) * y_sd[j]
        level1_log[name] = {"level1_penalty": fit.penalty, "level1_cv_r2": float(1 - fit.cv_mse.min())}
    clock["level1"] = time.perf_counter() - started
    return Step1(analysed=analysed, y=y, covariates=cov, binary=binary, chromosomes=chromosomes, loco=loco,
                 blocks=blocks, stats=stats, level1=level1_log, timings=clock)


def run_wgr(dataset: Dataset | str, traits: Sequence[str], covariates: Sequence[str] = (), *,
            block_snps: int = BLOCK_SNPS, folds: int = FOLDS, seed: int = 0,
            settings: snp_filters.FilterSettings | None = None,
            progress: Callable[[str], None] | None = None) -> GwasResult:
    """REGENIE-style GWAS of ``traits`` (numeric: linear test; binary 0/1: score test with SPA).

    Returns a :class:`GwasResult` whose table has the exact engine's columns
    ``trait snp chr pos n n_miss af beta se p`` (one row per trait and analysed SNP).

    >>> result = run_wgr("data/bb", ["quant", "disease"], ["sex", "age"])  # doctest: +SKIP
    """
    ds = dataset if isinstance(dataset, Dataset) else Dataset.open(dataset)
    settings = settings or snp_filters.FilterSettings()
    say = progress or (lambda message: None)
    step1 = wgr_step1(ds, traits, covariates, block_snps=block_snps, folds=folds, seed=seed,
                      settings=settings, progress=progress)
    clock = dict(step1.timings)
    analysed, y, cov, binary, loco = step1.analysed, step1.y, step1.covariates, step1.binary, step1.loco
    chromosomes, blocks, stats, level1_log = step1.chromosomes, step1.blocks, step1.stats, step1.level1
    n = len(y)
    chrom = ds.variants["chr"].astype(str).to_numpy()

    # Null logistic models, one per chromosome (the LOCO offset differs).
    started = time.perf_counter()
    null_mu: dict[tuple[int, int], np.ndarray] = {}
    for j in np.flatnonzero(binary):
        p = float(y[:, j].mean())
        for ci in range(len(chromosomes)):
            null_mu[(j, ci)] = score_test.logistic_null(y[:, j], cov, loco[:, ci, j] / (p * (1 - p)))
    clock["null"] = time.perf_counter() - started

    # Step 2: per-SNP tests on the LOCO-adjusted traits.
    started = time.perf_counter()
    say("wgr step 2: association tests")
    parts: list[dict[str, np.ndarray]] = [[] for _ in traits]  # type: ignore[misc]
    for (start, stop, c), block_stats in zip(blocks, stats, strict=True):
        passed = block_stats.passed
        if not passed.any():
            continue
        ci = chromosomes.index(c)
        index = np.arange(start, stop)[passed]
        x = mean_impute(ds.dosages(start, stop)[analysed][:, passed], 2.0 * block_stats.af[passed])
        quantitative = np.flatnonzero(~binary)
        if quantitative.size:
            adjusted = step1.adjusted(c)[:, quantitative]
            fit = linear_regression(x, cov, adjusted)
            for col, j in enumerate(quantitative):
                parts[j].append({"index": index, "beta": fit.beta[:, col], "se": fit.se[:, col],
                                 "p": fit.p[:, col], "af": block_stats.af[passed],
                                 "n_miss": block_stats.n_miss[passed]})
        for j in np.flatnonzero(binary):
            result = score_test.score_test(x, y[:, j], null_mu[(j, ci)], cov)
            parts[j].append({"index": index, "beta": result.beta, "se": result.se, "p": result.p,
                             "af": block_stats.af[passed], "n_miss": block_stats.n_miss[passed]})
    clock["step2"] = time.perf_counter() - started

    table = _table(ds, traits, parts, n)
    reasons = np.concatenate([s.reason for s in stats])
    dropped = {reason: int((reasons == i + 1).sum()) for i, reason in enumerate(snp_filters.REASONS)}
    counts = table.groupby("trait", sort=False).size()
    log = {
        "dataset": ds.url, "model": "wgr", "loco": True,
        "method": "REGENIE-style whole-genome regression: level-0 ridge per SNP block, level-1 ridge, "
                  "LOCO; linear test (numeric traits), score test with SPA (binary traits)",
        "traits": {name: {"individuals_analysed": n,
                          "individuals_missing_trait_or_covariate": int(len(analysed) - n),
                          "snps_analysed": int(counts.get(name, 0)), "snps_dropped": dropped,
                          "test": "score-spa" if binary[j] else "linear", **level1_log[name]}
                   for j, name in enumerate(traits)},
        "covariates": list(covariates), "individuals_in_cohort": len(analysed),
        "snps_in_dataset": len(chrom),
        "filters": {"max_missing": settings.max_missing, "min_maf": settings.min_maf,
                    "max_r2": settings.max_r2},
        "wgr": {"block_snps": block_snps, "blocks": len(blocks), "folds": folds, "seed": seed,
                "level0_h2_grid": list(wgr.H2_GRID)},
        "rows": len(table),
    }
    return GwasResult(table=table, log=log, timings=clock)


def _table(ds: Dataset, traits: Sequence[str], parts: list, n: int) -> pd.DataFrame:
    variants = ds.variants
    frames = []
    for j, name in enumerate(traits):
        if parts[j]:
            merged = {key: np.concatenate([p[key] for p in parts[j]]) for key in parts[j][0]}
        else:
            merged = {key: np.zeros(0, dtype=np.int64 if key in ("index", "n_miss") else np.float64)
                      for key in ("index", "beta", "se", "p", "af", "n_miss")}
        index = merged["index"]
        frames.append(pd.DataFrame({
            "trait": name,
            "snp": variants["id"].to_numpy()[index],
            "chr": variants["chr"].astype(str).to_numpy()[index],
            "pos": pd.array(variants["pos"].to_numpy()[index], dtype="Int64"),
            "n": np.full(len(index), n, dtype=np.int64),
            "n_miss": merged["n_miss"].astype(np.int64),
            "af": merged["af"], "beta": merged["beta"], "se": merged["se"], "p": merged["p"],
        }))
    table = pd.concat(frames, ignore_index=True)[TABLE_COLUMNS]
    table["trait"] = table["trait"].astype(str)
    return table
