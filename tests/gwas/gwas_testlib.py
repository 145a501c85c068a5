"""Helpers shared by the GWAS tests: reading GEMMA's log and comparing p-values."""

from __future__ import annotations

import numpy as np
import pandas as pd


def log_value(log: str, label: str) -> float:
    """A number from a GEMMA log line ``## <label> = <value>``."""
    for line in log.splitlines():
        if line.startswith("##") and label in line:
            return float(line.split("=")[-1])
    raise AssertionError(f"{label!r} not in GEMMA log")


def max_log10_difference(ours: pd.Series, theirs: pd.Series) -> float:
    difference = np.log10(ours.to_numpy(dtype=float)) - np.log10(theirs.to_numpy(dtype=float))
    return float(np.max(np.abs(difference)))
