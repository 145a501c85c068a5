"""Figure primitives shared by the GWAS plots and the report: the genome axis and deterministic PNGs.

Figures are drawn on :class:`matplotlib.figure.Figure` objects (no pyplot global state, Agg canvas) and
saved without software/date metadata, so the same inputs give byte-identical PNGs.
"""

from __future__ import annotations

import io
import re

import numpy as np
from matplotlib.figure import Figure

DPI = 110


def png_bytes(figure: Figure) -> bytes:
    """Render ``figure`` to PNG without metadata that would change between runs."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def chromosome_key(name: str) -> tuple[int, int, str]:
    """Sort key for chromosome names: 1, 2, ..., 10, ..., then X, Y, MT and anything else by name."""
    stripped = re.sub(r"^chr", "", str(name), flags=re.IGNORECASE)
    if stripped.isdigit():
        return (0, int(stripped), "")
    order = {"X": 1, "Y": 2, "XY": 3, "MT": 4, "M": 4}
    return (1, order.get(stripped.upper(), 9), stripped)


def genome_axis(chrom: np.ndarray, pos: np.ndarray) -> tuple[np.ndarray, list[tuple[str, float, float]]]:
    """Cumulative x coordinate of each SNP for a Manhattan plot.

    Chromosomes are laid end to end in natural order with a small gap; SNPs without a position go into a
    final "unplaced" block, evenly spaced in input order.

    Returns
    -------
    x : (m,) float
    blocks : list of (label, start, stop) per chromosome block, for ticks and shading.
    """
    chrom = np.asarray(chrom).astype(str)
    pos = np.asarray(pos, dtype=np.float64)
    x = np.full(chrom.shape, np.nan)
    blocks = []
    placed = np.isfinite(pos)
    spans = [float(np.nanmax(pos[placed & (chrom == c)])) for c in np.unique(chrom[placed])]
    gap = 0.01 * sum(spans) if spans else 1.0
    offset = 0.0
    for name in sorted(np.unique(chrom[placed]), key=chromosome_key):
        here = placed & (chrom == name)
        span = float(pos[here].max())
        x[here] = offset + pos[here]
        blocks.append((name, offset, offset + span))
        offset += span + gap
    unplaced = ~placed
    if unplaced.any():
        width = max(gap * 4, 1.0)
        x[unplaced] = offset + np.linspace(0, width, int(unplaced.sum()))
        blocks.append(("unplaced", offset, offset + width))
    return x, blocks
