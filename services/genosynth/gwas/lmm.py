"""GEMMA's exact univariate linear mixed model (``-lmm 1``), vectorised over SNPs.

Model (Zhou & Stephens 2012, Nature Genetics 44:821): ``y = W a + x beta + g + e`` with
``g ~ N(0, lambda tau^-1 K)`` and ``e ~ N(0, tau^-1 I)``. With ``K = U diag(d) U^T`` every quantity
becomes a weighted sum over the eigen-coordinates with weights ``h_i = 1 / (1 + lambda d_i)``: for the
columns ``A = U^T [W, x, y]`` the Gram matrix ``G(lambda) = A^T diag(h) A`` gives

* the restricted log-likelihood
  ``l_R = df/2 (log df - log 2pi - 1) - 1/2 sum log(1 + lambda d) - 1/2 log(|Z'HZ| / |Z'Z|)
  - df/2 log(P_yy)`` with ``Z = [W, x]``, ``df = n - c - 1`` and ``P_yy`` the weighted residual sum of
  squares of ``y`` on ``Z`` (successive projections of ``G``, GEMMA's ``Pab`` recursion);
* the Wald test ``beta = P_xy / P_xx``, ``se^2 = Px_yy / (df P_xx)``, ``F = beta^2 / se^2 ~ F(1, df)``.

``lambda`` is re-estimated for every SNP by REML on ``[1e-5, 1e5]`` as GEMMA does: the sign of
``dl_R/dlambda`` is checked at the ends of 10 log-spaced regions, a root is found in each region where it
changes sign, and the best root (or a bound) wins. GEMMA runs Brent then Newton one SNP at a time; here all
(SNP, trait) columns move together. The region ends are evaluated exactly with one matrix product over the
eigen-coordinates (weights shared by all SNPs and traits); inside a region each column's sums ``G(t)``,
``t = log lambda``, are Chebyshev interpolants on 16 shared nodes (the weights are analytic in ``t`` with
poles at distance pi, so the interpolation error is about 1e-12). A secant step from the region ends
starts, and at most eight Newton steps on the interpolant (its exact second derivative) solve it to about
1e-13; the rare column that does not settle falls back to the bracketing
Illinois search. The heavy work is a few BLAS matrix products per block of SNPs, on CUDA through torch when
available.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch
from scipy import special
from threadpoolctl import threadpool_limits

from genosynth.genetics.device import pick_device, torch_threads
from genosynth.genetics.reml import (
    L_MAX,
    L_MIN,
    N_REGION,
    Eigen,
    NullModel,
    eigendecompose,
    fit_null_rotated,
    logdet_v,
    logdet_zz,
    region_ends,
    reml_weights,
    restricted_loglik,
)

N_CHEBYSHEV = 16
SNP_ROTATION_DTYPE = torch.float32  # precision of U^T X (see LmmPattern.rotate_snps)


def eigendecompose_many(kinships: list[np.ndarray], device: torch.device | None = None,
                        threads: int = 1) -> list[Eigen]:
    """:func:`eigendecompose` of several kinships, up to ``threads`` at once on the CPU.

    Each decomposition runs on one BLAS thread, as alone, so the results are the same bits whatever
    ``threads`` is; running them side by side is how the cores are used (LOCO: one per chromosome).
    """
    device = device or pick_device()
    if device.type != "cpu" or threads <= 1 or len(kinships) <= 1:
        return [eigendecompose(k, device) for k in kinships]
    # The limit is process-wide: set it around the whole batch so no call sees another thread count.
    with threadpool_limits(limits=1, user_api="blas"), \
            ThreadPoolExecutor(max_workers=min(threads, len(kinships))) as pool:
        return list(pool.map(lambda k: eigendecompose(k, device), kinships))


# --- Chebyshev machinery -------------------------------------------------------------------------------


def _chebyshev_nodes(n: int) -> np.ndarray:
    return np.cos(np.pi * (np.arange(n) + 0.5) / n)


def _chebyshev_fit_matrix(n: int) -> np.ndarray:
    """Maps values at the nodes to coefficients: ``c = M f``."""
    nodes = _chebyshev_nodes(n)
    basis = np.cos(np.outer(np.arange(n), np.arccos(nodes)))  # T_k(u_j)
    fit = 2.0 / n * basis
    fit[0] *= 0.5
    return fit


def _chebyshev_basis(u: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``T_k(u)``, ``T_k'(u)`` and ``T_k''(u)`` for k < n, shapes (b, n)."""
    t = [torch.ones_like(u), u]
    dt = [torch.zeros_like(u), torch.ones_like(u)]
    d2t = [torch.zeros_like(u), torch.zeros_like(u)]
    for _ in range(2, n):
        t.append(2 * u * t[-1] - t[-2])
        dt.append(2 * t[-2] + 2 * u * dt[-1] - dt[-2])
        d2t.append(4 * dt[-2] + 2 * u * d2t[-1] - d2t[-2])
    return torch.stack(t[:n], dim=1), torch.stack(dt[:n], dim=1), torch.stack(d2t[:n], dim=1)


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
    """Weighted sums for a set of weight rows ``w`` (g, n), over all SNPs of a block and all traits.

    ``ww`` (g, c, c) ``W'HW``; ``wy`` (g, c, t) ``W'HY``; ``yy`` (g, t) ``y'Hy`` of each trait;
    ``xw`` (g, m, c) ``x'HW``; ``xx`` (g, m) ``x'Hx``; ``xy`` (g, m, t) ``x'Hy``.
    """

    ww: torch.Tensor
    wy: torch.Tensor
    yy: torch.Tensor
    xw: torch.Tensor
    xx: torch.Tensor
    xy: torch.Tensor

    @classmethod
    def of(cls, weights: torch.Tensor, covariates_rot: torch.Tensor, traits_rot: torch.Tensor,
           snps_rot: torch.Tensor) -> _Sums:
        fixed_cols = torch.cat([covariates_rot, traits_rot], dim=1)  # (n, c + t)
        # (g, c+t, c+t) as one batched GEMM: with many traits the column products would not fit.
        fixed = torch.matmul(fixed_cols.T[None] * weights[:, None, :], fixed_cols)
        c, t = covariates_rot.shape[1], traits_rot.shape[1]
        snp_w, snp_x = _snp_side(weights, covariates_rot, snps_rot)
        if t <= 4:
            # Few traits: one GEMM (g, n) x (n, m) per trait beats a batch of thin products.
            snp_y = torch.stack([weights @ (snps_rot * traits_rot[:, j:j + 1]) for j in range(t)], dim=2)
        else:
            # x'HY for every weight row and trait: one GEMM (m, n) x (n, g t).
            g = weights.shape[0]
            weighted = (weights.T[:, :, None] * traits_rot[:, None, :]).reshape(len(traits_rot), g * t)
            snp_y = (snps_rot.T @ weighted).reshape(-1, g, t).transpose(0, 1)
        idx = torch.arange(t, device=weights.device)
        return cls(ww=fixed[:, :c, :c], wy=fixed[:, :c, c:], yy=fixed[:, c + idx, c + idx], xw=snp_w,
                   xx=snp_x, xy=snp_y)

    def gram(self, snp: torch.Tensor, trait: torch.Tensor) -> torch.Tensor:
        """Gram matrices over ``[W, x, y]`` of the columns (SNP ``snp[k]``, trait ``trait[k]``):
        (g, k, c+2, c+2)."""
        g, c = self.ww.shape[0], self.ww.shape[1]
        out = torch.empty((g, len(snp), c + 2, c + 2), dtype=self.ww.dtype, device=self.ww.device)
        out[:, :, :c, :c] = self.ww[:, None]
        wy = self.wy[:, :, trait].transpose(1, 2)
        out[:, :, :c, c + 1] = wy
        out[:, :, c + 1, :c] = wy
        out[:, :, c + 1, c + 1] = self.yy[:, trait]
        xw = self.xw[:, snp]
        out[:, :, c, :c] = xw
        out[:, :, :c, c] = xw
        out[:, :, c, c] = self.xx[:, snp]
        xy = self.xy[:, snp, trait]
        out[:, :, c, c + 1] = xy
        out[:, :, c + 1, c] = xy
        return out


