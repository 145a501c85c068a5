"""``run_gwas``: the public GWAS of an internal dataset, GEMMA's semantics on streamed SNP batches.

What GEMMA does, and so what this does (per trait, as if GEMMA were run with ``-n k`` for each trait):

* analysed individuals: the trait and every covariate observed (within ``samples`` when given);
  traits with the same analysed individuals share one eigendecomposition ("pattern");
* SNP filters on the analysed individuals (:mod:`genosynth.gwas.filters`); SNPs without a bp position are
  kept (GEMMA reports them with position -9; here the position is missing);
* kinship (lmm): ``-gk 1`` over every individual of the cohort from the SNPs that pass the trait's
  filters, missing calls imputed with the cohort mean, then restricted to the analysed individuals and
  double-centred; with ``loco`` the chromosome under test is subtracted from the full sum;
* tested SNP: missing calls imputed with the mean over the analysed individuals.

Genotypes are read batch by batch: the first pass computes filters and the kinship sums, the second pass
(lmm) rotates each batch and tests it; the decoded dosages are kept between the passes when they fit in
``max_genotype_bytes`` (else read again). Apart from them, memory is flat in the number of SNPs but for
the (n, n) kinship sums (one per chromosome with ``loco`` when they fit in ``max_kinship_bytes``, else
recomputed).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
from threadpoolctl import threadpool_limits

from genosynth.errors import InputError
from genosynth.formats.dataset import Dataset
from genosynth.genetics import chromosomes
from genosynth.genetics.covariates import category_levels, indicator_coding, with_intercept
from genosynth.genetics.device import pick_device
from genosynth.genetics.dosages import mean_impute
from genosynth.genetics.kinship import (
    centred_genotypes,
    chromosome_kinship_sums,
    double_centre,
    kinship_sum,
    loco_kinship,
)
from genosynth.gwas import filters as snp_filters
from genosynth.gwas.linear import linear_regression
from genosynth.gwas.lmm import LmmPattern

MODELS = ("lm", "lmm")
TABLE_COLUMNS = ["trait", "snp", "chr", "pos", "n", "n_miss", "af", "beta", "se", "p"]


@dataclass
class GwasResult:
    """``table``: one row per (trait, analysed SNP) with columns ``trait snp chr pos n n_miss af beta se p``
    (+ ``l_remle`` and ``logl_H1`` for the LMM); ``log``: what was analysed, filtered and estimated."""

    table: pd.DataFrame
    log: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase; not part of the log


class _Clock:
    """Wall seconds per phase (read, filters, lm, kinship, eigen, rotate, reml, table)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, phase: str):
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] = self.seconds.get(phase, 0.0) + time.perf_counter() - started


class _Genotypes:
    """The cohort's dosages, decoded once: kept in memory (float32, as stored) when they fit in
    ``max_bytes``, else read again from the dataset for the second pass."""

    def __init__(self, ds: Dataset, cohort: np.ndarray, max_bytes: int, clock: _Clock) -> None:
        self.ds, self.cohort, self.clock = ds, cohort, clock
        n = int(cohort.sum())
        fits = n * ds.n_variants * 4 <= max_bytes
        self.kept = np.empty((n, ds.n_variants), dtype=np.float32) if fits else None
        self.filled = 0

    def block(self, start: int, stop: int) -> np.ndarray:
        """(n_cohort, stop - start) float32 dosages, NaN for missing."""
        with self.clock("read"):
            if self.kept is not None and stop <= self.filled:
                return self.kept[:, start:stop]
            block = self.ds.dosages(start, stop)[self.cohort]
            if self.kept is not None and start == self.filled:
                self.kept[:, start:stop] = block
                self.filled = stop
            return block


