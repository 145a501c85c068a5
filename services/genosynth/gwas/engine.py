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
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import torch

from genosynth.errors import InputError
from genosynth.formats.dataset import Dataset
from genosynth.genetics import chromosomes
from genosynth.genetics.covariates import category_levels, indicator_coding, with_intercept
from genosynth.genetics.device import cpu_threads, fixed_threads, pick_device
from genosynth.genetics.dosages import centre, mean_impute
from genosynth.genetics.kinship import centred_genotypes, double_centre
from genosynth.genetics.reml import eigendecompose_many
from genosynth.gwas import filters as snp_filters
from genosynth.gwas.linear import linear_regression
from genosynth.gwas.lmm import LmmPattern, NullModel

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
        self.every_sample = bool(cohort.all())
        self.filled = 0

    def blocks(self, ranges: Iterable[tuple[int, int]]) -> Iterator[tuple[tuple[int, int], np.ndarray]]:
        """:meth:`block` of each ``(start, stop)`` in order, the next one read and decoded on a second
        thread while the caller works on the current one (decompression releases the GIL; the ``read``
        phase then overlaps the others)."""
        todo = list(ranges)
        if not todo:
            return
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(self.block, *todo[0])
            for i, span in enumerate(todo):
                block = pending.result()
                if i + 1 < len(todo):
                    pending = pool.submit(self.block, *todo[i + 1])
                yield span, block

    def block(self, start: int, stop: int) -> np.ndarray:
        """(n_cohort, stop - start) float32 dosages, NaN for missing."""
        with self.clock("read"):
            if self.kept is not None and stop <= self.filled:
                return self.kept[:, start:stop]
            block = self.ds.dosages(start, stop)
            if not self.every_sample:
                block = block[self.cohort]
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
    null_models: list[NullModel] = field(default_factory=list)

    @property
    def passed(self) -> np.ndarray:
        return self.reason == 0

    def rows_before(self, start: int) -> int:
        """Rows of the pattern's traits before SNP ``start``: its SNPs before it that pass the filters."""
        return int(np.count_nonzero(self.reason[:start] == 0))

    @cached_property
    def _every_row(self) -> bool:
        return bool(self.mask.all())

    def rows_of(self, block: np.ndarray) -> np.ndarray:
        """The pattern's individuals of a cohort block: the block itself when it analyses everyone."""
        return block if self._every_row else block[self.mask]


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


@dataclass(frozen=True)
class _Options:
    """What to run, validated: the arguments of :func:`run_gwas` past the dataset."""

    traits: list[str]
    covariates: list[str]
    model: str
    loco: bool
    missing: str
    settings: snp_filters.FilterSettings
    batch_snps: int
    device: torch.device
    max_kinship_bytes: int
    max_genotype_bytes: int
    threads: int

    @classmethod
    def check(cls, ds: Dataset, traits: Sequence[str], covariates: Sequence[str], model: str, loco: bool,
              missing: str, settings: snp_filters.FilterSettings | None, batch_snps: int,
              device: torch.device | str | None, max_kinship_bytes: int, max_genotype_bytes: int,
              threads: int) -> _Options:
        if model not in MODELS:
            raise InputError(ds.url, f"unknown model {model!r}; expected one of {', '.join(MODELS)}")
        if loco and model != "lmm":
            raise InputError(ds.url, "--loco needs the lmm model")
        traits = list(traits)
        if not traits:
            raise InputError(ds.url, "no trait to test")
        if len(set(traits)) != len(traits):
            raise InputError(ds.url, "a trait is named twice")
        if missing not in ("per-trait", "any"):
            raise InputError(ds.url, f"unknown missing-phenotype rule {missing!r}; expected per-trait or any")
        return cls(traits=traits, covariates=list(covariates), model=model, loco=bool(loco), missing=missing,
                   settings=settings or snp_filters.FilterSettings(), batch_snps=batch_snps,
                   device=pick_device(device),
                   max_kinship_bytes=max_kinship_bytes, max_genotype_bytes=max_genotype_bytes,
                   threads=threads)


