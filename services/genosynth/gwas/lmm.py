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
SNPs move together. The region ends are evaluated exactly with one matrix product over the eigen-coordinates
(weights shared by all SNPs); inside a region each SNP's sums ``G(t)``, ``t = log lambda``, are Chebyshev
interpolants on 16 shared nodes (the weights are analytic in ``t`` with poles at distance pi, so the
interpolation error is about 1e-12), and the root is polished on the interpolant. The heavy work is a few
BLAS matrix products per block of SNPs, on CUDA through torch when available.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch
from scipy import linalg, special
from threadpoolctl import threadpool_limits

from genosynth.genetics.device import pick_device

L_MIN = 1e-5
L_MAX = 1e5
N_REGION = 10
N_CHEBYSHEV = 16
EIGEN_ZERO = 1e-10  # GEMMA zeroes eigenvalues below this
SNP_ROTATION_DTYPE = torch.float32  # precision of U^T X (see LmmPattern.rotate_snps)


@dataclass
class NullModel:
    """REML fit of the model without SNP.

    ``lambda = vg / ve``; ``pve = s lambda / (s lambda + 1)`` with ``s = tr(K) / n`` (GEMMA's definition).
    """

    lambda_: float
    vg: float
    ve: float
    pve: float
    logl: float


@dataclass
class Eigen:
    """Eigendecomposition of a kinship on one set of individuals: ``K = U diag(d) U^T``.

    ``values`` (n,), ``vectors`` (n, n), both torch float64 on ``vectors.device``; ``trace`` is mean(d).
    """

    values: torch.Tensor
    vectors: torch.Tensor

    @property
    def trace(self) -> float:
        return float(self.values.mean())


def eigendecompose(kinship: np.ndarray | torch.Tensor, device: torch.device | None = None) -> Eigen:
    """Eigendecomposition with GEMMA's zeroing of eigenvalues below 1e-10."""
    device = device or pick_device()
    if device.type == "cpu":
        # LAPACK's divide-and-conquer through scipy is several times faster than torch's CPU eigh. It runs
        # on one thread, always: its reduction gives different low bits on different thread counts (so a
        # thread count chosen at run time would make two runs differ), and on shared cores the threaded
        # reduction spins and runs up to 15x slower.
        k = kinship.cpu().numpy() if isinstance(kinship, torch.Tensor) else np.asarray(kinship, np.float64)
        with threadpool_limits(limits=1, user_api="blas"):
            values_np, vectors_np = linalg.eigh(k, driver="evd")
        values, vectors = torch.from_numpy(values_np), torch.from_numpy(vectors_np)
    else:
        values, vectors = torch.linalg.eigh(torch.as_tensor(kinship, dtype=torch.float64, device=device))
    values = torch.where(values < EIGEN_ZERO, torch.zeros_like(values), values)
    return Eigen(values=values, vectors=vectors)


# --- REML on weighted Gram matrices ------------------------------------------------------------------


