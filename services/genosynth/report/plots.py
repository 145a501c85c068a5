"""The report's figures, each a function from plain data to PNG bytes.

Figures are drawn on :class:`matplotlib.figure.Figure` objects (no pyplot global state, Agg canvas) and
saved without the software/date metadata, so the same inputs give byte-identical PNGs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure

from genosynth.genetics.relatedness import KING_DUPLICATE, KING_FIRST_DEGREE, KING_SECOND_DEGREE
from genosynth.plotting import genome_axis, png_bytes

REAL = "#1f4e79"        # real cohort: deep blue
REAL_LIGHT = "#6fa8dc"
SYNTH = "#b45309"       # synthetic cohort: burnt orange
SYNTH_LIGHT = "#f0a35e"
HOLDOUT = "#4d7c0f"     # holdout cohort: olive green
GRID = "#d9d9d9"
THRESHOLD_STYLES = {
    "1e-8": ("-", "p = 1e-8"), "bonferroni": ("--", "Bonferroni 0.05/m"), "1e-5": (":", "p = 1e-5"),
}
# Above this many points a scatter is thinned: all strong signals kept, weak ones sampled (deterministic).
MAX_POINTS = 60_000


def _style(ax) -> None:
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(True, color=GRID, linewidth=0.5, alpha=0.7)
    ax.set_axisbelow(True)


def _thin(neglog_p: np.ndarray, keep_above: float = 3.0) -> np.ndarray:
    """Indices to draw: every point above ``keep_above`` and an even sample of the rest."""
    strong = np.flatnonzero(neglog_p >= keep_above)
    weak = np.flatnonzero(neglog_p < keep_above)
    budget = max(MAX_POINTS - strong.size, 0)
    if weak.size > budget:
        weak = weak[np.linspace(0, weak.size - 1, budget).astype(np.int64)]
    return np.sort(np.concatenate([strong, weak]))


def mirrored_manhattan(real: pd.DataFrame, synthetic: pd.DataFrame, thresholds: dict[str, float],
                       trait: str) -> bytes:
    """Real -log10 p above the axis, synthetic below, on the same genome coordinate.

    Parameters
    ----------
    real, synthetic : DataFrame
        One trait's GWAS rows aligned on the same SNPs (columns ``chr pos p``).
    thresholds : dict
        Label -> p threshold (drawn as horizontal lines on both sides).
    """
    chrom = real["chr"].astype(str).to_numpy()
    pos = pd.to_numeric(real["pos"], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    x, blocks = genome_axis(chrom, pos)
    lp_real = -np.log10(np.clip(real["p"].to_numpy(float), 1e-300, 1))
    lp_synth = -np.log10(np.clip(synthetic["p"].to_numpy(float), 1e-300, 1))
    figure = Figure(figsize=(11, 4.6))
    ax = figure.add_subplot()
    block_index = np.zeros(len(x), dtype=np.int64)
    for b, (_, start, stop) in enumerate(blocks):
        block_index[(x >= start) & (x <= stop)] = b
        if b % 2 == 1:
            ax.axvspan(start, stop, color="#f3f3f3", zorder=0)
    for values, sign, colours in ((lp_real, 1, (REAL, REAL_LIGHT)), (lp_synth, -1, (SYNTH, SYNTH_LIGHT))):
        shown = _thin(np.nan_to_num(values))
        colour = np.where(block_index[shown] % 2 == 0, colours[0], colours[1])
        ax.scatter(x[shown], sign * values[shown], s=5, c=colour, linewidths=0, rasterized=False)
    for label, p in sorted(thresholds.items(), key=lambda item: item[1]):
        style, text = THRESHOLD_STYLES.get(label, ("-.", label))
        level = -math.log10(p)
        for sign in (1, -1):
            ax.axhline(sign * level, color="#7f1d1d", linestyle=style, linewidth=0.8,
                       label=text if sign == 1 else None)
    ax.axhline(0, color="#333333", linewidth=0.8)
    top = max(float(np.nanmax(lp_real, initial=1)), float(np.nanmax(lp_synth, initial=1)),
              -math.log10(min(thresholds.values(), default=1e-8))) * 1.08
    ax.set_ylim(-top, top)
    ticks = ax.get_yticks()
    ax.set_yticks(ticks)
    ax.set_yticklabels([f"{abs(t):g}" for t in ticks])
    ax.set_ylim(-top, top)
    ax.set_xticks([(start + stop) / 2 for _, start, stop in blocks])
    ax.set_xticklabels([name for name, _, _ in blocks], fontsize=7 if len(blocks) > 12 else 9)
    ax.set_xlim(blocks[0][1] - 1 if blocks else 0, blocks[-1][2] + 1 if blocks else 1)
    ax.set_xlabel("chromosome")
    ax.set_ylabel("-log10 p")
    ax.text(0.005, 0.97, "real (training cohort)", transform=ax.transAxes, va="top", color=REAL,
            fontweight="bold")
    ax.text(0.005, 0.03, "synthetic", transform=ax.transAxes, va="bottom", color=SYNTH, fontweight="bold")
    # Legend on the title line, clear of the data.
    ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=3, fontsize=8, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    ax.set_title(f"{trait}: mirrored Manhattan plot", loc="left")
    figure.tight_layout()
    return png_bytes(figure)


def qq_plot(p_real: np.ndarray, p_synth: np.ndarray, lambda_real: float | None, lambda_synth: float | None,
            trait: str) -> bytes:
    """Observed against expected -log10 p (uniform null) for both cohorts."""
    figure = Figure(figsize=(4.6, 4.6))
    ax = figure.add_subplot()
    top, right = 1.0, 1.0
    cohorts = ((p_real, REAL, "real", lambda_real), (p_synth, SYNTH, "synthetic", lambda_synth))
    for p, colour, label, lam in cohorts:
        p = np.sort(np.asarray(p, float)[np.isfinite(p)])
        if p.size == 0:
            continue
        observed = -np.log10(np.clip(p, 1e-300, 1))
        expected = -np.log10((np.arange(1, p.size + 1) - 0.5) / p.size)
        shown = _thin(observed)
        lam_text = f", λGC {lam:.3f}" if lam is not None and math.isfinite(lam) else ""
        ax.scatter(expected[shown], observed[shown], s=6, color=colour, linewidths=0,
                   label=f"{label}{lam_text}")
        top = max(top, float(observed.max()))
        right = max(right, float(expected.max()))
    ax.plot([0, right], [0, right], color="#555555", linewidth=0.8, linestyle="--")
    ax.set_xlim(0, right * 1.05)
    ax.set_ylim(0, top * 1.05)
    ax.set_xlabel("expected -log10 p")
    ax.set_ylabel("observed -log10 p")
    ax.set_title(f"{trait}: QQ plot", loc="left")
    ax.legend(loc="upper left", fontsize=8, frameon=True, framealpha=0.9, edgecolor="none")
    _style(ax)
    figure.tight_layout()
    return png_bytes(figure)


def allele_frequency_scatter(af_real: np.ndarray, af_synth: np.ndarray, correlation: float | None) -> bytes:
    """Alternate allele frequency per SNP, synthetic against real."""
    af_real, af_synth = np.asarray(af_real, float), np.asarray(af_synth, float)
    ok = np.isfinite(af_real) & np.isfinite(af_synth)
    figure = Figure(figsize=(4.6, 4.6))
    ax = figure.add_subplot()
    if ok.sum() > MAX_POINTS:
        ax.hexbin(af_real[ok], af_synth[ok], gridsize=60, bins="log", cmap="Blues", extent=(0, 1, 0, 1))
    else:
        ax.scatter(af_real[ok], af_synth[ok], s=4, color=REAL, alpha=0.35, linewidths=0)
    ax.plot([0, 1], [0, 1], color=SYNTH, linewidth=0.9)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("allele frequency, real")
    ax.set_ylabel("allele frequency, synthetic")
    r_text = f"r = {correlation:.4f}" if correlation is not None else ""
    ax.set_title(f"Allele frequencies ({ok.sum():,} SNPs) {r_text}", loc="left", fontsize=10)
    _style(ax)
    figure.tight_layout()
    return png_bytes(figure)


def ld_decay_plot(real: dict, synthetic: dict) -> bytes:
    """Mean r^2 by distance bin for both cohorts (x at the bin's geometric centre, log scale)."""
    left = np.asarray(real["bin_left"], float)
    right = np.asarray(real["bin_right"], float)
    centre = np.sqrt(np.maximum(left, 100.0) * right)
    figure = Figure(figsize=(5.4, 4.2))
    ax = figure.add_subplot()
    for curve, colour, label in ((real, REAL, "real"), (synthetic, SYNTH, "synthetic")):
        r2 = np.array([np.nan if v is None else v for v in curve["mean_r2"]], dtype=float)
        ok = np.isfinite(r2)
        ax.plot(centre[ok], r2[ok], marker="o", markersize=4, color=colour, label=label)
    ax.set_xscale("log")
    ax.set_xlabel("distance between SNPs (bp)")
    ax.set_ylabel("mean r²")
    ax.set_ylim(bottom=0)
    ax.set_title("LD decay", loc="left")
    ax.legend(frameon=False)
    _style(ax)
    figure.tight_layout()
    return png_bytes(figure)


def pca_overlay(real: np.ndarray, synthetic: np.ndarray, variance: Sequence[float]) -> bytes:
    """Synthetic genomes projected onto the real principal components: PC1/PC2 and PC3/PC4 panels."""
    real, synthetic = np.asarray(real, float), np.asarray(synthetic, float)
    pairs = [(0, 1), (2, 3)] if real.shape[1] >= 4 else [(0, min(1, real.shape[1] - 1))]
    figure = Figure(figsize=(5 * len(pairs), 4.6))
    for panel, (a, b) in enumerate(pairs, start=1):
        ax = figure.add_subplot(1, len(pairs), panel)
        ax.scatter(real[:, a], real[:, b], s=7, color=REAL, alpha=0.5, linewidths=0, label="real")
        ax.scatter(synthetic[:, a], synthetic[:, b], s=7, color=SYNTH, alpha=0.5, linewidths=0,
                   label="synthetic")
        ax.set_xlabel(f"PC{a + 1} ({100 * variance[a]:.1f}%)" if a < len(variance) else f"PC{a + 1}")
        ax.set_ylabel(f"PC{b + 1} ({100 * variance[b]:.1f}%)" if b < len(variance) else f"PC{b + 1}")
        ax.legend(frameon=False, fontsize=8, markerscale=2)
        _style(ax)
    figure.suptitle("PCA: synthetic projected onto the real cohort's components", x=0.02, ha="left")
    figure.tight_layout()
    return png_bytes(figure)


def correlation_heatmaps(columns: Sequence[str], real: np.ndarray, synthetic: np.ndarray) -> bytes:
    """Phenotype correlation matrices side by side, with their difference."""
    real = np.array([[np.nan if v is None else v for v in row] for row in real], dtype=float)
    synthetic = np.array([[np.nan if v is None else v for v in row] for row in synthetic], dtype=float)
    k = len(columns)
    size = min(max(3.2, 0.35 * k + 2), 7)
    figure = Figure(figsize=(3 * size, size))
    norm = TwoSlopeNorm(vmin=-1, vcenter=0, vmax=1)
    image = None
    for panel, (matrix, title) in enumerate(
        ((real, "real"), (synthetic, "synthetic"), (synthetic - real, "synthetic - real")), start=1
    ):
        ax = figure.add_subplot(1, 3, panel)
        image = ax.imshow(matrix, cmap="RdBu_r", norm=norm, interpolation="nearest")
        ax.set_title(title, fontsize=10)
        ticks = np.arange(k) if k <= 30 else np.arange(0, k, max(k // 15, 1))
        ax.set_xticks(ticks)
        ax.set_yticks(ticks)
        labels = [str(columns[i]) for i in ticks]
        ax.set_xticklabels(labels, rotation=90, fontsize=7)
        ax.set_yticklabels(labels if panel == 1 else [""] * len(ticks), fontsize=7)
    if image is not None:
        figure.colorbar(image, ax=figure.axes, shrink=0.8, label="Pearson r")
    return png_bytes(figure)


def kinship_histograms(bins: Sequence[float], counts: dict[str, Sequence[int]], title: str) -> bytes:
    """Distribution of pairwise kinship within each cohort (share of pairs per bin, log scale)."""
    edges = np.asarray(bins, float)
    figure = Figure(figsize=(5.4, 4.2))
    ax = figure.add_subplot()
    for (label, values), colour in zip(counts.items(), (REAL, SYNTH, HOLDOUT), strict=False):
        values = np.asarray(values, float)
        share = values / max(values.sum(), 1)
        ax.stairs(np.where(share > 0, share, np.nan), edges, color=colour, label=label, linewidth=1.4)
    ax.set_yscale("log")
    ax.set_xlabel("kinship coefficient")
    ax.set_ylabel("share of pairs")
    for cut, text in ((KING_SECOND_DEGREE, "2nd°"), (KING_FIRST_DEGREE, "1st°"), (KING_DUPLICATE, "dup")):
        ax.axvline(cut, color="#999999", linewidth=0.7, linestyle=":")
        ax.text(cut, 1.0, text, transform=ax.get_xaxis_transform(), fontsize=7, ha="center", va="bottom",
                color="#666666")
    ax.set_title(title, loc="left", pad=14)
    ax.legend(frameon=False)
    _style(ax)
    figure.tight_layout()
    return png_bytes(figure)


def distance_histograms(series: dict[str, Sequence[float]], reference: float | None, xlabel: str,
                        title: str, reference_label: str) -> bytes:
    """Overlaid density histograms of per-genome values (e.g. nearest-neighbour distances) with a marker."""
    figure = Figure(figsize=(5.4, 4.2))
    ax = figure.add_subplot()
    arrays = {k: np.asarray([v for v in vals if v is not None], float) for k, vals in series.items()}
    finite = np.concatenate([a[np.isfinite(a)] for a in arrays.values()] or [np.zeros(1)])
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if reference is not None and math.isfinite(reference):
        lo, hi = min(lo, reference), max(hi, reference)
    edges = np.linspace(lo, hi if hi > lo else lo + 1, 50)
    for (label, values), colour in zip(arrays.items(), (SYNTH, HOLDOUT, REAL), strict=False):
        values = values[np.isfinite(values)]
        if values.size:
            ax.hist(values, bins=edges, density=True, histtype="step", linewidth=1.4, color=colour,
                    label=f"{label} (n={values.size:,})")
    if reference is not None and math.isfinite(reference):
        ax.axvline(reference, color="#7f1d1d", linestyle="--", linewidth=1, label=reference_label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("density")
    ax.set_title(title, loc="left")
    ax.legend(frameon=False, fontsize=8)
    _style(ax)
    figure.tight_layout()
    return png_bytes(figure)
