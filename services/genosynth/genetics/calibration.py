"""Selected QTL effects calibrated on their loci's top statistics, by simulation from the fitted model.

A lead QTL is the best SNP of a scan, and its estimate carries the noise that made it the best: drawn
again from a model that takes the estimate as the truth, the locus's top statistic is on average higher
than the one observed, because fresh noise is added to an effect that already holds the data's, and the
top is again the largest of many SNPs in LD (the ranking bias of Sun & Bull 2005, Genet Epidemiol
28:268; its bootstrap correction in Faye et al. 2011, Genet Epidemiol 35:436). Here the correction is
parametric, by indirect inference: each locus's effects are scaled by the factor ``c`` at which phenotypes
simulated from the fitted model give, on average, the locus's observed top statistic::

    mean_k  max_{j in locus} z_j(y*_k(c))  =  max_{j in locus} z_j(y)

``z_j`` is the marginal linear-scan statistic ``sqrt(F)`` of SNP ``j`` with the covariates as fixed
effects, and ``y*_k(c) = rest_k + sum_L c_L s_L``: the model's draws without their QTL part ``rest_k``
(covariates, background and residual), plus each locus ``L``'s QTL signal ``s_L`` scaled by its factor. A
locus is the SNPs near a lead QTL in LD with it; QTLs whose loci overlap share one factor. The draws
are common to every ``c``, so the mean top is a smooth, increasing function of ``c`` and bisection finds
each factor.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from genosynth.genetics.scan import padded_scans

#: SNPs on either side of a lead QTL (in the order of its chromosome) that may belong to its locus.
REACH = 250
#: r^2 with the lead SNP from which a SNP belongs to its locus.
LD_MIN = 0.1
#: Phenotypes drawn from the model per trait for the calibration.
DRAWS = 32
#: Range of the factors, and the bisection steps that find them (precision (hi - lo) / 2^steps).
SCALE_RANGE, SCALE_STEPS = (0.0, 2.0), 16


def ld_with(x: np.ndarray, lead: int) -> np.ndarray:
    """r^2 of every column of ``x`` (n, w) with its column ``lead`` (0 where a column does not vary)."""
    centred = x - x.mean(axis=0)
    norms = np.sqrt((centred * centred).sum(axis=0))
    usable = norms > 1e-12 * max(float(norms.max(initial=0.0)), 1e-300)
    r = centred.T @ centred[:, lead] / np.where(usable, norms * max(norms[lead], 1e-300), 1.0)
    return np.where(usable, r * r, 0.0)


def merge_overlapping(windows: list[np.ndarray]) -> list[list[int]]:
    """Groups of the windows (arrays of column indices) that overlap, directly or through others.

    >>> merge_overlapping([np.array([1, 2]), np.array([5]), np.array([2, 3])])
    [[0, 2], [1]]
    """
    owner = list(range(len(windows)))

    def root(i: int) -> int:
        while owner[i] != i:
            i = owner[i]
        return i

    for a in range(len(windows)):
        for b in range(a):
            if np.intersect1d(windows[a], windows[b]).size:
                owner[root(a)] = root(b)
    groups: dict[int, list[int]] = {}
    for i in range(len(windows)):
        groups.setdefault(root(i), []).append(i)
    return sorted(groups.values())


def window_tops(x: np.ndarray, responses: np.ndarray, fixed: np.ndarray) -> np.ndarray:
    """The largest marginal statistic ``sqrt(F)`` over the SNPs of a window, for each response.

    Parameters
    ----------
    x : (n, w) genotypes of the window's SNPs, float64; responses : (n, k); fixed : (n, c) covariates
        with an intercept, the same for every response

    Returns
    -------
    (k,) ``max_j sqrt(F_j)`` of each response's linear scan (:func:`genosynth.genetics.scan.linear_scan`)
    """
    n, k = responses.shape
    q = np.linalg.qr(fixed)[0]
    c = q.shape[1]
    col_sq = np.repeat((x * x).sum(axis=0)[:, None], k, axis=1)
    t2 = padded_scans(x, np.tile(q, k), [j * c for j in range(k + 1)], responses, col_sq,
                      np.full(k, n - c - 1))
    return np.sqrt(t2.max(axis=1))


def calibrate_scales(observed: np.ndarray, tops: Callable[[np.ndarray], np.ndarray], *,
                     bounds: tuple[float, float] = SCALE_RANGE, steps: int = SCALE_STEPS) -> np.ndarray:
    """Per locus, the factor at which the simulated mean top statistic equals the observed one.

    Parameters
    ----------
    observed : (L,) each locus's observed top statistic
    tops : the simulated top statistics (L, k) of every locus for factors (L,), on the same draws for
        every call (common random numbers)
    bounds, steps : the bisection's range and number of halvings

    Returns
    -------
    (L,) factors, each within ``bounds`` (a bound where the equation has no root inside it)
    """
    lo = np.full(len(observed), bounds[0])
    hi = np.full(len(observed), bounds[1])
    for _ in range(steps):
        mid = 0.5 * (lo + hi)
        above = tops(mid).mean(axis=1) > observed
        hi = np.where(above, mid, hi)
        lo = np.where(above, lo, mid)
    return 0.5 * (lo + hi)
