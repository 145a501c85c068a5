"""Chromosome labels of SNPs in file order: the contiguous runs they form, and each chromosome's columns."""

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


def chromosome_columns(chrom: np.ndarray) -> list[slice | np.ndarray]:
    """The SNP columns of each chromosome, in first-seen order: a slice where they form one run.

    Examples
    --------
    >>> chromosome_columns(np.array(["1", "1", "2", "1"]))
    [array([0, 1, 3]), slice(2, 3, None)]
    """
    runs: dict[str, list[tuple[int, int]]] = {}
    for label, start, stop in chromosome_runs(np.asarray(chrom).astype(str)):
        runs.setdefault(label, []).append((start, stop))
    return [slice(*spans[0]) if len(spans) == 1 else np.concatenate([np.arange(a, b) for a, b in spans])
            for spans in runs.values()]
