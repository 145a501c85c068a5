"""Manhattan and QQ plots of a GWAS table (PNG, one figure per trait)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from genosynth import storage
from genosynth.genetics.scan import lambda_gc
from genosynth.plotting import genome_axis, png_bytes

_SHADES = ("#1f4e79", "#7fa7cc")


def manhattan_png(table: pd.DataFrame, trait: str, threshold: float = 1e-8) -> bytes:
    """Manhattan plot of one trait: -log10 p along the genome, chromosomes alternately shaded.

    SNPs without a position are drawn in a final "unplaced" block, in table order.
    """
    rows = table[table["trait"] == trait]
    pos = rows["pos"].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    chrom = rows["chr"].astype(str).to_numpy()
    x, blocks = genome_axis(chrom, pos)
    neglog_p = -np.log10(rows["p"].to_numpy(dtype=float))
    fig = Figure(figsize=(10, 3.5))
    ax = fig.subplots()
    for i, (_, start, stop) in enumerate(blocks):
        here = (x >= start) & (x <= stop)
        ax.scatter(x[here], neglog_p[here], s=3, color=_SHADES[i % 2], rasterized=True)
    ax.axhline(-np.log10(threshold), color="#b22222", lw=0.8, ls="--")
    ax.set_xticks([(start + stop) / 2 for _, start, stop in blocks], [b[0] for b in blocks], fontsize=7)
    ax.set_xlabel("chromosome")
    ax.set_ylabel("-log10 p")
    ax.set_title(f"{trait}: Manhattan")
    fig.tight_layout()
    return png_bytes(fig)


def qq_png(table: pd.DataFrame, trait: str) -> bytes:
    """QQ plot of one trait's p-values against the uniform, with the genomic inflation factor."""
    p = np.sort(table.loc[table["trait"] == trait, "p"].to_numpy(dtype=float))
    p = p[np.isfinite(p)]
    expected = (np.arange(1, len(p) + 1) - 0.5) / max(len(p), 1)
    inflation = lambda_gc(p)
    fig = Figure(figsize=(4, 4))
    ax = fig.subplots()
    ax.scatter(-np.log10(expected), -np.log10(p), s=3, color=_SHADES[0], rasterized=True)
    top = float(-np.log10(expected[0])) if len(p) else 1.0
    ax.plot([0, top], [0, top], color="#b22222", lw=0.8)
    ax.set_xlabel("expected -log10 p")
    ax.set_ylabel("observed -log10 p")
    ax.set_title(f"{trait}: QQ (lambda_GC = {inflation:.3f})")
    fig.tight_layout()
    return png_bytes(fig)


def write_plots(table: pd.DataFrame, prefix: str) -> list[str]:
    """Write ``PREFIX.<trait>.manhattan.png`` and ``PREFIX.<trait>.qq.png`` for every trait; return URLs."""
    written = []
    for trait in pd.unique(table["trait"]):
        for kind, render in (("manhattan", manhattan_png), ("qq", qq_png)):
            url = f"{prefix}.{trait}.{kind}.png"
            storage.write_bytes(url, render(table, trait))
            written.append(url)
    return written