def _snp_side(weights: torch.Tensor, covariates_rot: torch.Tensor,
              snps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Trait-independent weighted sums: ``x' H W`` (g, m, c) and ``x' H x`` (g, m) for every weight row."""
    g, m = weights.shape[0], snps.shape[1]
    c = covariates_rot.shape[1]
    products = (snps[:, :, None] * covariates_rot[:, None, :]).reshape(snps.shape[0], m * c)
    return (weights @ products).reshape(g, m, c), weights @ (snps * snps)


class _Interpolant:
    """Chebyshev interpolants in ``u`` of the Gram matrices of some columns over one region
    ``t = mid + half u``, ``u`` in [-1, 1], and of ``sum log(1 + lambda d)``."""

    def __init__(self, node_gram: torch.Tensor, node_logdet: torch.Tensor, mid: torch.Tensor,
                 half: torch.Tensor, logdet_zz: torch.Tensor, c: int, df: float) -> None:
        k, s, r, _ = node_gram.shape
        fit = torch.as_tensor(_chebyshev_fit_matrix(k), device=node_gram.device)
        # (s, r*r, k): the layout that one batched product per evaluation wants.
        self.coef = (fit @ node_gram.reshape(k, s * r * r)).reshape(k, s, r * r).permute(1, 2, 0).contiguous()
        self.coef_logdet = fit @ node_logdet
        self.mid, self.half, self.logdet_zz, self.c, self.df, self.r = mid, half, logdet_zz, c, df, r

    def subset(self, columns: torch.Tensor) -> _Interpolant:
        """The interpolant of some of the columns."""
        out = object.__new__(_Interpolant)
        out.__dict__.update(self.__dict__)
        out.coef, out.logdet_zz = self.coef[columns], self.logdet_zz[columns]
        return out

    def at(self, u: torch.Tensor, idx: torch.Tensor | None = None, second: bool = False):
        """REML value, derivative in u (and second derivative) and Gram at ``u`` (s,) of columns ``idx``."""
        coef = self.coef if idx is None else self.coef[idx]
        zz = self.logdet_zz if idx is None else self.logdet_zz[idx]
        k = coef.shape[2]
        basis, d_basis, d2_basis = _chebyshev_basis(u, k)
        bases = torch.stack([basis, d_basis / self.half, d2_basis / self.half**2], dim=2)  # (s, k, 3)
        if not second:
            bases = bases[:, :, :2]
        grams = torch.bmm(coef, bases)  # (s, r*r, 2 or 3)
        logdets = bases.transpose(1, 2) @ self.coef_logdet  # (s, 2 or 3)
        shape = (len(u), self.r, self.r)
        gram = grams[:, :, 0].reshape(shape)
        value, derivative, _, d2 = restricted_loglik(
            gram, grams[:, :, 1].reshape(shape), logdets[:, 0], logdets[:, 1], zz, self.c + 1, self.df,
            d2_gram=grams[:, :, 2].reshape(shape) if second else None,
            d2_logdet_h=logdets[:, 2] if second else None)
        # In u: d/du = half d/dt (the bases above are in t).
        return value, derivative * self.half, gram, (d2 * self.half**2 if second else None)


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
    local = interp.subset(active)  # the interpolant of the active columns only, compacted as they settle
    for _ in range(N_NEWTON):
        if active.numel() == 0:
            break
        ua = u[active]
        _, g, _, gp = local.at(ua, second=True)
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
            active = active[~converged]
            local = local.subset((~converged).nonzero().flatten())
    failed = torch.zeros_like(u, dtype=torch.bool)
    failed[active] = True
    if active.numel():
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
) -> list[LmmResult]:
    """REML lambda and Wald test of each SNP against each trait, as GEMMA ``-lmm 1``.

    Parameters
    ----------
    eigen : eigendecomposition of the centred kinship of the analysed individuals.
    covariates_rot : (n, c) ``U^T W`` (intercept included).
    traits_rot : (n, t) ``U^T Y``.
    snps_rot : (n, m) ``U^T X`` of mean-imputed (centred) dosages.

    Returns
    -------
    One :class:`LmmResult` of m SNPs per trait.

    The search per (SNP, trait) column, all columns together: the sign of the REML derivative at the 11
    region ends (exact); in each region where it changes, the Gram matrices at 16 Chebyshev nodes (exact,
    one batched product for all columns) give the interpolant; a secant step from the region ends starts
    Newton on the interpolant, and the best root (or a bound) wins, as in GEMMA.
    """
    m, t = snps_rot.shape[1], traits_rot.shape[1]
    # SNPs in chunks of about MAX_COLUMNS (SNP, trait) columns: with many traits the weighted sums of a
    # whole block would not fit.
    step = max(1, MAX_COLUMNS // t)
    parts = [_scan_chunk(eigen, covariates_rot, traits_rot, snps_rot[:, lo:lo + step], l_min, l_max, n_region)
             for lo in range(0, m, step)]
    best_f, best_t, best_gram = (torch.cat([part[k] for part in parts]) for k in range(3))
    c = covariates_rot.shape[1]
    df = covariates_rot.shape[0] - c - 1
    beta, se, p = _wald(best_gram, c, df)
    lam, logl = torch.exp(best_t).cpu().numpy(), best_f.cpu().numpy()
    # Columns are SNP-major: column j * t + l is SNP j, trait l.
    return [LmmResult(beta=beta.reshape(m, t)[:, j], se=se.reshape(m, t)[:, j], p=p.reshape(m, t)[:, j],
                      lambda_=lam.reshape(m, t)[:, j], logl=logl.reshape(m, t)[:, j]) for j in range(t)]


def _scan_chunk(eigen: Eigen, covariates_rot: torch.Tensor, traits_rot: torch.Tensor, snps_rot: torch.Tensor,
                l_min: float, l_max: float, n_region: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Best REML value (k,), log lambda (k,) and Gram matrix (k, c+2, c+2) of the k = m t columns
    (SNP-major) of one chunk of SNPs (n, m)."""
    values = eigen.values
    device = values.device
    n, c = covariates_rot.shape
    m, t = snps_rot.shape[1], traits_rot.shape[1]
    df = n - c - 1
    ends = region_ends(device, l_min, l_max, n_region)
    n_ends = len(ends)
    h = reml_weights(values, ends)
    ones = torch.ones((1, n), dtype=torch.float64, device=device)
    end_sums = _Sums.of(torch.cat([h, h * h - h, ones], dim=0), covariates_rot, traits_rot, snps_rot)
    logdet_h, d_logdet_h, _ = logdet_v(values, ends)
    nodes_u = torch.as_tensor(_chebyshev_nodes(N_CHEBYSHEV), device=device)

    columns = torch.arange(m * t, device=device)
    snp, trait = columns // t, columns % t
    gram_all = end_sums.gram(snp, trait)
    gram_ends, d_gram_ends = gram_all[:n_ends], gram_all[n_ends:2 * n_ends]
    zz_logdet = logdet_zz(gram_all[-1], c + 1)  # (k,)
    f_ends, g_ends, _, _ = restricted_loglik(gram_ends, d_gram_ends, logdet_h[:, None], d_logdet_h[:, None],
                                             zz_logdet[None, :], c + 1, df)
    f_best = torch.full((m * t,), -math.inf, dtype=torch.float64, device=device)
    t_best = torch.full((m * t,), math.nan, dtype=torch.float64, device=device)
    g_best = torch.empty((m * t, c + 2, c + 2), dtype=torch.float64, device=device)
    for region in range(n_region):
        sel = (g_ends[region] * g_ends[region + 1] <= 0).nonzero().flatten()
        if sel.numel() == 0:
            continue
        lo_t, hi_t = ends[region], ends[region + 1]
        half, mid = 0.5 * (hi_t - lo_t), 0.5 * (hi_t + lo_t)
        node_t = mid + half * nodes_u
        node_sums = _Sums.of(reml_weights(values, node_t), covariates_rot, traits_rot, snps_rot)
        node_logdet, _, _ = logdet_v(values, node_t)
        interp = _Interpolant(node_sums.gram(snp[sel], trait[sel]), node_logdet, mid, half, zz_logdet[sel],
                              c, df)
        del node_sums
        ones_s = torch.ones(len(sel), dtype=torch.float64, device=device)
        # Region ends in u with the derivative in u (d/du = half d/dt).
        u_root, _ = _newton_root(interp, -ones_s, ones_s, g_ends[region, sel] * half,
                                 g_ends[region + 1, sel] * half)
        f_root, _, gram_root, _ = interp.at(u_root)
        better = f_root > f_best[sel]
        upd = sel[better]
        f_best[upd] = f_root[better]
        t_best[upd] = (mid + half * u_root)[better]
        g_best[upd] = gram_root[better]
    for end in (0, n_ends - 1):
        better = f_ends[end] > f_best
        f_best = torch.where(better, f_ends[end], f_best)
        t_best = torch.where(better, ends[end], t_best)
        g_best[better] = gram_ends[end][better]
    return f_best, t_best, g_best


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


def _wald(gram: torch.Tensor, c: int, df: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Wald test from Gram matrices over ``[W, x, y]`` (m, c+2, c+2) at each SNP's lambda."""
    p = gram
    for k in range(c):
        col = p[..., :, k]
        p = p - col[..., :, None] * col[..., None, :] / p[..., k, k][..., None, None]
    p_xx, p_xy, p_yy = p[:, c, c], p[:, c, c + 1], p[:, c + 1, c + 1]
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
        with torch_threads(1, self.device):
            return lmm_scan(self.eigen, self.covariates_rot, self.traits_rot, snps_rot)

