"""Does the synthetic cohort reproduce the real GWAS? Hit- and locus-level agreement of two GWAS tables.

Both tables follow the ``genosynth gwas`` contract: one row per (trait, SNP) with columns
``trait snp chr pos af beta se p``. The real table is the GWAS of ``prep/cohort`` (every QC'd real
individual: the synthetic cohort has that size); the synthetic one the GWAS of ``synthetic/`` (same SNPs,
same traits).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from genosynth.genetics.scan import lambda_gc

GENOME_WIDE_P = 1e-8
SUGGESTIVE_P = 1e-5
BONFERRONI_ALPHA = 0.05
LOCUS_WINDOW_BP = 5_000_000


@dataclass(frozen=True)
class Locus:
    """A run of hits on one chromosome whose neighbours are at most the merge window apart.

    SNPs without a base-pair position form single-SNP loci keyed by their id (``start``/``stop`` None).
    """

    chrom: str
    start: int | None
    stop: int | None
    snps: tuple[str, ...]

    def overlaps(self, other: Locus, pad: int) -> bool:
        """True when both loci lie on one chromosome and their ``pad``-widened intervals intersect."""
        if self.chrom != other.chrom:
            return False
        if self.start is None or other.start is None:
            return bool(set(self.snps) & set(other.snps))
        return self.start - pad <= other.stop + pad and other.start - pad <= self.stop + pad


def thresholds_for(n_snps: int) -> dict[str, float]:
    """The three significance thresholds, keyed by the labels used in ``metrics.json``."""
    return {
        "1e-8": GENOME_WIDE_P,
        "bonferroni": BONFERRONI_ALPHA / max(n_snps, 1),
        "1e-5": SUGGESTIVE_P,
    }


def neglog10(p: np.ndarray) -> np.ndarray:
    """``-log10 p`` with p = 0 mapped to the smallest positive double (so it stays finite)."""
    p = np.asarray(p, dtype=np.float64)
    return -np.log10(np.clip(p, np.finfo(np.float64).tiny, 1.0))


def merge_loci(
    chrom: np.ndarray, pos: np.ndarray, snp: np.ndarray, window: int = LOCUS_WINDOW_BP
) -> list[Locus]:
    """Merge hits into loci: sorted by position, a hit more than ``window`` bp after the previous one starts
    a new locus.

    Parameters
    ----------
    chrom, snp : (h,) str
        Chromosome and SNP id of each hit.
    pos : (h,) float
        Base-pair position, NaN where unknown (such hits become single-SNP loci).
    """
    loci: list[Locus] = []
    frame = pd.DataFrame({"chr": np.asarray(chrom, dtype=str), "pos": np.asarray(pos, dtype=np.float64),
                          "snp": np.asarray(snp, dtype=str)})
    for chrom_name, group in frame.groupby("chr", sort=True):
        placed = group[np.isfinite(group["pos"])].sort_values(["pos", "snp"])
        current: list[tuple[int, str]] = []
        for position, snp_id in zip(placed["pos"].astype(np.int64), placed["snp"], strict=True):
            if current and position - current[-1][0] > window:
                loci.append(_locus(str(chrom_name), current))
                current = []
            current.append((int(position), str(snp_id)))
        if current:
            loci.append(_locus(str(chrom_name), current))
        for snp_id in sorted(group.loc[~np.isfinite(group["pos"]), "snp"]):
            loci.append(Locus(str(chrom_name), None, None, (str(snp_id),)))
    return loci


def _locus(chrom: str, hits: list[tuple[int, str]]) -> Locus:
    return Locus(chrom, hits[0][0], hits[-1][0], tuple(s for _, s in hits))


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else math.nan


def _f1(precision: float, recall: float) -> float:
    if math.isnan(precision) or math.isnan(recall):
        return math.nan
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def hit_agreement(
    real: pd.DataFrame, synthetic: pd.DataFrame, threshold: float, window: int = LOCUS_WINDOW_BP
) -> dict[str, Any]:
    """SNP- and locus-level agreement of the hits of one trait at one threshold.

    Parameters
    ----------
    real, synthetic : DataFrame
        One trait's rows aligned on the same SNPs (columns ``snp chr pos beta p``), same row order.
    threshold : float
        A SNP is a hit when ``p <= threshold``.

    Returns
    -------
    dict
        ``hits_real hits_synthetic true_positives precision recall f1`` (SNP level; precision is NaN when
        the synthetic GWAS has no hit, recall NaN when the real one has none), ``loci_real loci_synthetic
        locus_precision locus_recall`` (hits merged within ``window`` bp; a synthetic locus is real when
        it lies within ``window`` bp of a real locus, the same rule that merges hits), and ``beta_slope``:
        the least-squares slope through the origin of synthetic on real effect sizes over the real hits
        (1 means effects of the same size; NaN without real hits), and ``sign_agreement``: the share of
        real hits whose synthetic effect has the real sign.
    """
    real_hit = real["p"].to_numpy(dtype=np.float64) <= threshold
    synth_hit = synthetic["p"].to_numpy(dtype=np.float64) <= threshold
    both = int(np.sum(real_hit & synth_hit))
    precision = _ratio(both, int(synth_hit.sum()))
    recall = _ratio(both, int(real_hit.sum()))

    chrom = real["chr"].astype(str).to_numpy()
    pos = pd.to_numeric(real["pos"], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    snp = real["snp"].astype(str).to_numpy()
    real_loci = merge_loci(chrom[real_hit], pos[real_hit], snp[real_hit], window)
    synth_loci = merge_loci(chrom[synth_hit], pos[synth_hit], snp[synth_hit], window)
    pad = window // 2
    synth_true = sum(any(s.overlaps(r, pad) for r in real_loci) for s in synth_loci)
    real_found = sum(any(r.overlaps(s, pad) for s in synth_loci) for r in real_loci)

    beta_real = real["beta"].to_numpy(dtype=np.float64)[real_hit]
    beta_synth = synthetic["beta"].to_numpy(dtype=np.float64)[real_hit]
    usable = np.isfinite(beta_real) & np.isfinite(beta_synth)
    denominator = float(np.sum(beta_real[usable] ** 2))
    slope = math.nan
    if denominator > 0:
        slope = float(np.sum(beta_real[usable] * beta_synth[usable]) / denominator)
    signs = np.sign(beta_real[usable]) == np.sign(beta_synth[usable])
    sign_agreement = float(signs.mean()) if signs.size else math.nan
    return {
        "p_threshold": threshold,
        "hits_real": int(real_hit.sum()),
        "hits_synthetic": int(synth_hit.sum()),
        "true_positives": both,
        "precision": precision,
        "recall": recall,
        "f1": _f1(precision, recall),
        "loci_real": len(real_loci),
        "loci_synthetic": len(synth_loci),
        "loci_synthetic_real": int(synth_true),
        "loci_real_recovered": int(real_found),
        "locus_precision": _ratio(synth_true, len(synth_loci)),
        "locus_recall": _ratio(real_found, len(real_loci)),
        "beta_slope": slope,
        "sign_agreement": sign_agreement,
    }


def lambda_by_chromosome(real: pd.DataFrame, synthetic: pd.DataFrame) -> dict[str, dict[str, float]]:
    """lambda_GC of each chromosome, real and synthetic; inputs aligned as by :func:`align_trait`.

    Returns
    -------
    ``{chromosome: {"real", "synthetic", "delta"}}`` in the tables' chromosome order.
    """
    chrom = real["chr"].astype(str).to_numpy()
    p_real, p_synth = real["p"].to_numpy(dtype=np.float64), synthetic["p"].to_numpy(dtype=np.float64)
    out = {}
    for name in pd.unique(chrom):
        here = chrom == name
        lr, ls = lambda_gc(p_real[here]), lambda_gc(p_synth[here])
        out[str(name)] = {"real": lr, "synthetic": ls, "delta": ls - lr}
    return out


def align_trait(real: pd.DataFrame, synthetic: pd.DataFrame, trait: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows of ``trait`` in both tables, restricted to SNPs analysed in both and in the real table's order."""
    r = real[real["trait"].astype(str) == trait].drop_duplicates("snp").set_index("snp", drop=False)
    s = synthetic[synthetic["trait"].astype(str) == trait].drop_duplicates("snp").set_index("snp", drop=False)
    common = r.index[r.index.isin(s.index)]
    return r.loc[common].reset_index(drop=True), s.loc[common].reset_index(drop=True)


