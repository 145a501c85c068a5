"""The linear mixed model behind phenotype synthesis: y = W a + e_g + e, e_g ~ N(0, vg K), e ~ N(0, ve I).

Kept small and self-contained because synthesis refits the null model with a growing set of fixed
effects (stepwise QTL selection) on one rotation of the data. Everything
works in the eigenbasis of the kinship, ``K = U diag(s) U^T``, where the covariance is diagonal
(Kang et al. 2008; Zhou & Stephens 2012).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize

_LOG10_DELTA_RANGE = (-5.0, 5.0)  # delta = ve / vg, the range GEMMA searches


@dataclass
class Rotation:
    """Data of one set of individuals in the kinship eigenbasis."""

    eigenvalues: np.ndarray   # (n,)
    basis: np.ndarray         # (n, n) U

    @classmethod
    def of(cls, kinship: np.ndarray) -> Rotation:
        values, vectors = np.linalg.eigh(kinship)
        return cls(np.maximum(values, 0.0), vectors)

    def rotate(self, matrix: np.ndarray) -> np.ndarray:
        return self.basis.T @ matrix


@dataclass
class NullFit:
    """REML fit of the null model: fixed effects, variance components and the heritability they imply."""

    beta: np.ndarray   # (c,)
    vg: float
    ve: float
    delta: float       # ve / vg
    loglik: float

    @property
    def pve(self) -> float:
        return self.vg / (self.vg + self.ve)


def _reml(
    log10_delta: float, s: np.ndarray, yt: np.ndarray, wt: np.ndarray,
) -> tuple[float, np.ndarray, float]:
    """Negative REML log-likelihood (up to a constant), GLS betas and residual sum of squares."""
    h = s + 10.0**log10_delta
    scale = 1.0 / np.sqrt(h)
    wh, yh = wt * scale[:, None], yt * scale
    gram = wh.T @ wh
    beta = np.linalg.solve(gram, wh.T @ yh)
    rss = float(((yh - wh @ beta) ** 2).sum())
    n, c = wt.shape
    _sign, logdet = np.linalg.slogdet(gram)
    value = 0.5 * ((n - c) * np.log(rss / (n - c)) + np.log(h).sum() + logdet)
    return value, beta, rss


def fit_null(rotation: Rotation, yt: np.ndarray, wt: np.ndarray) -> NullFit:
    """REML over ``delta`` on GEMMA's range: a grid, then Brent's method around the best point.

    ``yt`` (n,) and ``wt`` (n, c) are already rotated (``U^T y``, ``U^T W``).
    """
    s = rotation.eigenvalues
    grid = np.linspace(*_LOG10_DELTA_RANGE, 41)
    values = [_reml(g, s, yt, wt)[0] for g in grid]
    best = int(np.argmin(values))
    lo, hi = grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)]
    found = optimize.minimize_scalar(lambda g: _reml(g, s, yt, wt)[0], bounds=(lo, hi), method="bounded",
                                     options={"xatol": 1e-4})
    log10_delta = float(found.x) if found.fun <= values[best] else float(grid[best])
    value, beta, rss = _reml(log10_delta, s, yt, wt)
    vg = rss / (len(yt) - wt.shape[1])
    delta = 10.0**log10_delta
    return NullFit(beta=beta, vg=vg, ve=delta * vg, delta=delta, loglik=-value)