@dataclass
class _Pattern:
    """Traits analysed on the same individuals."""

    mask: np.ndarray  # (N,) bool over the cohort
    traits: list[int]  # indices into the trait list
    covariates: np.ndarray  # (n, q) with intercept
    reason: np.ndarray  # (M,) filter outcome per SNP
    af: np.ndarray
    n_miss: np.ndarray
    kinship_snps: int = 0
    null_models: list = field(default_factory=list)

    @property
    def passed(self) -> np.ndarray:
        return self.reason == 0


def _design(dataset: Dataset, traits: Sequence[str], covariates: Sequence[str],
            cohort: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Trait matrix (N, t) and covariate matrix (N, k) of the cohort, NaN where missing."""
    frame = dataset.phenotypes([*traits, *covariates]).loc[cohort]
    kinds = dataset.column_kinds
    trait_values = []
    for name in traits:
        if kinds.get(name) == "categorical" or not pd.api.types.is_numeric_dtype(frame[name]):
            raise InputError(dataset.url,
                             f"trait {name!r} is categorical; GWAS needs a numeric or binary trait",
                             column=name)
        trait_values.append(frame[name].to_numpy(dtype=np.float64, na_value=np.nan))
    columns: list[np.ndarray] = []
    names: list[str] = []
    for name in covariates:
        series = frame[name]
        if kinds.get(name) == "categorical" or not pd.api.types.is_numeric_dtype(series):
            # One indicator per level after the first (sorted), missing stays missing.
            levels = category_levels(series.dropna().astype(str))
            columns.extend(indicator_coding(series.astype(str).to_numpy(), levels,
                                            missing=series.isna().to_numpy()).T)
            names.extend(f"{name}={level}" for level in levels[1:])
        else:
            columns.append(series.to_numpy(dtype=np.float64, na_value=np.nan))
            names.append(name)
    y = np.column_stack(trait_values) if trait_values else np.empty((int(cohort.sum()), 0))
    c = np.column_stack(columns) if columns else np.empty((len(y), 0))
    return y, c, names


def _cohort(dataset: Dataset, samples: Sequence[str] | np.ndarray | None) -> np.ndarray:
    ids = dataset.sample_ids
    if samples is None:
        return np.ones(len(ids), dtype=bool)
    chosen = np.asarray(samples)
    if chosen.dtype == bool:
        if chosen.shape != ids.shape:
            raise InputError(dataset.url, f"sample mask of length {len(chosen)}, expected {len(ids)}")
        return chosen
    wanted = {str(s) for s in chosen}
    unknown = wanted - set(ids)
    if unknown:
        raise InputError(dataset.url, f"unknown sample id {sorted(unknown)[0]!r}", column="id")
    return np.isin(ids, list(wanted))


def _chromosome_runs(chrom: np.ndarray) -> dict[str, list[tuple[int, int]]]:
    """SNP index runs ``[(start, stop), ...]`` of each chromosome label, in order of first appearance."""
    runs: dict[str, list[tuple[int, int]]] = {}
    for label, start, stop in chromosomes.chromosome_runs(chrom):
        runs.setdefault(label, []).append((start, stop))
    return runs


def _batches(runs: list[tuple[int, int]], size: int):
    for start, stop in runs:
        for lo in range(start, stop, size):
            yield lo, min(stop, lo + size)


def cpu_threads() -> int:
    """The process's share of the cores: ``OMP_NUM_THREADS`` when set (the local runner sets it per
    worker), else the cores this process may run on."""
    value = os.environ.get("OMP_NUM_THREADS", "")
    if value.isdigit() and int(value) > 0:
        return int(value)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@contextlib.contextmanager
def fixed_threads(count: int):
    """BLAS (every library threadpoolctl sees) and torch on ``count`` threads, restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        with threadpool_limits(limits=count):
            yield
    finally:
        torch.set_num_threads(before)