@dataclass
class _Chromosomes:
    """``runs``: SNP index runs of each chromosome label, in order of first appearance; ``index`` (M,): the
    position of each SNP's chromosome in ``runs``."""

    runs: dict[str, list[tuple[int, int]]]
    index: np.ndarray

    @classmethod
    def of(cls, chrom: np.ndarray) -> _Chromosomes:
        runs = _chromosome_runs(chrom)
        position = {name: i for i, name in enumerate(runs)}
        return cls(runs=runs, index=np.array([position[str(v)] for v in chrom], dtype=np.int64))

    @property
    def names(self) -> list[str]:
        return list(self.runs)


@dataclass
class _KinshipSums:
    """Unscaled kinship sums (R, R) over the analysed rows of the cohort (:attr:`_Run.kinship_rows`) from
    pass 1: ``union`` over the SNPs that pass some
    pattern's filters, ``excluded[g]`` over those of them that pattern g drops, and ``by_chromosome[c]``
    (LOCO, when they fit) the part of ``union`` from chromosome c."""

    union: np.ndarray
    excluded: dict[int, np.ndarray] = field(default_factory=dict)
    by_chromosome: dict[int, np.ndarray] = field(default_factory=dict)
    store_by_chromosome: bool = False

    def of_pattern(self, gi: int) -> np.ndarray:
        """The sum over the SNPs that pattern ``gi`` keeps."""
        return self.union - self.excluded[gi] if gi in self.excluded else self.union


class _Collected:
    """Per-trait estimates written in place as the batches are tested.

    Trait ``j`` is tested on the SNPs its pattern's filters pass, so its rows are those SNPs in genome
    order and a batch's results go to the rows from the count of passing SNPs before the batch. Once the
    row counts are known (:meth:`lay_out`, before the LMM pass) results go straight into the table's
    columns; before that (the linear model, tested in the filter pass) each trait holds one float64
    array of length M per field. No per-batch pieces: they would fragment the heap and keep the memory of
    many traits after being joined.
    """

    def __init__(self, n_traits: int, n_snps: int) -> None:
        self.n_snps = n_snps
        self.by_trait: dict[int, dict[str, np.ndarray]] = {}
        self.offsets: np.ndarray | None = None
        self.columns: dict[str, np.ndarray] = {}
        self.filled = np.zeros(n_traits, dtype=np.int64)

    def lay_out(self, sizes: list[int], keys: list[str]) -> None:
        """From now on write into one column per field: trait ``j`` has ``sizes[j]`` rows."""
        self.offsets = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)])
        self.columns = {key: np.empty(int(self.offsets[-1])) for key in keys}

    def add(self, trait: int, row: int, **columns: np.ndarray) -> None:
        """Store the results of consecutive rows ``row, row + 1, ...`` of ``trait``."""
        if self.offsets is not None:
            store, row = self.columns, row + int(self.offsets[trait])
        else:
            store = self.by_trait.get(trait)
            if store is None:
                store = self.by_trait[trait] = {key: np.empty(self.n_snps) for key in columns}
        size = 0
        for key, value in columns.items():
            store[key][row:row + len(value)] = value
            size = len(value)
        self.filled[trait] += size

    def column(self, key: str, sizes: list[int]) -> np.ndarray:
        """One field over every trait's rows (trait ``j`` has ``sizes[j]``), releasing what it joins."""
        if not np.array_equal(self.filled, sizes):
            raise RuntimeError(f"results for {self.filled.tolist()} rows, tested {list(sizes)}")
        if self.offsets is not None:
            return self.columns.pop(key)
        out = np.empty(int(sum(sizes)))
        at = 0
        for j, size in enumerate(sizes):
            if size:
                out[at:at + size] = self.by_trait[j].pop(key)[:size]
            at += size
        return out


