"""GEMMA's exact univariate linear mixed model (``-lmm 1``), vectorised over SNPs.

Model (Zhou & Stephens 2012, Nature Genetics 44:821): ``y = W a + x beta + g + e`` with
``g ~ N(0, lambda tau^-1 K)`` and ``e ~ N(0, tau^-1 I)``. With ``K = U diag(d) U^T`` every quantity
becomes a weighted sum over the eigen-coordinates with weights ``h_i = 1 / (1 + lambda d_i)``. The
covariates are projected out once per ``lambda`` (shared by all SNPs and traits): with ``A = W'HW`` the
Schur complements ``P_xx = x'Hx - x'HW A^-1 W'Hx``, ``P_xy`` and ``P_yy`` of each (SNP, trait) column give

* the restricted log-likelihood (:func:`genosynth.genetics.reml.snp_loglik`)
  ``l_R = df/2 (log df - log 2pi - 1) - 1/2 sum log(1 + lambda d) - 1/2 log(|A| P_xx / |Z'Z|)
  - df/2 log(P_yy - P_xy^2 / P_xx)`` with ``Z = [W, x]`` and ``df = n - c - 1``;
* the Wald test ``beta = P_xy / P_xx``, ``se^2 = Px_yy / (df P_xx)``, ``F = beta^2 / se^2 ~ F(1, df)``
  with ``Px_yy = P_yy - P_xy^2 / P_xx``.

``lambda`` is re-estimated for every SNP by REML on ``[1e-5, 1e5]`` as GEMMA does: the sign of
``dl_R/dlambda`` is checked at the ends of 10 log-spaced regions, a root is found in each region where it
changes sign, and the best root (or a bound) wins. GEMMA runs Brent then Newton one SNP at a time; here all
(SNP, trait) columns move together. The region ends are evaluated exactly (the weighted sums with ``h``
and ``dh/dt`` from a few matrix products, the derivatives of the Schur complements in closed form); inside
a region each column's ``P_xx``, ``P_xy``, ``P_yy`` as functions of ``t = log lambda`` are Chebyshev
interpolants on 16 shared nodes, computed for the columns with a root there only (the weights are analytic
in ``t`` with poles at distance pi, so the interpolation error is about 1e-12). A secant step from the
region ends starts, and at most eight Newton steps on the interpolant (its exact second derivative) solve
it to about 1e-13; the rare column that does not settle falls back to the bracketing Illinois search. The
heavy work is a few BLAS matrix products per block of SNPs, on CUDA through torch when available.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch
from numpy.polynomial import chebyshev
from scipy import special

from genosynth.genetics.device import torch_threads
from genosynth.genetics.reml import (
    L_MAX,
    L_MIN,
    N_REGION,
    Eigen,
    NullModel,
    eigendecompose,
    fit_null_rotated,
    logdet_v,
    region_ends,
    reml_weights,
    snp_loglik,
)

N_CHEBYSHEV = 16
SNP_ROTATION_DTYPE = torch.float32  # precision of U^T X (see LmmPattern.rotate_snps)


# --- Chebyshev machinery -------------------------------------------------------------------------------


def _chebyshev_nodes(n: int) -> np.ndarray:
    return np.cos(np.pi * (np.arange(n) + 0.5) / n)


def _chebyshev_fit_matrices(n: int) -> np.ndarray:
    """(3, n, n): map values at the nodes to the coefficients of the interpolant, of its first and of its
    second derivative in ``u``: ``c_o = M[o] f``."""
    nodes = _chebyshev_nodes(n)
    basis = np.cos(np.outer(np.arange(n), np.arccos(nodes)))  # T_k(u_j)
    fit = 2.0 / n * basis
    fit[0] *= 0.5
    d1 = np.zeros((n, n))
    d1[:n - 1] = chebyshev.chebder(np.eye(n))  # derivative of each T_k, as a series
    return np.stack([fit, d1 @ fit, d1 @ d1 @ fit])


def _chebyshev_values(u: torch.Tensor, n: int) -> torch.Tensor:
    """``T_k(u) = cos(k arccos u)`` for k < n, shape (s, n), for ``u`` (s,) in [-1, 1]."""
    k = torch.arange(n, dtype=u.dtype, device=u.device)
    return torch.cos(torch.arccos(u.clamp(-1.0, 1.0))[:, None] * k[None, :])


# --- per-SNP scan --------------------------------------------------------------------------------------

N_NEWTON = 8  # Newton steps from the secant start in a region; few columns need the fallback
NEWTON_TOL = 1e-7  # last step in u (the region mapped onto [-1, 1]); the root is then good to ~1e-13
MAX_COLUMNS = 1 << 15  # (SNP, trait) columns searched together: bounds the memory of the Gram tensors


@dataclass
class LmmResult:
    """Per-SNP estimates for one trait, arrays shape (m,) (numpy float64)."""

    beta: np.ndarray
    se: np.ndarray
    p: np.ndarray
    lambda_: np.ndarray
    logl: np.ndarray


@dataclass
class _Sums:
    """Weighted sums for weight rows ``w`` (g, n) over some (SNP, trait) columns.

    ``ww`` (g, c, c) ``W'HW``; ``wy`` (g, c, t) ``W'HY``; ``yy`` (g, t) ``y'Hy`` of each trait;
    ``xw`` (g, m, c) ``x'HW``; ``xx`` (g, m) ``x'Hx`` of each SNP; ``xy`` (g, k) ``x'Hy`` of each column,
    whose SNP and trait are ``snp`` (k,) and ``trait`` (k,).
    """

    ww: torch.Tensor
    wy: torch.Tensor
    yy: torch.Tensor
    xw: torch.Tensor
    xx: torch.Tensor
    xy: torch.Tensor
    snp: torch.Tensor
    trait: torch.Tensor

    @classmethod
    def of(cls, weights: torch.Tensor, covariates_rot: torch.Tensor, traits_rot: torch.Tensor,
           snps_rot: torch.Tensor, squares: torch.Tensor,
           columns: tuple[torch.Tensor, torch.Tensor] | None = None) -> _Sums:
        """The sums of the columns ``(snp, trait)`` (index pairs into ``snps_rot`` (n, m) and ``traits_rot``
        (n, t)); by default every pair, SNP-major (column ``j t + l`` is SNP ``j``, trait ``l``).
        ``squares`` (n, m) is ``snps_rot ** 2``, formed once by the caller."""
        fixed_cols = torch.cat([covariates_rot, traits_rot], dim=1)  # (n, c + t)
        # (g, c+t, c+t) as one batched GEMM: with many traits the column products would not fit.
        fixed = torch.matmul(fixed_cols.T[None] * weights[:, None, :], fixed_cols)
        n, c, t, m = len(traits_rot), covariates_rot.shape[1], traits_rot.shape[1], snps_rot.shape[1]
        g, device = weights.shape[0], weights.device
        if columns is None:
            every = torch.arange(m * t, device=device)
            snp, trait = every // t, every % t
            traits_here, trait_pos = torch.arange(t, device=device), trait
        else:
            snp, trait = columns
            traits_here, trait_pos = torch.unique(trait, return_inverse=True)
        # Most pairs present: x'HY of every SNP and trait present, the pairs picked out after.
        dense = 4 * len(snp) >= m * len(traits_here)
        linear = torch.cat([covariates_rot, traits_rot[:, traits_here]], dim=1) if dense else covariates_rot
        width = linear.shape[1]
        # x'HW and x'HY are linear in x: one GEMM (m, n) x (n, g width) gives them for every weight row.
        snp_sums = (snps_rot.T @ (weights.T[:, :, None] * linear[:, None, :]).reshape(n, g * width)
                    ).reshape(m, g, width)
        if columns is None:
            snp_y = snp_sums[:, :, c:].transpose(0, 1).reshape(g, m * t)
        elif dense:
            snp_y = snp_sums[snp, :, c + trait_pos].T
        else:
            snp_y = _sparse_pair_sums(weights, traits_rot, snps_rot, snp, traits_here, trait_pos)
        idx = torch.arange(t, device=device)
        return cls(ww=fixed[:, :c, :c], wy=fixed[:, :c, c:], yy=fixed[:, c + idx, c + idx],
                   xw=snp_sums[:, :, :c].transpose(0, 1), xx=weights @ squares, xy=snp_y,
                   snp=snp, trait=trait)

    def rows(self, index: slice) -> _Sums:
        """The sums of some of the weight rows."""
        return _Sums(ww=self.ww[index], wy=self.wy[index], yy=self.yy[index], xw=self.xw[index],
                     xx=self.xx[index], xy=self.xy[index], snp=self.snp, trait=self.trait)


def _sparse_pair_sums(weights: torch.Tensor, traits_rot: torch.Tensor, snps_rot: torch.Tensor,
                      snp: torch.Tensor, traits_here: torch.Tensor, trait_pos: torch.Tensor) -> torch.Tensor:
    """``x'Hy`` (g, k) of a few (SNP, trait) pairs: SNP ``snp`` (k,), trait ``traits_here[trait_pos]``.

    Per trait, one GEMM over the rows of its SNPs: gathering rows of ``(U^T X)^T`` is a copy, whereas
    gathering columns of an (n, m) matrix pair by pair costs far more than the products.
    """
    rows = snps_rot.T.contiguous()
    out = weights.new_empty((weights.shape[0], len(snp)))
    for pos, j in enumerate(traits_here.tolist()):
        pairs = (trait_pos == pos).nonzero().flatten()
        out[:, pairs] = (weights * traits_rot[:, j]) @ rows.index_select(0, snp[pairs]).T
    return out


@dataclass
class _Schur:
    """What is left of :class:`_Sums` after projecting the covariates ``W`` out in the metric ``H`` (the
    Schur complements of ``W'HW``), per weight row.

    ``xx`` (g, m) ``x'Hx - x'HW (W'HW)^-1 W'Hx`` of each SNP; ``xy`` (g, k) the same for ``x'Hy`` of each
    column; ``yy`` (g, t) for ``y'Hy`` of each trait; ``ww`` (g,) ``log |W'HW|``.
    """

    xx: torch.Tensor
    xy: torch.Tensor
    yy: torch.Tensor
    ww: torch.Tensor


def _project(sums: _Sums, d_sums: _Sums | None = None) -> tuple[_Schur, _Schur | None]:
    """The Schur complements of ``sums`` and, given the sums ``d_sums`` with the weights ``dH/dt``
    (``t = log lambda``), their ``t``-derivatives (None without).

    With ``A = W'HW``, ``b = W'Hx`` and ``e = W'Hy``: ``P_xy = x'Hy - b' A^-1 e`` and
    ``dP_xy = d(x'Hy) - db' A^-1 e - b' A^-1 de + b' A^-1 dA A^-1 e``; ``d log|A| = tr(A^-1 dA)``.
    """
    chol = torch.linalg.cholesky(sums.ww)  # (g, c, c)
    beta = torch.cholesky_solve(sums.xw.transpose(1, 2), chol).transpose(1, 2)  # (g, m, c): A^-1 b
    gamma = torch.cholesky_solve(sums.wy, chol).transpose(1, 2)  # (g, t, c): A^-1 e
    snp, trait = sums.snp, sums.trait
    value = _Schur(xx=sums.xx - (sums.xw * beta).sum(2),
                   xy=sums.xy - (sums.xw[:, snp] * gamma[:, trait]).sum(2),
                   yy=sums.yy - (sums.wy.transpose(1, 2) * gamma).sum(2),
                   ww=2.0 * torch.log(torch.diagonal(chol, dim1=1, dim2=2)).sum(1))
    if d_sums is None:
        return value, None
    d = d_sums
    d_beta = beta @ d.ww  # (g, m, c): dA A^-1 b (dA symmetric)
    d_gamma = gamma @ d.ww  # (g, t, c)
    d_wy = d.wy.transpose(1, 2)  # (g, t, c)
    derivative = _Schur(
        xx=d.xx - 2.0 * (d.xw * beta).sum(2) + (beta * d_beta).sum(2),
        xy=(d.xy - (d.xw[:, snp] * gamma[:, trait]).sum(2)
            - (beta[:, snp] * (d_wy - d_gamma)[:, trait]).sum(2)),
        yy=d.yy - 2.0 * (d_wy * gamma).sum(2) + (gamma * d_gamma).sum(2),
        ww=(torch.cholesky_inverse(chol) * d.ww).sum((1, 2)))
    return value, derivative


class _Interpolant:
    """Chebyshev interpolants in ``u`` over one region ``t = mid + half u``, ``u`` in [-1, 1], of what the
    restricted likelihood of some columns needs: ``P_xx``, ``P_xy`` and ``P_yy`` of each column and
    ``q = sum log(1 + lambda d) + log |W'HW|``.

    ``nodes`` holds the Schur complements at the Chebyshev nodes, ``node_logdet`` (k,) the
    ``sum log(1 + lambda d)`` there; ``snp`` and ``trait`` (s,) index ``nodes.xx`` and ``nodes.yy`` for
    column ``i`` (``nodes.xy`` is per column); ``zz`` (s,) ``log |Z'Z|``.
    """

    def __init__(self, nodes: _Schur, node_logdet: torch.Tensor, snp: torch.Tensor, trait: torch.Tensor,
                 zz: torch.Tensor, half: torch.Tensor, df: float) -> None:
        k = node_logdet.shape[0]
        # Coefficients of each function and of its first two derivatives in t (d/dt = d/du / half).
        scale = float(half) ** -np.arange(3.0)
        fits = torch.as_tensor(_chebyshev_fit_matrices(k) * scale[:, None, None], device=zz.device)
        # (s, 9, k): P_xx, P_xy, P_yy of each column, each with its two derivatives.
        self.coef = torch.cat([(fits @ nodes.xx)[:, :, snp], fits @ nodes.xy, (fits @ nodes.yy)[:, :, trait]],
                              dim=0).permute(2, 0, 1).contiguous()
        self.coef_q = fits @ (node_logdet + nodes.ww)  # (3, k)
        self.zz, self.half, self.df = zz, half, df

    def subset(self, columns: torch.Tensor) -> _Interpolant:
        """The interpolant of some of the columns."""
        out = object.__new__(_Interpolant)
        out.__dict__.update(self.__dict__)
        out.coef, out.zz = self.coef[columns], self.zz[columns]
        return out

    def at(self, u: torch.Tensor, idx: torch.Tensor | None = None, second: bool = False):
        """REML value, derivative in u, ``(P_xx, P_xy, P_yy)`` and (with ``second``) the second derivative
        in u at ``u`` (s,) of columns ``idx``."""
        coef = self.coef if idx is None else self.coef[idx]
        zz = self.zz if idx is None else self.zz[idx]
        order = 3 if second else 2
        basis = _chebyshev_values(u, coef.shape[2])  # (s, k)
        jets = torch.bmm(coef, basis[:, :, None])[:, :, 0].T.reshape(3, 3, -1)[:, :order]  # (3, o, s)
        q = self.coef_q[:order] @ basis.T  # (o, s)
        loglik = snp_loglik(q, jets[0], jets[1], jets[2], zz, self.df)
        # In u: d/du = half d/dt.
        return (loglik[0], loglik[1] * self.half, (jets[0, 0], jets[1, 0], jets[2, 0]),
                loglik[2] * self.half**2 if second else None)


def _newton_root(interp: _Interpolant, lo: torch.Tensor, hi: torch.Tensor, g_lo: torch.Tensor,
                 g_hi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Root in u of the REML derivative inside brackets ``[lo, hi]`` (s,): secant start, then at most
    :data:`N_NEWTON` safeguarded Newton steps (bisection when a step leaves the bracket).

    A column stops after a step shorter than :data:`NEWTON_TOL`: Newton's convergence is quadratic, so
    the point it stops at is accurate to about the square of that step. Returns the roots (s,) and a mask
    of the columns that needed the fallback.
    """
    lo, hi, g_lo, g_hi = lo.clone(), hi.clone(), g_lo.clone(), g_hi.clone()
    denom = g_hi - g_lo
    u = torch.where(denom != 0, lo - g_lo * (hi - lo) / torch.where(denom != 0, denom, 1.0), 0.5 * (lo + hi))
    u = torch.where(g_lo == 0, lo, torch.where(g_hi == 0, hi, u))
    active = ((g_lo != 0) & (g_hi != 0)).nonzero().flatten()
    # The interpolant of the active columns only, compacted once half of its columns have settled (until
    # then the settled ones are evaluated too: cheaper than copying the coefficients at every step).
    local, local_cols = interp.subset(active), active
    rows = torch.arange(len(active), device=u.device)  # row of `local` of each active column
    for _ in range(N_NEWTON):
        if active.numel() == 0:
            break
        ua = u[active]
        _, g_rows, _, gp_rows = local.at(u[local_cols], second=True)
        g, gp = g_rows[rows], gp_rows[rows]
        a_lo, a_hi, a_glo = lo[active], hi[active], g_lo[active]
        left = g * a_glo > 0  # the root is above ua
        a_lo = torch.where(left, ua, a_lo)
        a_hi = torch.where(left, a_hi, ua)
        lo[active], hi[active] = a_lo, a_hi
        g_lo[active] = torch.where(left, g, a_glo)
        g_hi[active] = torch.where(left, g_hi[active], g)
        step = ua - g / gp
        step = torch.where(torch.isfinite(step) & (step > a_lo) & (step < a_hi), step, 0.5 * (a_lo + a_hi))
        step = torch.where(g == 0, ua, step)  # an exact root stays (ua is then a bracket end)
        u[active] = step
        converged = (g == 0) | ((step - ua).abs() < NEWTON_TOL) | (a_hi - a_lo < NEWTON_TOL)
        if converged.any():
            keep = (~converged).nonzero().flatten()
            active, rows = active[keep], rows[keep]
            if 2 * len(rows) <= len(local_cols):
                local, local_cols = local.subset(rows), active
                rows = torch.arange(len(active), device=u.device)
    failed = torch.zeros_like(u, dtype=torch.bool)
    failed[active] = True
    if active.numel():
        local = local.subset(rows)
        # Fallback for the few columns Newton did not settle: the bracketing search on the same interpolant.
        u[active] = _illinois(lambda x, idx: local.at(x, idx)[1], lo[active], hi[active],
                              g_lo[active], g_hi[active])
    return u, failed


def lmm_scan(
    eigen: Eigen,
    covariates_rot: torch.Tensor,
    traits_rot: torch.Tensor,
    snps_rot: torch.Tensor,
    l_min: float = L_MIN,
    l_max: float = L_MAX,
    n_region: int = N_REGION,
    blas_threads: int = 1,
) -> list[LmmResult]:
    """REML lambda and Wald test of each SNP against each trait, as GEMMA ``-lmm 1``.

    Parameters
    ----------
    eigen : eigendecomposition of the centred kinship of the analysed individuals.
    covariates_rot : (n, c) ``U^T W`` (intercept included).
    traits_rot : (n, t) ``U^T Y``.
    snps_rot : (n, m) ``U^T X`` of mean-imputed (centred) dosages.
    blas_threads : CPU threads of the weighted sums (matrix products); the element-wise search runs on
        one thread (see :func:`genosynth.genetics.device.torch_threads`).

    Returns
    -------
    One :class:`LmmResult` of m SNPs per trait.

    The search per (SNP, trait) column, all columns together: the sign of the REML derivative at the 11
    region ends (exact); in each region where it changes, the Schur complements at 16 Chebyshev nodes
    (exact, a few batched products for the columns with a root there) give the interpolant; a secant step
    from the region ends starts Newton on the interpolant, and the best root (or a bound) wins, as in GEMMA.
    """
    m, t = snps_rot.shape[1], traits_rot.shape[1]
    # SNPs in chunks of about MAX_COLUMNS (SNP, trait) columns: with many traits the weighted sums of a
    # whole block would not fit.
    step = max(1, MAX_COLUMNS // t)
    with torch_threads(1, snps_rot.device):
        parts = [_scan_chunk(eigen, covariates_rot, traits_rot, snps_rot[:, lo:lo + step], l_min, l_max,
                             n_region, blas_threads) for lo in range(0, m, step)]
    best_f, best_t, best_p = (torch.cat([part[k] for part in parts], dim=-1) for k in range(3))
    df = covariates_rot.shape[0] - covariates_rot.shape[1] - 1
    beta, se, p = _wald(best_p[0], best_p[1], best_p[2], df)
    lam, logl = torch.exp(best_t).cpu().numpy(), best_f.cpu().numpy()
    # Columns are SNP-major: column j * t + l is SNP j, trait l.
    return [LmmResult(beta=beta.reshape(m, t)[:, j], se=se.reshape(m, t)[:, j], p=p.reshape(m, t)[:, j],
                      lambda_=lam.reshape(m, t)[:, j], logl=logl.reshape(m, t)[:, j]) for j in range(t)]


def _scan_chunk(eigen: Eigen, covariates_rot: torch.Tensor, traits_rot: torch.Tensor, snps_rot: torch.Tensor,
                l_min: float, l_max: float, n_region: int,
                blas_threads: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Best REML value (k,), log lambda (k,) and ``P_xx, P_xy, P_yy`` there (3, k) of the k = m t columns
    (SNP-major) of one chunk of SNPs (n, m)."""
    values = eigen.values
    device = values.device
    n, c = covariates_rot.shape
    df = n - c - 1
    ends = region_ends(device, l_min, l_max, n_region)
    n_ends = len(ends)
    h = reml_weights(values, ends)
    ones = torch.ones((1, n), dtype=torch.float64, device=device)
    squares = snps_rot * snps_rot
    with torch_threads(blas_threads, device):
        sums = _Sums.of(torch.cat([h, h * h - h, ones], dim=0), covariates_rot, traits_rot, snps_rot, squares)
    snp, trait = sums.snp, sums.trait
    at_ends, d_ends = _project(sums.rows(slice(0, n_ends)), sums.rows(slice(n_ends, 2 * n_ends)))
    unweighted, _ = _project(sums.rows(slice(2 * n_ends, None)))
    del sums
    zz = unweighted.ww[0] + torch.log(unweighted.xx[0, snp])  # log |Z'Z| of each column (k,)
    logdet_h, d_logdet_h, _ = logdet_v(values, ends)
    loglik_ends = snp_loglik(
        torch.stack([logdet_h + at_ends.ww, d_logdet_h + d_ends.ww])[:, :, None],
        torch.stack([at_ends.xx[:, snp], d_ends.xx[:, snp]]), torch.stack([at_ends.xy, d_ends.xy]),
        torch.stack([at_ends.yy[:, trait], d_ends.yy[:, trait]]), zz, df)  # (2, n_ends, k)
    f_ends, g_ends = loglik_ends[0], loglik_ends[1]
    del d_ends
    nodes_u = torch.as_tensor(_chebyshev_nodes(N_CHEBYSHEV), device=device)
    k = len(snp)
    f_best = torch.full((k,), -math.inf, dtype=torch.float64, device=device)
    t_best = torch.full((k,), math.nan, dtype=torch.float64, device=device)
    p_best = torch.zeros((3, k), dtype=torch.float64, device=device)
    for region in range(n_region):
        sel = (g_ends[region] * g_ends[region + 1] <= 0).nonzero().flatten()
        if sel.numel() == 0:
            continue
        lo_t, hi_t = ends[region], ends[region + 1]
        half, mid = 0.5 * (hi_t - lo_t), 0.5 * (hi_t + lo_t)
        node_t = mid + half * nodes_u
        # The exact sums at the nodes, for the SNPs and (SNP, trait) pairs with a root here only.
        snps_here, local = torch.unique(snp[sel], return_inverse=True)
        every = len(snps_here) == snps_rot.shape[1]
        with torch_threads(blas_threads, device):
            node_sums = _Sums.of(reml_weights(values, node_t), covariates_rot, traits_rot,
                                 snps_rot if every else snps_rot.index_select(1, snps_here),
                                 squares if every else squares.index_select(1, snps_here),
                                 (local, trait[sel]))
        nodes, _ = _project(node_sums)
        del node_sums
        node_logdet, _, _ = logdet_v(values, node_t)
        interp = _Interpolant(nodes, node_logdet, local, trait[sel], zz[sel], half, df)
        del nodes
        ones_s = torch.ones(len(sel), dtype=torch.float64, device=device)
        # Region ends in u with the derivative in u (d/du = half d/dt).
        u_root, _ = _newton_root(interp, -ones_s, ones_s, g_ends[region, sel] * half,
                                 g_ends[region + 1, sel] * half)
        f_root, _, p_root, _ = interp.at(u_root)
        better = f_root > f_best[sel]
        upd = sel[better]
        f_best[upd] = f_root[better]
        t_best[upd] = (mid + half * u_root)[better]
        p_best[:, upd] = torch.stack(p_root)[:, better]
    for end in (0, n_ends - 1):
        better = f_ends[end] > f_best
        f_best = torch.where(better, f_ends[end], f_best)
        t_best = torch.where(better, ends[end], t_best)
        p_end = torch.stack([at_ends.xx[end, snp], at_ends.xy[end], at_ends.yy[end, trait]])
        p_best = torch.where(better, p_end, p_best)
    return f_best, t_best, p_best


def _illinois(fn, lo: torch.Tensor, hi: torch.Tensor, f_lo: torch.Tensor, f_hi: torch.Tensor,
              max_iter: int = 60, tol: float = 1e-10) -> torch.Tensor:
    """Vectorised Illinois (modified regula falsi) root of ``fn(x, index)`` bracketed by ``[lo, hi]``.

    Only the unconverged elements are evaluated at each step (``index`` selects them).
    """
    lo, hi, f_lo, f_hi = lo.clone(), hi.clone(), f_lo.clone(), f_hi.clone()
    side = torch.zeros_like(lo)
    x = torch.where(f_lo == 0, lo, hi)
    active = ((f_lo != 0) & (f_hi != 0)).nonzero().flatten()
    for _ in range(max_iter):
        if active.numel() == 0:
            break
        a_lo, a_hi, a_flo, a_fhi, a_side = lo[active], hi[active], f_lo[active], f_hi[active], side[active]
        denom = a_fhi - a_flo
        x_new = torch.where(denom != 0, a_hi - a_fhi * (a_hi - a_lo) / denom, 0.5 * (a_lo + a_hi))
        x_new = torch.where((x_new > a_lo) & (x_new < a_hi), x_new, 0.5 * (a_lo + a_hi))
        f_new = fn(x_new, active)
        same_hi = f_new * a_fhi > 0
        same_lo = f_new * a_flo > 0
        # Keep the bracket; halve the stale end's value when one end is kept twice (Illinois).
        a_flo = torch.where(same_hi & (a_side == -1), 0.5 * a_flo, a_flo)
        a_fhi = torch.where(same_lo & (a_side == 1), 0.5 * a_fhi, a_fhi)
        lo[active] = torch.where(same_lo, x_new, a_lo)
        f_lo[active] = torch.where(same_lo, f_new, a_flo)
        hi[active] = torch.where(same_hi, x_new, a_hi)
        f_hi[active] = torch.where(same_hi, f_new, a_fhi)
        side[active] = torch.where(same_hi, -1.0, torch.where(same_lo, 1.0, a_side))
        moved = (x_new - x[active]).abs()
        x[active] = x_new
        converged = (f_new == 0) | (moved < tol) | (hi[active] - lo[active] < tol)
        active = active[~converged]
    return x


def _wald(p_xx: torch.Tensor, p_xy: torch.Tensor, p_yy: torch.Tensor,
          df: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Wald test from the Schur complements (k,) at each column's lambda (:class:`_Schur`)."""
    px_yy = p_yy - p_xy * p_xy / p_xx
    beta = p_xy / p_xx
    tau = df / px_yy
    se = torch.sqrt(1.0 / (tau * p_xx))
    statistic = ((p_yy - px_yy) * tau).cpu().numpy()
    pval = special.fdtrc(1.0, df, np.maximum(statistic, 0.0))
    return beta.cpu().numpy(), se.cpu().numpy(), pval


class LmmPattern:
    """Everything shared by the traits observed on one set of individuals: eigendecomposition, rotated
    covariates and traits, and the null models.

    Parameters
    ----------
    kinship : (n, n) kinship of these individuals, already double-centred, or its :class:`Eigen`.
    covariates : (n, c) covariates with the intercept column.
    traits : (n, t) phenotypes without missing values.
    """

    def __init__(self, kinship: np.ndarray | Eigen, covariates: np.ndarray, traits: np.ndarray,
                 device: torch.device | None = None):
        self.eigen = kinship if isinstance(kinship, Eigen) else eigendecompose(kinship, device)
        self.device = self.eigen.vectors.device
        self._ut = self.eigen.vectors.T.contiguous()
        self._ut_snps = self._ut.to(SNP_ROTATION_DTYPE)
        self.covariates_rot = self.rotate(covariates)
        self.traits_rot = self.rotate(traits)

    @cached_property
    def null(self) -> list[NullModel]:
        """REML null model of each trait (computed on first use)."""
        with torch_threads(1, self.device):
            return [fit_null_rotated(self.eigen, self.covariates_rot, self.traits_rot[:, j])
                    for j in range(self.traits_rot.shape[1])]

    def rotate(self, values: np.ndarray) -> torch.Tensor:
        """``U^T values`` as float64 on the pattern's device."""
        return self._ut @ torch.as_tensor(np.asarray(values, dtype=np.float64), device=self.device)

    def rotate_snps(self, snps: np.ndarray) -> torch.Tensor:
        """``U^T (X - mean)`` of mean-imputed SNPs (n, m), as float64 on the pattern's device.

        Each SNP is centred first (the intercept is among the covariates, so the tests do not change) and the
        product is taken in :data:`SNP_ROTATION_DTYPE` (float32: half the time of float64; the GEMMA
        agreement tests bound what it costs in accuracy).
        """
        x = torch.as_tensor(np.asarray(snps), device=self.device).to(torch.float64)
        x = (x - x.mean(dim=0, keepdim=True)).to(SNP_ROTATION_DTYPE)
        return (self._ut_snps @ x).to(torch.float64)

    def scan(self, snps: np.ndarray, clock: Callable[[str], contextlib.AbstractContextManager] | None = None
             ) -> list[LmmResult]:
        """All traits of this pattern against a block of mean-imputed SNPs (n, m).

        ``clock(phase)`` (optional) times the rotation (``"rotate"``) and the REML search (``"reml"``).
        """
        clock = clock or (lambda _phase: contextlib.nullcontext())
        with clock("rotate"):
            snps_rot = self.rotate_snps(snps)
        with clock("reml"):
            return self._search(snps_rot)

    def _search(self, snps_rot: torch.Tensor) -> list[LmmResult]:
        return lmm_scan(self.eigen, self.covariates_rot, self.traits_rot, snps_rot,
                        blas_threads=torch.get_num_threads())

