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
        # LAPACK's divide-and-conquer (numpy's eigh: several times faster than torch's CPU eigh, and it
        # releases the GIL, so that :func:`eigendecompose_many` runs several at once). It runs on one
        # thread, always: its reduction gives different low bits on different thread counts (so a thread
        # count chosen at run time would make two runs differ), and on shared cores the threaded reduction
        # spins and runs up to 15x slower.
        k = kinship.cpu().numpy() if isinstance(kinship, torch.Tensor) else np.asarray(kinship, np.float64)
        with threadpool_limits(limits=1, user_api="blas"):
            values_np, vectors_np = np.linalg.eigh(k)
        values, vectors = torch.from_numpy(values_np), torch.from_numpy(vectors_np)
    else:
        values, vectors = torch.linalg.eigh(torch.as_tensor(kinship, dtype=torch.float64, device=device))
    values = torch.where(values < EIGEN_ZERO, torch.zeros_like(values), values)
    return Eigen(values=values, vectors=vectors)


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
    d2_gram: torch.Tensor | None = None,
    d2_logdet_h: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, torch.Tensor | None]:
    """Restricted log-likelihood and its first (and second) derivative in ``t = log lambda``.

    Parameters
    ----------
    gram : (..., r, r) ``A^T H A`` with the response in the last column.
    d_gram : (..., r, r) its derivative in ``t``, or None for the value only.
    logdet_h, d_logdet_h : ``sum log(1 + lambda d)`` and its derivative, broadcastable to ``...``.
    logdet_zz : ``log |Z'Z|`` of the projected columns (unweighted), broadcastable to ``...``.
    n_project : number of leading columns ``Z`` projected out (covariates, plus the SNP under H1).
    df : ``n - n_project``.
    d2_gram, d2_logdet_h : second derivatives in ``t`` (with ``d_gram``), for Newton's method.

    Returns
    -------
    (value, derivative or None, P, second derivative or None) with P (..., r - n_project,
    r - n_project) the block left after projecting out the ``n_project`` columns.
    """
    p, dp, d2p = gram, d_gram, d2_gram if d_gram is not None else None
    logdet = torch.zeros_like(gram[..., 0, 0])
    d_logdet = torch.zeros_like(logdet) if dp is not None else None
    d2_logdet = torch.zeros_like(logdet) if d2p is not None else None
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
            if d2p is not None:
                d2pkk = d2p[..., 0, 0]
                d2col = d2p[..., 1:, 0]
                d2_logdet = d2_logdet + d2pkk / pkk - (dpkk / pkk) ** 2
                d2_outer = (d2col[..., :, None] * col[..., None, :] + col[..., :, None] * d2col[..., None, :]
                            + 2 * dcol[..., :, None] * dcol[..., None, :])
                r1, r2 = (dpkk / pkk)[..., None, None], (d2pkk / pkk)[..., None, None]
                # Second derivative of outer / pkk, with q = outer / pkk.
                d2q = (d2_outer - 2 * d_outer * r1 - outer * r2 + 2 * outer * r1 * r1) / pkk[..., None, None]
                d2p = d2p[..., 1:, 1:] - d2q
            dp = dp[..., 1:, 1:] - d_outer / pkk[..., None, None] + outer * (dpkk / pkk**2)[..., None, None]
        p = p[..., 1:, 1:] - outer / pkk[..., None, None]
    p_yy = p[..., -1, -1]
    # GEMMA guards the same round-off: an exactly explained response would give log(0).
    p_yy = torch.where(p_yy == 0, torch.full_like(p_yy, 1e-8), p_yy)
    const = 0.5 * df * (math.log(df) - math.log(2 * math.pi) - 1.0)
    value = const - 0.5 * logdet_h - 0.5 * (logdet - logdet_zz) - 0.5 * df * torch.log(p_yy)
    if dp is None:
        return value, None, p, None
    ratio = dp[..., -1, -1] / p_yy
    derivative = -0.5 * d_logdet_h - 0.5 * d_logdet - 0.5 * df * ratio
    if d2p is None:
        return value, derivative, p, None
    second = -0.5 * d2_logdet_h - 0.5 * d2_logdet - 0.5 * df * (d2p[..., -1, -1] / p_yy - ratio**2)
    return value, derivative, p, second


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


def _logdet_h(values: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``sum log(1 + lambda d)`` and its first two ``t``-derivatives ``sum s / (1 + s)`` and
    ``sum s / (1 + s)^2`` (``s = lambda d``), shapes (g,) for log-lambdas ``t`` (g,)."""
    scaled = torch.exp(t)[:, None] * values[None, :]
    share = scaled / (1.0 + scaled)
    return torch.log1p(scaled).sum(dim=1), share.sum(dim=1), (share / (1.0 + scaled)).sum(dim=1)


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
        logdet_h, d_logdet_h, _ = _logdet_h(values, t)
        return _reml(gram, d_gram, logdet_h, d_logdet_h, logdet_zz, c, df)[:3]

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
        value, derivative, _, d2 = _reml(
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
    ends = _region_ends(device, l_min, l_max, n_region)
    n_ends = len(ends)
    h = _weights(values, ends)
    ones = torch.ones((1, n), dtype=torch.float64, device=device)
    end_sums = _Sums.of(torch.cat([h, h * h - h, ones], dim=0), covariates_rot, traits_rot, snps_rot)
    logdet_h, d_logdet_h, _ = _logdet_h(values, ends)
    nodes_u = torch.as_tensor(_chebyshev_nodes(N_CHEBYSHEV), device=device)

    columns = torch.arange(m * t, device=device)
    snp, trait = columns // t, columns % t
    gram_all = end_sums.gram(snp, trait)
    gram_ends, d_gram_ends = gram_all[:n_ends], gram_all[n_ends:2 * n_ends]
    logdet_zz = _logdet_zz(gram_all[-1], c + 1)  # (k,)
    f_ends, g_ends, _, _ = _reml(gram_ends, d_gram_ends, logdet_h[:, None], d_logdet_h[:, None],
                                 logdet_zz[None, :], c + 1, df)
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
        node_sums = _Sums.of(_weights(values, node_t), covariates_rot, traits_rot, snps_rot)
        node_logdet, _, _ = _logdet_h(values, node_t)
        interp = _Interpolant(node_sums.gram(snp[sel], trait[sel]), node_logdet, mid, half, logdet_zz[sel],
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
        with _torch_threads(1, self.device):
            return lmm_scan(self.eigen, self.covariates_rot, self.traits_rot, snps_rot)


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