def trait_agreement(
    real: pd.DataFrame, synthetic: pd.DataFrame, window: int = LOCUS_WINDOW_BP
) -> dict[str, Any]:
    """All association metrics of one trait; inputs as returned by :func:`align_trait`.

    ``n_snps`` (the SNPs tested in both) sets the Bonferroni threshold 0.05 / m. Besides the per-threshold
    agreement: r of -log10 p over all SNPs, top -log10 p, lambda_GC overall and per chromosome, and the
    effect slope and sign agreement over the real Bonferroni hits.
    """
    p_real = real["p"].to_numpy(dtype=np.float64)
    p_synth = synthetic["p"].to_numpy(dtype=np.float64)
    lp_real, lp_synth = neglog10(p_real), neglog10(p_synth)
    finite = np.isfinite(p_real) & np.isfinite(p_synth)
    correlation = math.nan
    if finite.sum() > 2 and np.std(lp_real[finite]) > 0 and np.std(lp_synth[finite]) > 0:
        correlation = float(np.corrcoef(lp_real[finite], lp_synth[finite])[0, 1])
    bonferroni = hit_agreement(real, synthetic, thresholds_for(len(real))["bonferroni"], window)
    top_real = float(np.max(lp_real[np.isfinite(p_real)], initial=0.0))
    top_synth = float(np.max(lp_synth[np.isfinite(p_synth)], initial=0.0))
    lambda_real, lambda_synth = lambda_gc(p_real), lambda_gc(p_synth)
    return {
        "n_snps": len(real),
        "neglog10p_correlation": correlation,
        "top_neglog10p_real": top_real,
        "top_neglog10p_synthetic": top_synth,
        "top_neglog10p_ratio": _ratio(top_synth, top_real),
        "lambda_gc_real": lambda_real,
        "lambda_gc_synthetic": lambda_synth,
        "lambda_gc_delta": lambda_synth - lambda_real,
        "lambda_gc_by_chromosome": lambda_by_chromosome(real, synthetic),
        "effect_slope_real_hits": bonferroni["beta_slope"],
        "effect_sign_agreement_real_hits": bonferroni["sign_agreement"],
        "thresholds": {
            label: hit_agreement(real, synthetic, threshold, window)
            for label, threshold in thresholds_for(len(real)).items()
        },
    }


def association_metrics(
    real: pd.DataFrame, synthetic: pd.DataFrame, window: int = LOCUS_WINDOW_BP
) -> dict[str, Any]:
    """Association metrics of every trait present in both GWAS tables, keyed by trait."""
    traits = [t for t in pd.unique(real["trait"].astype(str)) if t in set(synthetic["trait"].astype(str))]
    return {trait: trait_agreement(*align_trait(real, synthetic, trait), window=window) for trait in traits}