@dataclass
class _Run:
    """The state one GWAS run threads through its passes."""

    ds: Dataset
    options: _Options
    y: np.ndarray  # (N, t) traits of the cohort, NaN where missing
    covariate_names: list[str]
    groups: list[_Pattern]
    genotypes: _Genotypes | None
    chromosomes: _Chromosomes
    collected: _Collected
    say: Callable[[str], None]
    clock: _Clock
    n_cohort: int

    @cached_property
    def kinship_rows(self) -> np.ndarray:
        """Cohort indices of the individuals some pattern analyses: the only rows of the kinship used.
        Missing calls are still imputed and centred on the whole cohort (GEMMA's kinship), but the outer
        products are taken over these rows only."""
        analysed = np.zeros(self.n_cohort, dtype=bool)
        for group in self.groups:
            analysed |= group.mask
        return np.flatnonzero(analysed)

    @cached_property
    def kinship_row_subset(self) -> np.ndarray | None:
        """:attr:`kinship_rows`, or None when that is the whole cohort (no row gather needed)."""
        return None if len(self.kinship_rows) == self.n_cohort else self.kinship_rows

    def trait_values(self, group: _Pattern) -> np.ndarray:
        """(n, t) the group's traits on its individuals."""
        return self.y[group.mask][:, group.traits]


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
        that nothing oversubscribes the cores and two runs with the same count give the same bytes; also
        the number of eigendecompositions run side by side (each on one thread).

    Returns
    -------
    GwasResult with the table (one row per trait and analysed SNP, in trait then genome order) and log.

    Examples
    --------
    >>> result = run_gwas("data/hs1940", ["trait1"], model="lmm")  # doctest: +SKIP
    >>> result.log["traits"]["trait1"]["pve"]  # doctest: +SKIP
    0.6088...
    """
    count = threads or cpu_threads()
    with fixed_threads(count):
        ds = dataset if isinstance(dataset, Dataset) else Dataset.open(dataset)
        options = _Options.check(ds, traits, covariates, model, loco, missing, settings, batch_snps, device,
                                 max_kinship_bytes, max_genotype_bytes, count)
        run = _prepare(ds, options, samples, progress or (lambda _msg: None))
        sums = _first_pass(run)
        if options.model == "lmm":
            _lmm_pass(run, sums)
        del sums
        run.genotypes = None  # the decoded dosages are not needed for the table
        with run.clock("table"):
            table = _table(run)
        log = _log(run, table)
        return GwasResult(table=table, log=log, timings=dict(run.clock.seconds))


def _prepare(ds: Dataset, options: _Options, samples, say: Callable[[str], None]) -> _Run:
    """Cohort, design and the patterns of individuals (traits observed on the same individuals)."""
    clock = _Clock()
    cohort = _cohort(ds, samples)
    y, c, covariate_names = _design(ds, options.traits, options.covariates, cohort)
    groups = _patterns(ds, options, y, c, covariate_names)
    chrom = ds.variants["chr"].astype(str).to_numpy()
    return _Run(ds=ds, options=options, y=y, covariate_names=covariate_names, groups=groups,
                # The linear model reads the genotypes once: nothing to keep for a second pass.
                genotypes=_Genotypes(ds, cohort, options.max_genotype_bytes if options.model == "lmm" else 0,
                                     clock),
                chromosomes=_Chromosomes.of(chrom), collected=_Collected(len(y.T), ds.n_variants),
                say=say, clock=clock, n_cohort=int(cohort.sum()))


def _patterns(ds: Dataset, options: _Options, y: np.ndarray, c: np.ndarray,
              covariate_names: list[str]) -> list[_Pattern]:
    """Group the traits by their analysed individuals (trait and every covariate observed; with
    ``missing="any"`` every trait observed), checking each design."""
    n_snps = ds.n_variants
    covariates_observed = ~np.isnan(c).any(axis=1)
    if options.missing == "any":
        covariates_observed &= ~np.isnan(y).any(axis=1)
    patterns: dict[bytes, _Pattern] = {}
    for j, name in enumerate(options.traits):
        mask = ~np.isnan(y[:, j]) & covariates_observed
        n = int(mask.sum())
        design = with_intercept(c[mask])
        if n <= design.shape[1] + 1:
            raise InputError(ds.url, f"trait {name!r}: {n} individuals with the trait and covariates "
                             f"observed, need more than {design.shape[1] + 1}", column=name)
        if np.linalg.matrix_rank(design) < design.shape[1]:
            raise InputError(ds.url, f"covariates {', '.join(covariate_names)} are collinear with the "
                             f"intercept on the individuals of trait {name!r}", column=name)
        key = mask.tobytes()
        if key not in patterns:
            patterns[key] = _Pattern(mask=mask, traits=[], covariates=design,
                                     reason=np.zeros(n_snps, dtype=np.int8), af=np.full(n_snps, np.nan),
                                     n_miss=np.zeros(n_snps, dtype=np.int64))
        patterns[key].traits.append(j)
    return list(patterns.values())


def _first_pass(run: _Run) -> _KinshipSums | None:
    """Pass 1 over the genotypes: filters per pattern, the linear model, and (lmm) the kinship sums."""
    options, n_rows = run.options, len(run.kinship_rows)
    lmm = options.model == "lmm"
    store = options.loco and len(run.chromosomes.runs) * n_rows * n_rows * 8 <= options.max_kinship_bytes
    sums = _KinshipSums(union=np.zeros((n_rows, n_rows)), store_by_chromosome=store) if lmm else None
    run.say("reading genotypes: filters" + (" and kinship" if lmm else " and tests"))
    # float32 blocks as stored (each consumer converts what it uses), the next one decoded meanwhile
    for (start, stop), block in run.genotypes.blocks(_batches([(0, run.ds.n_variants)], options.batch_snps)):
        for group in run.groups:
            with run.clock("filters"):
                stats = snp_filters.snp_filters(group.rows_of(block), group.covariates, options.settings)
            group.reason[start:stop] = stats.reason
            group.af[start:stop] = stats.af
            group.n_miss[start:stop] = stats.n_miss
            if not lmm:
                _linear_batch(run, group, block, start, stats)
        if lmm:
            with run.clock("kinship"):
                _add_kinship(run, sums, block, start, stop)
    return sums


def _linear_batch(run: _Run, group: _Pattern, block: np.ndarray, start: int, stats) -> None:
    """The linear model of the group's traits on the SNPs of one batch that pass its filters."""
    keep = np.flatnonzero(stats.passed)
    if keep.size == 0:
        return
    with run.clock("lm"):
        # Every column of the block is regressed (a column gather costs more than the few SNPs that
        # fail); only the SNPs that pass are kept.
        # Centred on 2 af (the mean of the imputed column) in one pass, imputed calls at exactly 0.
        x = centre(group.rows_of(block), np.nan_to_num(2.0 * stats.af), dtype=np.float64)
        fit = linear_regression(x, group.covariates, run.trait_values(group), centred=True)
    for k, j in enumerate(group.traits):
        run.collected.add(j, group.rows_before(start), beta=fit.beta[keep, k], se=fit.se[keep, k],
                          p=fit.p[keep, k])