def run_gwas(
    dataset: Dataset | str,
    traits: Sequence[str],
    covariates: Sequence[str] = (),
    model: str = "lmm",
    loco: bool = False,
    samples: Sequence[str] | np.ndarray | None = None,
    *,
    missing: str = "per-trait",
    settings: snp_filters.FilterSettings | None = None,
    batch_snps: int = 4096,
    device: torch.device | str | None = None,
    max_kinship_bytes: int = 1 << 30,
    max_genotype_bytes: int = 1 << 30,
    progress: Callable[[str], None] | None = None,
    threads: int | None = None,
) -> GwasResult:
    """GWAS of ``traits`` on ``dataset`` with a per-SNP linear model or GEMMA's exact LMM.

    Parameters
    ----------
    dataset : a :class:`Dataset` or its URL.
    traits : sample columns to test (numeric or binary), each analysed on its own observed individuals.
    covariates : sample columns added to the intercept (categorical ones become indicators).
    model : ``"lm"`` (GEMMA ``-lm 1``) or ``"lmm"`` (GEMMA ``-gk 1`` then ``-lmm 1``).
    loco : LMM only: test each chromosome with the kinship of the other chromosomes (GEMMA ``-loco``).
    samples : restrict the cohort to these sample ids (or a boolean mask over the dataset's samples).
    missing : ``"per-trait"`` (default): each trait on the individuals where it is observed, as separate
        GEMMA runs ``-n k``; ``"any"``: only individuals with every trait observed, as one GEMMA run
        ``-n 1 2 ..`` selects them; all traits then share one eigendecomposition (faster for many traits).
    settings : SNP filter thresholds (GEMMA defaults).
    batch_snps : SNPs read and tested per batch.
    device : torch device for the LMM (default: CUDA when present).
    max_kinship_bytes : memory for the per-chromosome kinship sums of LOCO (else recomputed).
    max_genotype_bytes : memory for the decoded dosages of the cohort, kept between the two passes
        (else read twice).
    threads : BLAS and torch threads for the whole run (default :func:`cpu_threads`), set once here so
        that nothing oversubscribes the cores and two runs with the same count give the same bytes.

    Returns
    -------
    GwasResult with the table (one row per trait and analysed SNP, in trait then genome order) and log.

    Examples
    --------
    >>> result = run_gwas("data/hs1940", ["trait1"], model="lmm")  # doctest: +SKIP
    >>> result.log["traits"]["trait1"]["pve"]  # doctest: +SKIP
    0.6088...
    """
    with fixed_threads(threads or cpu_threads()):
        return _run_gwas(dataset, traits, covariates, model, loco, samples, missing, settings, batch_snps,
                         device, max_kinship_bytes, max_genotype_bytes, progress)


