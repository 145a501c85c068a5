"""SNP batches (contiguous within a chromosome, with context) and phenotype column groups."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pandas as pd

from genosynth.genetics.chromosomes import chromosome_runs


def snp_runs(variants: pd.DataFrame, min_unpositioned: int = 50) -> list[tuple[str, int, int, bool]]:
    """Runs of consecutive SNPs on one chromosome, in SNP order: ``(chr, start, stop, positioned)``.

    A stretch of at least ``min_unpositioned`` SNPs without a position forms a run of its own (its LD
    with the neighbouring SNPs is unknown). Shorter stretches stay in place: variant tables list SNPs in
    genome order, so the file order (e.g. by genetic map) is the best guess of where they lie.
    """
    positioned = variants["pos"].notna().to_numpy()
    runs: list[tuple[str, int, int, bool]] = []
    for chrom, start, stop in chromosome_runs(variants["chr"].astype(str).to_numpy()):
        runs.extend(_split_unpositioned(chrom, start, stop, positioned, min_unpositioned))
    return runs


def _split_unpositioned(chrom: str, lo: int, hi: int, positioned: np.ndarray,
                        minimum: int) -> list[tuple[str, int, int, bool]]:
    flags = positioned[lo:hi]
    edges = [0, *(np.flatnonzero(np.diff(flags.astype(np.int8))) + 1).tolist(), hi - lo]
    cuts = [0]
    for a, b in itertools.pairwise(edges):
        if not flags[a] and b - a >= minimum:
            cuts.extend([a, b])
    cuts.append(hi - lo)
    cuts = sorted(set(cuts))
    return [(chrom, lo + a, lo + b, bool(flags[a:b].any())) for a, b in itertools.pairwise(cuts)]


def make_batches(
    variants: pd.DataFrame, batch_snps: int, context_snps: int | None = None,
) -> list[dict[str, Any]]:
    """Split each run into near-equal batches of at most ``batch_snps`` SNPs.

    ``context_start:context_stop`` widens a batch by ``context_snps`` SNPs on each side, clipped to its
    run, so a model sees the LD that continues across the batch's edges. ``run_start`` is the first SNP
    of the run (the chromosome start a path model restarts at).
    """
    if batch_snps < 1:
        raise ValueError(f"batch_snps must be >= 1, got {batch_snps}")
    context = max(16, batch_snps // 20) if context_snps is None else context_snps
    batches: list[dict[str, Any]] = []
    for chrom, lo, hi, positioned in snp_runs(variants):
        count = math.ceil((hi - lo) / batch_snps)
        edges = np.linspace(lo, hi, count + 1).round().astype(int)
        for start, stop in itertools.pairwise(edges):
            batches.append({
                "batch": len(batches), "chr": chrom, "start": int(start), "stop": int(stop),
                "context_start": int(max(lo, start - context)), "context_stop": int(min(hi, stop + context)),
                "run_start": int(lo), "positioned": positioned,
            })
    return batches


def encode_column(values: pd.Series) -> np.ndarray:
    """Numeric codes of one sample column (categories by order of appearance), NaN where missing."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return values.to_numpy(dtype=np.float64, na_value=np.nan)
    codes, _ = pd.factorize(values, sort=True)
    return np.where(codes < 0, np.nan, codes).astype(np.float64)


def rank_correlation(samples: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """Spearman correlation over pairwise-complete rows, ``(len(columns), len(columns))``."""
    encoded = pd.DataFrame({c: encode_column(samples[c]) for c in columns})
    corr = encoded.rank().corr(min_periods=3).to_numpy()
    corr = np.nan_to_num(corr)
    np.fill_diagonal(corr, 1.0)
    return corr


def phenotype_groups(samples: pd.DataFrame, columns: list[str], threshold: float = 0.3) -> list[list[str]]:
    """Columns linked by |rank correlation| >= ``threshold`` (transitively) form one group."""
    if not columns:
        return []
    linked = np.abs(rank_correlation(samples, columns)) >= threshold
    group = list(range(len(columns)))

    def root(i: int) -> int:
        while group[i] != i:
            group[i] = group[group[i]]
            i = group[i]
        return i

    for i, j in zip(*np.nonzero(np.triu(linked, 1)), strict=True):
        group[root(int(i))] = root(int(j))
    out: dict[int, list[str]] = {}
    for i, column in enumerate(columns):
        out.setdefault(root(i), []).append(column)
    return sorted(out.values(), key=lambda g: columns.index(g[0]))