def _add_kinship(run: _Run, sums: _KinshipSums, block: np.ndarray, start: int, stop: int) -> None:
    """Add one block's centred outer products to the kinship sums (whole genome, per chromosome, and the
    SNPs that some patterns exclude)."""
    union = np.zeros(stop - start, dtype=bool)
    for group in run.groups:
        union |= group.passed[start:stop]
    centred, cols = _centred_kept(block, union, run.kinship_row_subset)
    if sums.store_by_chromosome:
        chrom_index = run.chromosomes.index[start:stop][cols]
        for ci in np.unique(chrom_index[union[cols]]):
            part = _columns(centred, np.flatnonzero(chrom_index == ci))
            s = part @ part.T
            sums.by_chromosome[ci] = sums.by_chromosome.get(ci, 0) + s
            sums.union += s
    else:
        sums.union += centred @ centred.T
    for gi, group in enumerate(run.groups):
        out = (union & ~group.passed[start:stop])[cols]
        if out.any():
            part = centred[:, out]
            sums.excluded[gi] = sums.excluded.get(gi, 0) + part @ part.T


def _centred_kept(block: np.ndarray, keep: np.ndarray,
                  rows: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """GEMMA's centred dosages (r, k) of the SNPs ``keep`` (m,) selects, for outer products, and their
    columns (k,) in ``block``.

    When most SNPs are kept, every column is returned with the others set to 0 (they add nothing to an
    outer product, and a column gather of the block costs more than the few extra columns); otherwise the
    kept columns are gathered first.
    """
    if 2 * int(keep.sum()) >= keep.size:
        centred = centred_genotypes(block, rows)
        centred[:, ~keep] = 0.0
        return centred, np.arange(keep.size)
    cols = np.flatnonzero(keep)
    return centred_genotypes(block[:, cols], rows), cols


def _columns(values: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``values[:, cols]`` for sorted ``cols``: a view when they are one contiguous run (the SNPs of one
    chromosome in a block), so that ``part @ part.T`` needs no copy."""
    if cols.size and cols[-1] - cols[0] + 1 == cols.size:
        return values[:, cols[0]:cols[-1] + 1]
    return values[:, cols]


@dataclass(frozen=True)
class _Scope:
    """One kinship to decompose: a pattern (index into the groups) with chromosome ``left_out`` left out
    (None: the whole genome); ``for_null``: only for the null model that LOCO reports."""

    group: int
    left_out: int | None
    for_null: bool = False


def _lmm_pass(run: _Run, sums: _KinshipSums) -> None:
    """Pass 2 of the LMM: kinship per pattern and scope, eigendecompositions (several at once, each on one
    thread), rotated tests."""
    for group in run.groups:
        group.kinship_snps = int(group.passed.sum())
        if group.kinship_snps == 0:
            name = run.options.traits[group.traits[0]]
            raise InputError(run.ds.url, f"no SNP passes the filters for trait {name!r}")
    run.collected.lay_out(_sizes(run), _result_keys(run))
    scopes = _scopes(run)
    # Decompose `threads` kinships side by side, then test with each: the cores are used by the
    # eigendecompositions (one thread each) and by the GEMMs of the tests, and at most `threads`
    # decompositions are held at once.
    width = max(1, run.options.threads)
    for lo in range(0, len(scopes), width):
        chunk = scopes[lo:lo + width]
        with run.clock("kinship"):
            kinships = [_scope_kinship(run, sums, scope) for scope in chunk]
        labels = ", ".join(f"chromosome {run.chromosomes.names[s.left_out]} left out" for s in chunk
                           if s.left_out is not None)
        run.say(f"eigendecomposition of {len(chunk)} kinship(s)" + (f" ({labels})" if labels else ""))
        with run.clock("eigen"):
            eigens = eigendecompose_many(kinships, run.options.device, width)
        del kinships
        for scope, eigen in zip(chunk, eigens, strict=True):
            group = run.groups[scope.group]
            with run.clock("eigen"):
                pattern = LmmPattern(eigen, group.covariates, run.trait_values(group),
                                     device=run.options.device)
            if scope.left_out is None:
                with run.clock("null"):
                    group.null_models = pattern.null
            if not scope.for_null:
                _test_scope(run, group, pattern, scope.left_out)


def _scopes(run: _Run) -> list[_Scope]:
    """Every kinship the run decomposes, in testing order. With LOCO, the null model reported is the one
    with the full kinship (as in the log of a GEMMA run without -loco), and a chromosome without a tested
    SNP for a pattern is skipped."""
    if not run.options.loco:
        return [_Scope(gi, None) for gi in range(len(run.groups))]
    scopes = [_Scope(gi, None, for_null=True) for gi in range(len(run.groups))]
    for ci in range(len(run.chromosomes.runs)):
        on_chromosome = run.chromosomes.index == ci
        for gi, group in enumerate(run.groups):
            if (group.passed & on_chromosome).any():
                scopes.append(_Scope(gi, ci))
    return scopes


def _scope_kinship(run: _Run, sums: _KinshipSums, scope: _Scope) -> np.ndarray:
    """The double-centred kinship of one scope on its pattern's individuals (n, n)."""
    group = run.groups[scope.group]
    total, m_total = sums.of_pattern(scope.group), group.kinship_snps
    if scope.left_out is None:
        kinship = total / m_total
    else:
        part, m_part = _chromosome_part(run, sums, scope)
        if m_part == m_total:
            raise InputError(run.ds.url, f"chromosome {run.chromosomes.names[scope.left_out]!r} holds every "
                             "SNP; LOCO needs at least two chromosomes")
        kinship = (total - part) / (m_total - m_part)
    sub = np.flatnonzero(group.mask[run.kinship_rows])
    return double_centre(kinship[np.ix_(sub, sub)])


def _chromosome_part(run: _Run, sums: _KinshipSums, scope: _Scope) -> tuple[np.ndarray, int]:
    """Unscaled kinship of one chromosome's SNPs that pass this pattern's filters, and their count.

    From the stored per-chromosome sum when there is one, less the few SNPs of that chromosome that other
    patterns keep and this one drops; else accumulated again from the genotypes."""
    group, ci = run.groups[scope.group], scope.left_out
    on_chromosome = run.chromosomes.index == ci
    m_part = int((group.passed & on_chromosome).sum())
    if ci in sums.by_chromosome:
        union_all = np.zeros_like(group.passed)
        for other in run.groups:
            union_all |= other.passed
        dropped = union_all & ~group.passed & on_chromosome
        stored = sums.by_chromosome[ci]
        return (stored - _outer_sum(run, dropped, ci) if dropped.any() else stored), m_part
    return _outer_sum(run, group.passed & on_chromosome, ci), m_part


def _outer_sum(run: _Run, snps: np.ndarray, ci: int) -> np.ndarray:
    """Centred outer-product sum (R, R) over the kinship rows of the SNPs selected by ``snps`` (M,) on
    chromosome ``ci``."""
    rows = run.kinship_rows
    part = np.zeros((len(rows), len(rows)))
    for start, stop in _batches(run.chromosomes.runs[run.chromosomes.names[ci]], run.options.batch_snps):
        keep = snps[start:stop]
        if keep.any():
            # Centred on the whole cohort (as GEMMA), then restricted to the kinship rows.
            centred, _ = _centred_kept(run.genotypes.block(start, stop), keep, run.kinship_row_subset)
            part += centred @ centred.T
    return part


def _test_scope(run: _Run, group: _Pattern, pattern: LmmPattern, left_out: int | None) -> None:
    """Rotated tests of the group's traits on the SNPs of the scope (the left-out chromosome, or all)."""
    runs = ([(0, run.ds.n_variants)] if left_out is None
            else run.chromosomes.runs[run.chromosomes.names[left_out]])
    for start, stop in _batches(runs, run.options.batch_snps):
        keep = np.flatnonzero(group.passed[start:stop])
        if keep.size == 0:
            continue
        block = run.genotypes.block(start, stop)
        x = mean_impute(_columns(group.rows_of(block), keep), 2.0 * group.af[start + keep])
        for j, res in zip(group.traits, pattern.scan(x, run.clock), strict=True):
            run.collected.add(j, group.rows_before(start), beta=res.beta, se=res.se, p=res.p,
                              l_remle=res.lambda_, logl_H1=res.logl)


def _table(run: _Run) -> pd.DataFrame:
    """One row per (trait, analysed SNP), traits in order, SNPs in genome order.

    The table of many traits is the run's largest object, so each column is made once and nothing of
    its size is made beside it: numeric columns are filled in place trait by trait; the text columns
    are pyarrow arrays chunked by trait, taken from the variant table without a Python object per row,
    and traits of one pattern (the same SNPs) share their ``snp`` and ``chr`` chunks; the results are
    the columns the tests wrote into.
    """
    sizes = _sizes(run)
    total = int(sum(sizes))
    group_of = {j: g for g in run.groups for j in g.traits}
    variants = run.ds.variants
    pos = variants["pos"].astype("Int64")
    positions, no_position = pos.to_numpy(dtype=np.int64, na_value=0), pos.isna().to_numpy()
    snp_ids = pa.array(variants["id"].astype(str).tolist(), type=pa.large_string())
    chrom_names = pa.array(run.chromosomes.names, type=pa.large_string())
    trait_names = pa.array(list(run.options.traits), type=pa.large_string())
    numeric = {"pos": np.empty(total, dtype=np.int64), "n": np.empty(total, dtype=np.int64),
               "n_miss": np.empty(total, dtype=np.int64), "af": np.empty(total)}
    pos_missing = np.empty(total, dtype=bool)
    text: dict[str, list[pa.Array]] = {"trait": [], "snp": [], "chr": []}
    shared: dict[int, tuple[pa.Array, pa.Array]] = {}
    at = 0
    for j, size in enumerate(sizes):
        group = group_of[j]
        index = np.flatnonzero(group.passed)
        rows = slice(at, at + size)
        numeric["pos"][rows] = positions[index]
        pos_missing[rows] = no_position[index]
        numeric["n"][rows] = int(group.mask.sum())
        numeric["n_miss"][rows] = group.n_miss[index]
        numeric["af"][rows] = group.af[index]
        if id(group) not in shared:
            shared[id(group)] = (pc.take(snp_ids, pa.array(index)),
                                 pc.take(chrom_names, pa.array(run.chromosomes.index[index])))
        snp_chunk, chr_chunk = shared[id(group)]
        text["trait"].append(pc.take(trait_names, pa.array(np.full(size, j, dtype=np.int32))))
        text["snp"].append(snp_chunk)
        text["chr"].append(chr_chunk)
        at += size
    columns: dict[str, Any] = {name: _text(chunks) for name, chunks in text.items()}
    columns["pos"] = pd.arrays.IntegerArray(numeric.pop("pos"), pos_missing)  # no copy
    columns.update(numeric)
    for key in _result_keys(run):
        columns[key] = run.collected.column(key, sizes)
    order = ["trait", "snp", "chr", "pos", "n", "n_miss", "af", *_result_keys(run)]
    return pd.DataFrame({name: columns.pop(name) for name in order}, copy=False)


def _text(chunks: list[pa.Array]) -> pd.api.extensions.ExtensionArray:
    """Chunks of ``large_string`` as pandas' string column (no copy)."""
    return pd.array(pa.chunked_array(chunks, type=pa.large_string()), dtype="str")


def _result_keys(run: _Run) -> list[str]:
    return ["beta", "se", "p"] + (["l_remle", "logl_H1"] if run.options.model == "lmm" else [])


def _sizes(run: _Run) -> list[int]:
    """Rows of each trait in the table: the SNPs its pattern's filters pass."""
    group_of = {j: g for g in run.groups for j in g.traits}
    return [int(group_of[j].passed.sum()) for j in range(len(run.options.traits))]


def _log(run: _Run, table: pd.DataFrame) -> dict[str, Any]:
    options, groups, n_cohort = run.options, run.groups, run.n_cohort
    per_trait: dict[str, Any] = {}
    counts = dict(zip(options.traits, _sizes(run), strict=True))
    for group in groups:
        dropped = {reason: int((group.reason == i + 1).sum()) for i, reason in enumerate(snp_filters.REASONS)}
        for j, null in zip(group.traits, group.null_models or [None] * len(group.traits), strict=True):
            name = options.traits[j]
            per_trait[name] = {
                "individuals_analysed": int(group.mask.sum()),
                "individuals_missing_trait_or_covariate": int(n_cohort - group.mask.sum()),
                "snps_analysed": int(counts.get(name, 0)),
                "snps_dropped": dropped,
            }
            if null is not None:
                per_trait[name].update({"pve": null.pve, "lambda_null": null.lambda_, "vg": null.vg,
                                        "ve": null.ve, "logl_null": null.logl,
                                        "kinship_snps": int(group.kinship_snps)})
    return {
        "dataset": run.ds.url,
        "model": options.model,
        "loco": options.loco,
        "missing_phenotypes": options.missing,
        "traits": {name: per_trait[name] for name in options.traits},
        "covariates": list(options.covariates),
        "covariate_columns": ["intercept", *run.covariate_names],
        "individuals_in_cohort": int(n_cohort),
        "snps_in_dataset": int(run.ds.n_variants),
        "filters": {"max_missing": options.settings.max_missing, "min_maf": options.settings.min_maf,
                    "max_r2": options.settings.max_r2},
        "rows": len(table),
    }
