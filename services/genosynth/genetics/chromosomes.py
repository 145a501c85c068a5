"""Chromosome labels of SNPs in file order, and the contiguous runs they form."""

from __future__ import annotations

import numpy as np


def chromosome_runs(chrom: np.ndarray) -> list[tuple[str, int, int]]:
    """Maximal runs of consecutive SNPs with the same chromosome label, in SNP order.

    Parameters
    ----------
    chrom : (m,) chromosome label of each SNP (compared as text)

    Returns
    -------
    ``[(label, start, stop), ...]`` covering ``0..m`` without overlap; a label may appear in several runs
    when its SNPs are not contiguous in the file.

    Examples
    --------
    >>> chromosome_runs(np.array(["1", "1", "2", "1"]))
    [('1', 0, 2), ('2', 2, 3), ('1', 3, 4)]
    """
    runs: list[tuple[str, int, int]] = []
    start = 0
    for i in range(1, len(chrom) + 1):
        if i == len(chrom) or chrom[i] != chrom[start]:
            runs.append((str(chrom[start]), start, i))
            start = i
    return runs