def _run_gwas(dataset, traits, covariates, model, loco, samples, missing, settings, batch_snps, device,
              max_kinship_bytes, max_genotype_bytes, progress) -> GwasResult:
    ds = dataset if isinstance(dataset, Dataset) else Dataset.open(dataset)
    if model not in MODELS:
        raise InputError(ds.url, f"unknown model {model!r}; expected one of {', '.join(MODELS)}")
    if loco and model != "lmm":
        raise InputError(ds.url, "--loco needs the lmm model")
    traits, covariates = list(traits), list(covariates)
    if not traits:
        raise InputError(ds.url, "no trait to test")
    if len(set(traits)) != len(traits):
        raise InputError(ds.url, "a trait is named twice")
    settings = settings or snp_filters.FilterSettings()
    dev = pick_device(device)
    say = progress or (lambda _msg: None)

    clock = _Clock()
    cohort = _cohort(ds, samples)
    y, c, covariate_names = _design(ds, traits, covariates, cohort)
    n_cohort, n_snps = int(cohort.sum()), ds.n_variants
    covariates_observed = ~np.isnan(c).any(axis=1)
    if missing not in ("per-trait", "any"):
        raise InputError(ds.url, f"unknown missing-phenotype rule {missing!r}; expected per-trait or any")
    if missing == "any":
        covariates_observed &= ~np.isnan(y).any(axis=1)
    patterns: dict[bytes, _Pattern] = {}
    for j, name in enumerate(traits):
        mask = ~np.isnan(y[:, j]) & covariates_observed
        n = int(mask.sum())
        design = with_intercept(c[mask])
        if n <= design.shape[1] + 1:
            raise InputError(ds.url, f"trait {name!r}: {n} individuals with the trait and covariates "
                             "observed, "
                             f"need more than {design.shape[1] + 1}", column=name)
        if np.linalg.matrix_rank(design) < design.shape[1]:
            raise InputError(ds.url, f"covariates {', '.join(covariate_names)} are collinear with the "
                             f"intercept on the individuals of trait {name!r}", column=name)
        key = mask.tobytes()
        if key not in patterns:
            patterns[key] = _Pattern(mask=mask, traits=[], covariates=design,
                                     reason=np.zeros(n_snps, dtype=np.int8), af=np.full(n_snps, np.nan),
                                     n_miss=np.zeros(n_snps, dtype=np.int64))
        patterns[key].traits.append(j)
    groups = list(patterns.values())

    variants = ds.variants
    chrom = variants["chr"].astype(str).to_numpy()
    runs = _chromosome_runs(chrom)
    all_runs = [(0, n_snps)]
    store_by_chromosome = loco and len(runs) * n_cohort * n_cohort * 8 <= max_kinship_bytes
    chromosome_of = {name: i for i, name in enumerate(runs)}
    chrom_index = np.array([chromosome_of[str(v)] for v in chrom], dtype=np.int64) if loco else None

    # Pass 1: filters per pattern, linear model, kinship sums.
    collected: dict[int, list[dict[str, np.ndarray]]] = {j: [] for j in range(len(traits))}
    union_sum = np.zeros((n_cohort, n_cohort)) if model == "lmm" else None
    excluded_sum: dict[int, np.ndarray] = {}
    chromosome_sums: dict[int, np.ndarray] = {}
    say("reading genotypes: filters" + (" and kinship" if model == "lmm" else " and tests"))
    genotypes = _Genotypes(ds, cohort, max_genotype_bytes, clock)
    for start, stop in _batches(all_runs, batch_snps):
        block = genotypes.block(start, stop).astype(np.float64)
        for group in groups:
            with clock("filters"):
                stats = snp_filters.snp_filters(block[group.mask], group.covariates, settings)
            group.reason[start:stop] = stats.reason
            group.af[start:stop] = stats.af
            group.n_miss[start:stop] = stats.n_miss
            if model == "lm":
                keep = np.flatnonzero(stats.passed)
                if keep.size:
                    with clock("lm"):
                        x = mean_impute(block[group.mask][:, keep], 2.0 * stats.af[keep])
                        fit = linear_regression(x, group.covariates, y[group.mask][:, group.traits])
                    for k, j in enumerate(group.traits):
                        collected[j].append({"index": start + keep, "beta": fit.beta[:, k],
                                             "se": fit.se[:, k], "p": fit.p[:, k]})
        if model == "lmm":
            with clock("kinship"):
                _add_kinship(block, groups, start, stop, chrom_index, store_by_chromosome, union_sum,
                             chromosome_sums, excluded_sum)

    if model == "lmm":
        union_all = np.zeros(n_snps, dtype=bool)
        for group in groups:
            union_all |= group.passed
        _lmm_pass(ds, groups, traits, y, genotypes, chrom_index, runs, union_sum, union_all, excluded_sum,
                  chromosome_sums, loco, batch_snps, dev, collected, say, clock)

    with clock("table"):
        table = _table(traits, collected, variants, groups, model)
    log = _log(ds, traits, covariates, covariate_names, model, loco, settings, n_cohort, n_snps, groups,
               table, missing)
    if model == "lmm":
        for group in groups:
            for j, null in zip(group.traits, group.null_models, strict=True):
                log["traits"][traits[j]].update(
                    {"pve": null.pve, "lambda_null": null.lambda_, "vg": null.vg, "ve": null.ve,
                     "logl_null": null.logl, "kinship_snps": int(group.kinship_snps)})
    return GwasResult(table=table, log=log, timings=dict(clock.seconds))