def _weights(values: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """``h = 1 / (1 + e^t d)``, shape (g, n) for log-lambdas ``t`` (g,) and eigenvalues (n,)."""
    return 1.0 / (1.0 + torch.exp(t)[:, None] * values[None, :])


def _reml(
    gram: torch.Tensor,
    d_gram: torch.Tensor | None,
    logdet_h: torch.Tensor,
    d_logdet_h: torch.Tensor | None,
    logdet_zz: torch.Tensor,
    n_project: int,
    df: float,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """Restricted log-likelihood and its derivative in ``t = log lambda``.

    Parameters
    ----------
    gram : (..., r, r) ``A^T H A`` with the response in the last column.
    d_gram : (..., r, r) its derivative in ``t``, or None for the value only.
    logdet_h, d_logdet_h : ``sum log(1 + lambda d)`` and its derivative, broadcastable to ``...``.
    logdet_zz : ``log |Z'Z|`` of the projected columns (unweighted), broadcastable to ``...``.
    n_project : number of leading columns ``Z`` projected out (covariates, plus the SNP under H1).
    df : ``n - n_project``.

    Returns
    -------
    (value, derivative or None, P) with P (..., r - n_project, r - n_project) the block left after
    projecting out the ``n_project`` columns.
    """
    p = gram
    dp = d_gram
    logdet = torch.zeros_like(gram[..., 0, 0])
    d_logdet = torch.zeros_like(logdet) if dp is not None else None
    # Project the leading column out and keep only the remaining block: the matrix shrinks each step.
    for _ in range(n_project):
        pkk = p[..., 0, 0]
        col = p[..., 1:, 0]
        outer = col[..., :, None] * col[..., None, :]
        logdet = logdet + torch.log(pkk)
        if dp is not None:
            dpkk = dp[..., 0, 0]
            dcol = dp[..., 1:, 0]
            d_logdet = d_logdet + dpkk / pkk
            d_outer = dcol[..., :, None] * col[..., None, :] + col[..., :, None] * dcol[..., None, :]
            dp = dp[..., 1:, 1:] - d_outer / pkk[..., None, None] + outer * (dpkk / pkk**2)[..., None, None]
        p = p[..., 1:, 1:] - outer / pkk[..., None, None]
    p_yy = p[..., -1, -1]
    # GEMMA guards the same round-off: an exactly explained response would give log(0).
    p_yy = torch.where(p_yy == 0, torch.full_like(p_yy, 1e-8), p_yy)
    const = 0.5 * df * (math.log(df) - math.log(2 * math.pi) - 1.0)
    value = const - 0.5 * logdet_h - 0.5 * (logdet - logdet_zz) - 0.5 * df * torch.log(p_yy)
    if dp is None:
        return value, None, p
    derivative = -0.5 * d_logdet_h - 0.5 * d_logdet - 0.5 * df * dp[..., -1, -1] / p_yy
    return value, derivative, p


def _logdet_zz(gram_ones: torch.Tensor, n_project: int) -> torch.Tensor:
    """``log |Z'Z|`` from the unweighted Gram matrix (successive projections), shape ``...``."""
    p = gram_ones
    out = torch.zeros_like(p[..., 0, 0])
    for k in range(n_project):
        pkk = p[..., k, k]
        out = out + torch.log(pkk)
        col = p[..., :, k]
        p = p - col[..., :, None] * col[..., None, :] / pkk[..., None, None]
    return out


def _logdet_h(values: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``sum log(1 + lambda d)`` and its ``t``-derivative ``sum lambda d / (1 + lambda d)``, shapes (g,)."""
    scaled = torch.exp(t)[:, None] * values[None, :]
    return torch.log1p(scaled).sum(dim=1), (scaled / (1.0 + scaled)).sum(dim=1)


def _region_ends(device: torch.device, l_min: float, l_max: float, n_region: int) -> torch.Tensor:
    step = math.log(l_max / l_min) / n_region
    return torch.tensor([math.log(l_min) + step * i for i in range(n_region + 1)], dtype=torch.float64,
                        device=device)


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


def _chebyshev_basis(u: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``T_k(u)`` and ``T_k'(u)`` for k < n, shapes (b, n)."""
    t = [torch.ones_like(u), u]
    dt = [torch.zeros_like(u), torch.ones_like(u)]
    for _ in range(2, n):
        t.append(2 * u * t[-1] - t[-2])
        dt.append(2 * t[-2] + 2 * u * dt[-1] - dt[-2])
    return torch.stack(t[:n], dim=1), torch.stack(dt[:n], dim=1)


# --- null model ----------------------------------------------------------------------------------------


def _fixed_gram(weights: torch.Tensor, fixed: torch.Tensor) -> torch.Tensor:
    """``fixed^T diag(w) fixed`` for every weight row: (g, n), (n, k) -> (g, k, k)."""
    # One matrix product over the k*k column products (einsum over three operands is far slower).
    k = fixed.shape[1]
    products = (fixed[:, :, None] * fixed[:, None, :]).reshape(fixed.shape[0], k * k)
    return (weights @ products).reshape(weights.shape[0], k, k)


def fit_null_rotated(
    eigen: Eigen, covariates_rot: torch.Tensor, trait_rot: torch.Tensor,
    l_min: float = L_MIN, l_max: float = L_MAX, n_region: int = N_REGION,
) -> NullModel:
    """REML null model from rotated covariates (n, c) and trait (n,), as GEMMA's ``CalcLambda('R')``."""
    values = eigen.values
    n, c = covariates_rot.shape
    df = n - c
    fixed = torch.cat([covariates_rot, trait_rot[:, None]], dim=1)
    logdet_zz = _logdet_zz(fixed.T @ fixed, c)

    def evaluate(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h = _weights(values, t)
        gram = _fixed_gram(h, fixed)
        d_gram = _fixed_gram(h * h - h, fixed)
        logdet_h, d_logdet_h = _logdet_h(values, t)
        return _reml(gram, d_gram, logdet_h, d_logdet_h, logdet_zz, c, df)

    ends = _region_ends(values.device, l_min, l_max, n_region)
    f_ends, g_ends, _ = evaluate(ends)
    best_t, best_f = None, -math.inf
    bracket = (g_ends[:-1] * g_ends[1:] <= 0).nonzero().flatten()
    if bracket.numel():
        lo, hi = ends[bracket].clone(), ends[bracket + 1].clone()
        g_lo = g_ends[bracket].clone()
        for _ in range(64):  # bisection to machine precision; the null model is one small problem
            mid = 0.5 * (lo + hi)
            _, g_mid, _ = evaluate(mid)
            left = g_mid * g_lo > 0
            lo = torch.where(left, mid, lo)
            g_lo = torch.where(left, g_mid, g_lo)
            hi = torch.where(left, hi, mid)
        roots = 0.5 * (lo + hi)
        f_roots, _, _ = evaluate(roots)
        i = int(torch.argmax(f_roots))
        best_t, best_f = float(roots[i]), float(f_roots[i])
    for t_end, f_end in ((ends[0], f_ends[0]), (ends[-1], f_ends[-1])):
        if float(f_end) > best_f:
            best_t, best_f = float(t_end), float(f_end)
    t_best = torch.tensor([best_t], dtype=torch.float64, device=values.device)
    _, _, projected = evaluate(t_best)
    lam = math.exp(best_t)
    ve = float(projected[0, -1, -1]) / df
    pve = eigen.trace * lam / (eigen.trace * lam + 1.0)
    return NullModel(lambda_=lam, vg=lam * ve, ve=ve, pve=pve, logl=best_f)


def fit_null(kinship: np.ndarray, y: np.ndarray, covariates: np.ndarray | None = None) -> NullModel:
    """REML fit of ``y = W a + g + e`` (no SNP); the intercept is always added to ``covariates``.

    Parameters
    ----------
    kinship : (n, n) relatedness (used as given; GEMMA double-centres it first, see
        :func:`genosynth.genetics.kinship.double_centre`).
    y : (n,) trait without missing values.
    covariates : (n, k) extra covariates or None.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> g = rng.binomial(2, 0.5, size=(200, 500)).astype(float)
    >>> from genosynth.genetics.kinship import centred_kinship
    >>> model = fit_null(centred_kinship(g), rng.normal(size=200))
    >>> 0 <= model.pve <= 1
    True
    """
    eigen = eigendecompose(kinship)
    device = eigen.vectors.device
    n = len(y)
    w = np.ones((n, 1)) if covariates is None else np.column_stack([np.ones(n), covariates])
    ut = eigen.vectors.T
    w_rot = ut @ torch.as_tensor(w, dtype=torch.float64, device=device)
    y_rot = ut @ torch.as_tensor(np.asarray(y, dtype=np.float64), device=device)
    return fit_null_rotated(eigen, w_rot, y_rot)


# --- per-SNP scan --------------------------------------------------------------------------------------


@dataclass
class LmmResult:
    """Per-SNP estimates for one trait, arrays shape (m,) (numpy float64)."""

    beta: np.ndarray
    se: np.ndarray
    p: np.ndarray
    lambda_: np.ndarray
    logl: np.ndarray


def _snp_side(weights: torch.Tensor, covariates_rot: torch.Tensor,
              snps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Trait-independent weighted sums: ``x' H W`` (g, m, c) and ``x' H x`` (g, m) for every weight row.

    They are shared by all traits of a pattern: the weight rows (region ends, Chebyshev nodes) are fixed.
    """
    g, m = weights.shape[0], snps.shape[1]
    c = covariates_rot.shape[1]
    products = (snps[:, :, None] * covariates_rot[:, None, :]).reshape(snps.shape[0], m * c)
    return (weights @ products).reshape(g, m, c), weights @ (snps * snps)


def _snp_gram(fixed_gram: torch.Tensor, snp_w: torch.Tensor, snp_x: torch.Tensor,
              snp_y: torch.Tensor) -> torch.Tensor:
    """Gram matrices over ``[W, x, y]`` for every weight row and SNP: (g, m, c+2, c+2).

    ``fixed_gram`` (g, c+1, c+1) over ``[W, y]``; ``snp_w`` (g, m, c) = x'HW; ``snp_x`` (g, m) = x'Hx;
    ``snp_y`` (g, m) = x'Hy.
    """
    g, m, c = snp_w.shape
    r = c + 2
    out = torch.empty((g, m, r, r), dtype=snp_w.dtype, device=snp_w.device)
    idx = torch.tensor([*range(c), c + 1], device=snp_w.device)  # positions of W columns and y
    out[:, :, idx[:, None], idx[None, :]] = fixed_gram[:, None, :, :].expand(g, m, c + 1, c + 1)
    out[:, :, c, :c] = snp_w
    out[:, :, :c, c] = snp_w
    out[:, :, c, c + 1] = snp_y
    out[:, :, c + 1, c] = snp_y
    out[:, :, c, c] = snp_x
    return out


def lmm_scan(
    eigen: Eigen,
    covariates_rot: torch.Tensor,
    trait_rot: torch.Tensor,
    snps_rot: torch.Tensor,
    l_min: float = L_MIN,
    l_max: float = L_MAX,
    n_region: int = N_REGION,
    shared: dict | None = None,
) -> LmmResult:
    """REML lambda and Wald test of each SNP, as GEMMA ``-lmm 1``.

    Parameters
    ----------
    eigen : eigendecomposition of the centred kinship of the analysed individuals.
    covariates_rot : (n, c) ``U^T W`` (intercept included).
    trait_rot : (n,) ``U^T y``.
    snps_rot : (n, m) ``U^T X`` of mean-imputed dosages.
    shared : a dict kept across the traits of one pattern and block of SNPs, so that the
        trait-independent sums are computed once.
    """
    values = eigen.values
    device = values.device
    n, c = covariates_rot.shape
    m = snps_rot.shape[1]
    df = n - c - 1
    fixed = torch.cat([covariates_rot, trait_rot[:, None]], dim=1)
    ones = torch.ones((1, n), dtype=torch.float64, device=device)

    def snp_side(key, weights, sel=None):
        # With one trait only the SNPs that need it are computed; with several, all SNPs once.
        if shared is None:
            return _snp_side(weights, covariates_rot, snps_rot if sel is None else snps_rot[:, sel])
        if key not in shared:
            shared[key] = _snp_side(weights, covariates_rot, snps_rot)
        snp_w, snp_x = shared[key]
        return (snp_w, snp_x) if sel is None else (snp_w[:, sel], snp_x[:, sel])

    # Region ends: exact values, derivatives, and the unweighted Gram for log|Z'Z| (one matrix product).
    ends = _region_ends(device, l_min, l_max, n_region)
    h = _weights(values, ends)
    stacked = torch.cat([h, h * h - h, ones], dim=0)
    snp_w, snp_x = snp_side("ends", stacked)
    gram_all = _snp_gram(_fixed_gram(stacked, fixed), snp_w, snp_x, stacked @ (snps_rot * trait_rot[:, None]))
    n_ends = len(ends)
    gram_ends, d_gram_ends, gram_ones = gram_all[:n_ends], gram_all[n_ends:2 * n_ends], gram_all[-1]
    logdet_zz = _logdet_zz(gram_ones, c + 1)  # (m,)
    logdet_h, d_logdet_h = _logdet_h(values, ends)
    f_ends, g_ends, _ = _reml(gram_ends, d_gram_ends, logdet_h[:, None], d_logdet_h[:, None],
                              logdet_zz[None, :], c + 1, df)

    best_f = torch.full((m,), -math.inf, dtype=torch.float64, device=device)
    best_t = torch.full((m,), math.nan, dtype=torch.float64, device=device)
    best_gram = torch.full((m, c + 2, c + 2), math.nan, dtype=torch.float64, device=device)

    fit = torch.as_tensor(_chebyshev_fit_matrix(N_CHEBYSHEV), device=device)
    nodes_u = torch.as_tensor(_chebyshev_nodes(N_CHEBYSHEV), device=device)
    for region in range(n_region):
        changes = g_ends[region] * g_ends[region + 1] <= 0
        sel = changes.nonzero().flatten()
        if sel.numel() == 0:
            continue
        lo_t, hi_t = ends[region], ends[region + 1]
        half = 0.5 * (hi_t - lo_t)
        mid = 0.5 * (hi_t + lo_t)
        node_t = mid + half * nodes_u
        hn = _weights(values, node_t)
        snp_w, snp_x = snp_side(("region", region), hn, sel)
        node_gram = _snp_gram(_fixed_gram(hn, fixed), snp_w, snp_x,
                              hn @ (snps_rot[:, sel] * trait_rot[:, None]))  # (N, s, r, r)
        coef_gram = torch.einsum("kj,jsab->ksab", fit, node_gram)
        node_logdet, _ = _logdet_h(values, node_t)
        coef_logdet = fit @ node_logdet
        zz = logdet_zz[sel]

        def at(u: torch.Tensor, idx=None, coef_gram=coef_gram, coef_logdet=coef_logdet, half=half,
               zz=zz):
            coef = coef_gram if idx is None else coef_gram[:, idx]
            basis, d_basis = _chebyshev_basis(u, N_CHEBYSHEV)
            gram = torch.einsum("sk,ksab->sab", basis, coef)
            d_gram = torch.einsum("sk,ksab->sab", d_basis, coef) / half
            value, derivative, _ = _reml(gram, d_gram, basis @ coef_logdet, (d_basis @ coef_logdet) / half,
                                         zz if idx is None else zz[idx], c + 1, df)
            return value, derivative, gram

        lower = torch.full((len(sel),), -1.0, dtype=torch.float64, device=device)
        u_root = _illinois(lambda u, idx, at=at: at(u, idx)[1], lower, -lower,
                           g_ends[region, sel], g_ends[region + 1, sel])
        f_root, _, gram_root = at(u_root)
        better = f_root > best_f[sel]
        upd = sel[better]
        best_f[upd] = f_root[better]
        best_t[upd] = (mid + half * u_root)[better]
        best_gram[upd] = gram_root[better]

    for end in (0, n_ends - 1):
        better = f_ends[end] > best_f
        best_f = torch.where(better, f_ends[end], best_f)
        best_t = torch.where(better, ends[end], best_t)
        best_gram[better] = gram_ends[end][better]

    beta, se, p = _wald(best_gram, c, df)
    return LmmResult(beta=beta, se=se, p=p, lambda_=torch.exp(best_t).cpu().numpy(),
                     logl=best_f.cpu().numpy())


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
    kinship : (n, n) kinship of these individuals, already double-centred.
    covariates : (n, c) covariates with the intercept column.
    traits : (n, t) phenotypes without missing values.
    """

    def __init__(self, kinship: np.ndarray, covariates: np.ndarray, traits: np.ndarray,
                 device: torch.device | None = None):
        self.eigen = eigendecompose(kinship, device)
        self.device = self.eigen.vectors.device
        self._ut = self.eigen.vectors.T.contiguous()
        self._ut_snps = self._ut.to(SNP_ROTATION_DTYPE)
        self.covariates_rot = self.rotate(covariates)
        self.traits_rot = self.rotate(traits)

    @cached_property
    def null(self) -> list[NullModel]:
        """REML null model of each trait (computed on first use)."""
        with _torch_threads(1, self.device):
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
        n_traits = self.traits_rot.shape[1]
        shared: dict | None = {} if n_traits > 1 else None
        with _torch_threads(1, self.device):
            return [lmm_scan(self.eigen, self.covariates_rot, self.traits_rot[:, j], snps_rot, shared=shared)
                    for j in range(self.traits_rot.shape[1])]


@contextlib.contextmanager
def _torch_threads(count: int, device: torch.device):
    """Run CPU torch work on ``count`` threads: the per-SNP search is many small element-wise steps that
    gain nothing from a second thread and lose a lot when the cores are shared (threads spin)."""
    if device.type != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)
