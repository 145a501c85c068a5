"""Does the synthetic phenotype table keep the real columns' distributions and correlations?"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd


def _numeric_columns(real: pd.DataFrame, synthetic: pd.DataFrame, kinds: dict[str, str]) -> list[str]:
    return [c for c in real.columns if c != "id" and c in synthetic.columns
            and kinds.get(c, "numeric") in ("numeric", "binary")
            and pd.api.types.is_numeric_dtype(real[c]) and pd.api.types.is_numeric_dtype(synthetic[c])]


def phenotype_metrics(real: pd.DataFrame, synthetic: pd.DataFrame, kinds: dict[str, str]
                      ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Column-by-column and correlation agreement of two samples tables.

    Parameters
    ----------
    real, synthetic : DataFrame
        Samples tables (``id`` + phenotype and covariate columns).
    kinds : dict
        ``column -> numeric | binary | categorical``.

    Returns
    -------
    metrics : dict
        ``columns``: per column the missing fraction of both, and mean / sd (numeric, binary) or total
        variation distance of the category frequencies (categorical); ``correlation_mean_abs_difference``
        and ``..._max_...`` over the off-diagonal pairwise-complete Pearson correlations of the numeric and
        binary columns.
    details : dict
        ``columns`` and the two correlation matrices (for the report's heat maps).
    """
    columns: dict[str, Any] = {}
    for column in real.columns:
        if column == "id" or column not in synthetic.columns:
            continue
        r, s = real[column], synthetic[column]
        entry: dict[str, Any] = {"kind": kinds.get(column, "numeric"), "missing_real": float(r.isna().mean()),
                                 "missing_synthetic": float(s.isna().mean())}
        if entry["kind"] == "categorical" or not pd.api.types.is_numeric_dtype(r) \
                or not pd.api.types.is_numeric_dtype(s):
            fr = r.dropna().astype(str).value_counts(normalize=True)
            fs = s.dropna().astype(str).value_counts(normalize=True)
            entry["total_variation"] = float(0.5 * fr.sub(fs, fill_value=0).abs().sum())
        else:
            entry.update(mean_real=float(r.mean()), mean_synthetic=float(s.mean()),
                         sd_real=float(r.std()), sd_synthetic=float(s.std()))
        columns[str(column)] = entry

    numeric = _numeric_columns(real, synthetic, kinds)
    corr_real = real[numeric].astype(float).corr().to_numpy() if numeric else np.zeros((0, 0))
    corr_synth = synthetic[numeric].astype(float).corr().to_numpy() if numeric else np.zeros((0, 0))
    i, j = np.triu_indices(len(numeric), k=1)
    diff = np.abs(corr_real[i, j] - corr_synth[i, j])
    diff = diff[np.isfinite(diff)]
    metrics = {
        "columns": columns,
        "correlation_mean_abs_difference": float(diff.mean()) if diff.size else math.nan,
        "correlation_max_abs_difference": float(diff.max()) if diff.size else math.nan,
    }
    details = {"columns": numeric, "correlation_real": corr_real, "correlation_synthetic": corr_synth}
    return metrics, details