def _add_kinship(block, groups, start, stop, chrom_index, store_by_chromosome, union_sum, chromosome_sums,
                 excluded_sum) -> None:
    """Add one block's centred outer products to the kinship sums (whole genome, per chromosome, and the
    SNPs that some patterns exclude)."""
    union = np.zeros(stop - start, dtype=bool)
    for group in groups:
        union |= group.passed[start:stop]
    centred = centred_genotypes(block)
    if store_by_chromosome:
        for ci, s in chromosome_kinship_sums(centred[:, union], chrom_index[start:stop][union]).items():
            chromosome_sums[ci] = chromosome_sums.get(ci, 0) + s
            union_sum += s
    else:
        part = centred[:, union]
        union_sum += part @ part.T
    for gi, group in enumerate(groups):
        out = union & ~group.passed[start:stop]
        if out.any():
            part = centred[:, out]
            excluded_sum[gi] = excluded_sum.get(gi, 0) + part @ part.T


def _lmm_pass(ds, groups, traits, y, genotypes, chrom_index, runs, union_sum, union_all, excluded_sum,
              chromosome_sums, loco, batch_snps, dev, collected, say, clock) -> None:
    """Pass 2 of the LMM: kinship per pattern (and chromosome), eigendecomposition, rotated tests."""
    full_sums = []
    for gi, group in enumerate(groups):
        full_sums.append(union_sum - excluded_sum[gi] if gi in excluded_sum else union_sum)
        group.kinship_snps = int(group.passed.sum())
        if group.kinship_snps == 0:
            raise InputError(ds.url, f"no SNP passes the filters for trait {traits[group.traits[0]]!r}")
    scopes = list(enumerate(runs.values())) if loco else [(None, [(0, ds.n_variants)])]
    for ci, chromosome_runs in scopes:
        fitted = []
        for gi, group in enumerate(groups):
            total, m_total = full_sums[gi], group.kinship_snps
            if ci is not None:
                with clock("kinship"):
                    part, m_part = _chromosome_part(genotypes, group, chrom_index, ci, chromosome_runs,
                                                    chromosome_sums, union_all, batch_snps)
                if m_part == m_total:
                    raise InputError(ds.url, f"chromosome {list(runs)[ci]!r} holds every SNP; LOCO needs "
                                     "at least two chromosomes")
                kinship = loco_kinship(total, m_total, part, m_part)
            else:
                kinship = total / m_total
            sub = np.flatnonzero(group.mask)
            kinship = double_centre(kinship[np.ix_(sub, sub)])
            say(f"eigendecomposition ({len(sub)} individuals"
                + (f", chromosome {list(runs)[ci]} left out)" if ci is not None else ")"))
            with clock("eigen"):
                pattern = LmmPattern(kinship, group.covariates, y[group.mask][:, group.traits], device=dev)
            if ci is not None and not (group.passed & (chrom_index == ci)).any():
                fitted.append(None)  # nothing of this chromosome to test for these traits
                continue
            if ci is None:
                with clock("null"):
                    group.null_models = pattern.null
            elif not group.null_models:
                # The null model reported for LOCO is the one with the full kinship, as in the log of a GEMMA
                # run without -loco; computed once.
                with clock("eigen"):
                    full = LmmPattern(double_centre((total / m_total)[np.ix_(sub, sub)]), group.covariates,
                                      y[group.mask][:, group.traits], device=dev)
                with clock("null"):
                    group.null_models = full.null
            fitted.append(pattern)
        for start, stop in _batches(chromosome_runs, batch_snps):
            block = genotypes.block(start, stop)
            for group, pattern in zip(groups, fitted, strict=True):
                if pattern is None:
                    continue
                keep = np.flatnonzero(group.passed[start:stop])
                if keep.size == 0:
                    continue
                x = mean_impute(block[group.mask][:, keep], 2.0 * group.af[start + keep])
                for j, res in zip(group.traits, pattern.scan(x, clock), strict=True):
                    collected[j].append({"index": start + keep, "beta": res.beta, "se": res.se, "p": res.p,
                                         "l_remle": res.lambda_, "logl_H1": res.logl})


