"""Manhattan and QQ plots of a GWAS table (PNG, one figure per trait)."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

from genosynth import storage


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, never a display
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    # A fixed creation date in the metadata keeps reruns byte-identical.
    fig.savefig(buffer, format="png", dpi=110, metadata={"Software": "genosynth", "Creation Time": None})
    return buffer.getvalue()


def manhattan_png(table: pd.DataFrame, trait: str, threshold: float = 1e-8) -> bytes:
    """Manhattan plot of one trait: -log10 p along the genome, chromosomes alternately shaded.

    SNPs without a position are drawn at their index within the chromosome.
    """
    plt = _pyplot()
    rows = table[table["trait"] == trait]
    fig, ax = plt.subplots(figsize=(10, 3.5))
    offset, ticks, labels = 0.0, [], []
    for i, (chrom, part) in enumerate(rows.groupby("chr", sort=False)):
        pos = part["pos"].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
        x = np.where(np.isnan(pos), np.arange(len(part)), pos)
        x = x - np.nanmin(x) if len(x) else x
        span = float(np.nanmax(x)) if len(x) else 1.0
        ax.scatter(offset + x, -np.log10(part["p"].to_numpy(dtype=float)), s=3,
                   color=("#1f4e79" if i % 2 == 0 else "#7fa7cc"), rasterized=True)
        ticks.append(offset + span / 2)
        labels.append(str(chrom))
        offset += span * 1.02 + 1
    ax.axhline(-np.log10(threshold), color="#b22222", lw=0.8, ls="--")
    ax.set_xticks(ticks, labels, fontsize=7)
    ax.set_xlabel("chromosome")
    ax.set_ylabel("-log10 p")
    ax.set_title(f"{trait}: Manhattan")
    fig.tight_layout()
    data = _png(fig)
    plt.close(fig)
    return data


def qq_png(table: pd.DataFrame, trait: str) -> bytes:
    """QQ plot of one trait's p-values against the uniform, with the genomic inflation factor."""
    from scipy import stats

    plt = _pyplot()
    p = np.sort(table.loc[table["trait"] == trait, "p"].to_numpy(dtype=float))
    p = p[np.isfinite(p)]
    expected = (np.arange(1, len(p) + 1) - 0.5) / max(len(p), 1)
    inflation = float(np.median(stats.chi2.isf(p, 1)) / stats.chi2.ppf(0.5, 1)) if len(p) else float("nan")
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.scatter(-np.log10(expected), -np.log10(p), s=3, color="#1f4e79", rasterized=True)
    top = float(-np.log10(expected[0])) if len(p) else 1.0
    ax.plot([0, top], [0, top], color="#b22222", lw=0.8)
    ax.set_xlabel("expected -log10 p")
    ax.set_ylabel("observed -log10 p")
    ax.set_title(f"{trait}: QQ (lambda_GC = {inflation:.3f})")
    fig.tight_layout()
    data = _png(fig)
    plt.close(fig)
    return data


def write_plots(table: pd.DataFrame, prefix: str) -> list[str]:
    """Write ``PREFIX.<trait>.manhattan.png`` and ``PREFIX.<trait>.qq.png`` for every trait; return URLs."""
    written = []
    for trait in pd.unique(table["trait"]):
        for kind, render in (("manhattan", manhattan_png), ("qq", qq_png)):
            url = f"{prefix}.{trait}.{kind}.png"
            storage.write_bytes(url, render(table, trait))
            written.append(url)
    return written
