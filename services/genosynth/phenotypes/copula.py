"""Gaussian copula for sample columns of any kind (numeric, binary, categorical).

Each column is mapped to normal scores through its empirical distribution (mid-ranks, so ties and
categories get one score per value), the scores' correlation is estimated on pairwise-complete rows and
repaired to be positive definite, and samples are mapped back through each column's empirical
quantiles (numeric) or category thresholds (binary, categorical).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats


def nearest_correlation(matrix: np.ndarray, floor: float = 1e-6) -> np.ndarray:
    """Clip eigenvalues at ``floor`` and rescale to unit diagonal: a valid correlation matrix."""
    matrix = 0.5 * (matrix + matrix.T)
    values, vectors = np.linalg.eigh(matrix)
    fixed = (vectors * np.maximum(values, floor)) @ vectors.T
    d = np.sqrt(np.diag(fixed))
    return fixed / np.outer(d, d)


@dataclass
class ColumnMargin:
    """How one column maps to and from normal scores."""

    name: str
    kind: str                    # numeric | binary | categorical
    values: np.ndarray           # sorted observed values (numeric) or category labels (others)
    cumulative: np.ndarray       # category cumulative proportions (binary/categorical), else empty
    integer: bool                # numeric column whose observed values are all integers
    dtype: str

    @classmethod
    def of(cls, name: str, kind: str, column: pd.Series) -> ColumnMargin:
        observed = column.dropna()
        if kind == "numeric":
            values = np.sort(observed.to_numpy(dtype=np.float64))
            integer = bool(values.size) and bool(np.all(values == np.round(values)))
            return cls(name, kind, values, np.zeros(0), integer, str(column.dtype))
        counts = observed.value_counts(sort=False).sort_index()
        cumulative = np.cumsum(counts.to_numpy(dtype=np.float64)) / max(len(observed), 1)
        return cls(name, kind, counts.index.to_numpy(), cumulative, False, str(column.dtype))

    def scores(self, column: pd.Series) -> np.ndarray:
        """Normal scores ``(n,)`` with NaN where missing."""
        out = np.full(len(column), np.nan)
        present = column.notna().to_numpy()
        if not present.any():
            return out
        ranks = stats.rankdata(column[present].to_numpy()) if self.kind == "numeric" else None
        if ranks is not None:
            out[present] = stats.norm.ppf(ranks / (present.sum() + 1))
        else:
            lower = np.concatenate([[0.0], self.cumulative[:-1]])
            middle = stats.norm.ppf(np.clip((lower + self.cumulative) / 2, 1e-6, 1 - 1e-6))
            position = {value: i for i, value in enumerate(self.values)}
            out[present] = [middle[position[v]] for v in column[present]]
        return out

    def from_scores(self, z: np.ndarray) -> np.ndarray:
        u = stats.norm.cdf(z)
        if self.kind == "numeric":
            if not self.values.size:
                return np.full(len(z), np.nan)
            out = np.quantile(self.values, u)
            return np.round(out) if self.integer else out
        index = np.searchsorted(self.cumulative, u, side="right")
        return self.values[np.minimum(index, len(self.values) - 1)]


@dataclass
class GaussianCopula:
    margins: list[ColumnMargin]
    correlation: np.ndarray      # (k, k)

    @classmethod
    def fit(cls, table: pd.DataFrame, kinds: dict[str, str]) -> GaussianCopula:
        margins = [ColumnMargin.of(c, kinds.get(c, "numeric"), table[c]) for c in table.columns]
        if not margins:
            return cls([], np.zeros((0, 0)))
        scores = pd.DataFrame({m.name: m.scores(table[m.name]) for m in margins})
        corr = np.nan_to_num(scores.corr(min_periods=3).to_numpy())
        np.fill_diagonal(corr, 1.0)
        return cls(margins, nearest_correlation(corr))

    def sample(self, n: int, rng: np.random.Generator) -> pd.DataFrame:
        """``n`` rows with no missing values (the caller applies the missing pattern)."""
        if not self.margins:
            return pd.DataFrame(index=range(n))
        z = rng.multivariate_normal(np.zeros(len(self.margins)), self.correlation, size=n, method="cholesky")
        return pd.DataFrame({m.name: m.from_scores(z[:, i]) for i, m in enumerate(self.margins)})

    def describe(self) -> dict[str, Any]:
        return {"columns": [m.name for m in self.margins], "kinds": [m.kind for m in self.margins]}