def _chromosome_part(genotypes, group, chrom_index, ci, chromosome_runs, chromosome_sums, union_all,
                     batch_snps) -> tuple[np.ndarray, int]:
    """Unscaled kinship of one chromosome's SNPs that pass this pattern's filters, and their count."""
    mask = chrom_index == ci
    m_part = int((group.passed & mask).sum())
    n_cohort = int(genotypes.cohort.sum())
    if ci in chromosome_sums and not ((union_all & ~group.passed) & mask).any():
        return chromosome_sums[ci], m_part
    part = np.zeros((n_cohort, n_cohort))
    for start, stop in _batches(chromosome_runs, batch_snps):
        keep = group.passed[start:stop]
        if keep.any():
            part += kinship_sum(genotypes.block(start, stop)[:, keep].astype(np.float64))
    return part, m_part


def _table(traits, collected, variants: pd.DataFrame, groups, model: str) -> pd.DataFrame:
    frames = []
    group_of = {j: g for g in groups for j in g.traits}
    for j, name in enumerate(traits):
        parts = collected[j]
        group = group_of[j]
        if parts:
            merged = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
        else:
            keys = ["index", "beta", "se", "p"] + (["l_remle", "logl_H1"] if model == "lmm" else [])
            merged = {key: np.zeros(0, dtype=np.int64 if key == "index" else np.float64) for key in keys}
        order = np.argsort(merged["index"], kind="stable")
        index = merged["index"][order]
        frame = pd.DataFrame({
            "trait": name,
            "snp": variants["id"].to_numpy()[index],
            "chr": variants["chr"].astype(str).to_numpy()[index],
            "pos": pd.array(variants["pos"].to_numpy()[index], dtype="Int64"),
            "n": np.full(len(index), int(group.mask.sum()), dtype=np.int64),
            "n_miss": group.n_miss[index],
            "af": group.af[index],
            "beta": merged["beta"][order],
            "se": merged["se"][order],
            "p": merged["p"][order],
        })
        if model == "lmm":
            frame["l_remle"] = merged["l_remle"][order]
            frame["logl_H1"] = merged["logl_H1"][order]
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True)
    table["trait"] = table["trait"].astype(str)
    return table


def _log(ds, traits, covariates, covariate_names, model, loco, settings, n_cohort, n_snps, groups,
         table, missing) -> dict[str, Any]:
    per_trait: dict[str, Any] = {}
    counts = table.groupby("trait", sort=False).size()
    for group in groups:
        dropped = {reason: int((group.reason == i + 1).sum()) for i, reason in enumerate(snp_filters.REASONS)}
        for j in group.traits:
            per_trait[traits[j]] = {
                "individuals_analysed": int(group.mask.sum()),
                "individuals_missing_trait_or_covariate": int(n_cohort - group.mask.sum()),
                "snps_analysed": int(counts.get(traits[j], 0)),
                "snps_dropped": dropped,
            }
    return {
        "dataset": ds.url,
        "model": model,
        "loco": bool(loco),
        "missing_phenotypes": missing,
        "traits": {name: per_trait[name] for name in traits},
        "covariates": list(covariates),
        "covariate_columns": ["intercept", *covariate_names],
        "individuals_in_cohort": int(n_cohort),
        "snps_in_dataset": int(n_snps),
        "filters": {"max_missing": settings.max_missing, "min_maf": settings.min_maf,
                    "max_r2": settings.max_r2},
        "rows": len(table),
    }
