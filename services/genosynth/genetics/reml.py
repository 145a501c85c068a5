"""The REML null fit of the linear mixed model, and the restricted likelihood the per-SNP scan reuses.

Model (Zhou & Stephens 2012, Nature Genetics 44:821; Kang et al. 2008, Genetics 178:1709):
``y = W a + g + e`` with ``g ~ N(0, vg K)`` and ``e ~ N(0, ve I)``, written as GEMMA writes it,
``V = tau^-1 (lambda K + I)`` with ``lambda = vg / ve`` and ``tau = 1 / ve``. With ``K = U diag(d) U^T``
the covariance is diagonal in the eigen-coordinates, and with the weights ``h_i = 1 / (1 + lambda d_i)``
and the rotated columns ``A = U^T [Z, y]`` every quantity is a weighted sum: the Gram matrix
``G(lambda) = A^T diag(h) A`` gives the restricted log-likelihood (profiled over ``tau``)

    l_R(lambda) = df/2 (log df - log 2pi - 1) - 1/2 sum_i log(1 + lambda d_i)
                  - 1/2 log(|Z'HZ| / |Z'Z|) - df/2 log P_yy,

``df = n - c`` for ``c`` fixed-effect columns ``Z`` and ``P_yy`` the weighted residual sum of squares of
``y`` on ``Z`` (successive projections of ``G``, GEMMA's ``Pab`` recursion). ``l_R`` is maximised over
``lambda`` in ``[1e-5, 1e5]`` as GEMMA's ``CalcLambda('R')`` does: the sign of ``dl_R / dlog lambda`` at
the ends of 10 log-spaced regions, a root in each region where it changes sign, and the best root (or a
bound) wins. At the optimum ``ve = P_yy / df``, ``vg = lambda ve``, the GLS fixed effects solve
``(Z'HZ) a = Z'Hy``, and GEMMA's ``pve = s lambda / (s lambda + 1)`` with ``s = tr(K) / n``.

``fit_null`` is the null model of the GWAS (``gemma -lmm 1``'s "estimate in the null model" lines) and
the model phenotype synthesis refits as QTLs enter the fixed effects; the per-SNP scan of
``genosynth.gwas.lmm`` evaluates the same :func:`restricted_loglik` with the SNP as the last column of
``Z``. Arrays are torch float64 on one device (CUDA when available, :func:`genosynth.genetics.device.
pick_device`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from genosynth.genetics.device import pick_device, side_by_side, torch_threads

L_MIN = 1e-5  # GEMMA's search range of lambda = vg / ve
L_MAX = 1e5
N_REGION = 10  # log-spaced regions searched for a root of the derivative
EIGEN_ZERO = 1e-10  # GEMMA zeroes eigenvalues below this


@dataclass
class Eigen:
    """Eigendecomposition of a kinship on one set of individuals: ``K = U diag(d) U^T``.

    ``values`` (n,) ``d``, ``vectors`` (n, n) ``U``, both torch float64 on ``vectors.device``.
    """

    values: torch.Tensor
    vectors: torch.Tensor

    @property
    def trace(self) -> float:
        """``tr(K) / n``, the mean eigenvalue (GEMMA's scale of the pve)."""
        return float(self.values.mean())

    def rotate(self, values: np.ndarray | torch.Tensor) -> torch.Tensor:
        """``U^T values`` of (n,) or (n, k) values, as float64 on the decomposition's device."""
        device = self.vectors.device
        return self.vectors.T @ torch.as_tensor(np.asarray(values, dtype=np.float64), device=device)


def eigendecompose(kinship: np.ndarray | torch.Tensor, device: torch.device | None = None) -> Eigen:
    """Eigendecomposition of an (n, n) symmetric kinship, eigenvalues below 1e-10 set to 0 (as GEMMA).

    Parameters
    ----------
    kinship : (n, n) relatedness, numpy or torch.
    device : where the result lives (default :func:`pick_device`).
    """
    device = device or pick_device()
    if device.type == "cpu":
        # LAPACK's divide-and-conquer (numpy's eigh: two side by side on threads, it releases the GIL, take
        # 0.22 s each for n = 1,184, as torch's MKL eigh does). It runs on one thread, always: its
        # reduction gives different low bits on different thread counts (so a thread count chosen at run
        # time would make two runs differ), and on shared cores the threaded reduction spins and runs up
        # to 15x slower.
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
    return side_by_side(lambda k: eigendecompose(k, device), kinships, threads if device.type == "cpu" else 1)


@dataclass
class NullModel:
    """REML fit of the model without SNP.

    ``lambda_ = vg / ve``; ``pve = s lambda / (s lambda + 1)`` with ``s = tr(K) / n`` (GEMMA's
    definition); ``logl`` the restricted log-likelihood at the optimum; ``beta`` (c,) the GLS fixed effects
    of the covariate columns, in their order.
    """

    lambda_: float
    vg: float
    ve: float
    pve: float
    logl: float
    beta: np.ndarray

    @property
    def delta(self) -> float:
        """``ve / vg``: SNP-BLUP's ridge penalty per SNP (:func:`genosynth.genetics.ridge.blup_penalty`)."""
        return 1.0 / self.lambda_


def reml_weights(values: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """``h = 1 / (1 + e^t d)``, shape (g, n) for log-lambdas ``t`` (g,) and eigenvalues ``d`` (n,)."""
    return 1.0 / (1.0 + torch.exp(t)[:, None] * values[None, :])


def restricted_loglik(
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
    """Restricted log-likelihood ``l_R`` and its first (and second) derivative in ``t = log lambda``.

    Parameters
    ----------
    gram : (..., r, r) ``A^T H A`` with the response in the last column.
    d_gram : (..., r, r) its derivative in ``t``, or None for the value only.
    logdet_h, d_logdet_h : ``sum log(1 + lambda d)`` and its derivative (:func:`logdet_v`),
        broadcastable to ``...``.
    logdet_zz : ``log |Z'Z|`` of the projected columns (unweighted, :func:`logdet_zz`), broadcastable
        to ``...``.
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


def snp_loglik(q: torch.Tensor, p_xx: torch.Tensor, p_xy: torch.Tensor, p_yy: torch.Tensor,
               zz: torch.Tensor, df: float) -> torch.Tensor:
    """:func:`restricted_loglik` with one SNP ``x`` as the last fixed column, in closed form from what
    is left after projecting the covariates ``W`` out in the metric ``H``.

    Each input carries its first ``o - 1`` derivatives in ``t = log lambda`` on a leading axis of
    length ``o`` (1, 2 or 3), then any shape ``...`` (broadcast together):

    q : (o, ...) ``sum log(1 + lambda d) + log |W'HW|``, the part without the SNP;
    p_xx, p_xy, p_yy : (o, ...) ``x'Hx``, ``x'Hy`` and ``y'Hy`` less their projections on ``W``
        (Schur complements of ``W'HW``);
    zz : (...) ``log |Z'Z|`` of the unweighted columns ``Z = [W, x]``;
    df : ``n - c - 1``.

    With ``R = p_yy - p_xy^2 / p_xx`` (the residual sum of squares of ``y`` on ``[W, x]``),
    ``l_R = df/2 (log df - log 2pi - 1) - q/2 - (log p_xx - zz)/2 - df/2 log R``.
    Returns ``l_R`` and its derivatives (o, ...).
    """
    a0, b0 = p_xy[0], p_xx[0]
    r0 = p_yy[0] - a0 * a0 / b0
    r0 = torch.where(r0 == 0, torch.full_like(r0, 1e-8), r0)  # GEMMA's guard, as restricted_loglik
    const = 0.5 * df * (math.log(df) - math.log(2 * math.pi) - 1.0)
    out = [const - 0.5 * q[0] - 0.5 * (torch.log(b0) - zz) - 0.5 * df * torch.log(r0)]
    order = p_xx.shape[0]
    if order > 1:
        a1, b1 = p_xy[1], p_xx[1]
        r1 = p_yy[1] - (2 * a0 * a1 - a0 * a0 * b1 / b0) / b0
        out.append(-0.5 * q[1] - 0.5 * b1 / b0 - 0.5 * df * r1 / r0)
    if order > 2:
        a2, b2 = p_xy[2], p_xx[2]
        # Second derivative of a^2 / b.
        q2 = (2 * a1 * a1 + 2 * a0 * a2) / b0 - (4 * a0 * a1 * b1 + a0 * a0 * b2) / (b0 * b0) \
            + 2 * a0 * a0 * b1 * b1 / (b0 * b0 * b0)
        r2 = p_yy[2] - q2
        out.append(-0.5 * q[2] - 0.5 * (b2 / b0 - (b1 / b0) ** 2) - 0.5 * df * (r2 / r0 - (r1 / r0) ** 2))
    return torch.stack(torch.broadcast_tensors(*out))


def logdet_zz(gram_ones: torch.Tensor, n_project: int) -> torch.Tensor:
    """``log |Z'Z|`` of the first ``n_project`` columns of unweighted Gram matrices (..., r, r), shape
    ``...`` (successive projections, as :func:`restricted_loglik`)."""
    p = gram_ones
    out = torch.zeros_like(p[..., 0, 0])
    for k in range(n_project):
        pkk = p[..., k, k]
        out = out + torch.log(pkk)
        col = p[..., :, k]
        p = p - col[..., :, None] * col[..., None, :] / pkk[..., None, None]
    return out


def logdet_v(values: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``log |lambda K + I| = sum log(1 + lambda d)`` and its first two ``t``-derivatives
    ``sum s / (1 + s)`` and ``sum s / (1 + s)^2`` (``s = lambda d``), each (g,) for log-lambdas ``t`` (g,)
    and eigenvalues ``d`` (n,)."""
    scaled = torch.exp(t)[:, None] * values[None, :]
    share = scaled / (1.0 + scaled)
    return torch.log1p(scaled).sum(dim=1), share.sum(dim=1), (share / (1.0 + scaled)).sum(dim=1)


def region_ends(device: torch.device, l_min: float = L_MIN, l_max: float = L_MAX,
                n_region: int = N_REGION) -> torch.Tensor:
    """The ``n_region + 1`` log-lambdas (float64) that cut ``[log l_min, log l_max]`` into equal regions."""
    step = math.log(l_max / l_min) / n_region
    return torch.tensor([math.log(l_min) + step * i for i in range(n_region + 1)], dtype=torch.float64,
                        device=device)


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
    """REML null model from rotated covariates and trait, as GEMMA's ``CalcLambda('R')``.

    Parameters
    ----------
    eigen : eigendecomposition of the kinship of the n individuals.
    covariates_rot : (n, c) ``U^T W`` (intercept included when wanted), float64 on ``eigen``'s device.
    trait_rot : (n,) ``U^T y``.
    l_min, l_max, n_region : the search range of ``lambda`` and its number of log-spaced regions.
    """
    # One small problem of many element-wise steps: one CPU thread (see torch_threads).
    with torch_threads(1, eigen.values.device):
        return _fit_null(eigen, covariates_rot, trait_rot, l_min, l_max, n_region)


def _fit_null(eigen: Eigen, covariates_rot: torch.Tensor, trait_rot: torch.Tensor, l_min: float,
              l_max: float, n_region: int) -> NullModel:
    values = eigen.values
    n, c = covariates_rot.shape
    df = n - c
    fixed = torch.cat([covariates_rot, trait_rot[:, None]], dim=1)
    zz = logdet_zz(fixed.T @ fixed, c)

    def evaluate(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h = reml_weights(values, t)
        gram = _fixed_gram(h, fixed)
        d_gram = _fixed_gram(h * h - h, fixed)
        logdet_h, d_logdet_h, _ = logdet_v(values, t)
        return restricted_loglik(gram, d_gram, logdet_h, d_logdet_h, zz, c, df)[:3]

    ends = region_ends(values.device, l_min, l_max, n_region)
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
    if best_t is None:
        raise ValueError(f"REML null fit: the restricted likelihood is not finite on [{l_min:g}, {l_max:g}] "
                         "(collinear covariates or a constant trait)")
    t_best = torch.tensor([best_t], dtype=torch.float64, device=values.device)
    _, _, projected = evaluate(t_best)
    gram = _fixed_gram(reml_weights(values, t_best), fixed)[0]
    beta = torch.linalg.solve(gram[:c, :c], gram[:c, c]) if c else gram.new_zeros(0)
    lam = math.exp(best_t)
    ve = float(projected[0, -1, -1]) / df
    pve = eigen.trace * lam / (eigen.trace * lam + 1.0)
    return NullModel(lambda_=lam, vg=lam * ve, ve=ve, pve=pve, logl=best_f, beta=beta.cpu().numpy())


def fit_null(kinship: np.ndarray, y: np.ndarray, covariates: np.ndarray | None = None,
             device: torch.device | None = None) -> NullModel:
    """REML fit of ``y = W a + g + e`` (no SNP); the intercept is always added to ``covariates``.

    Parameters
    ----------
    kinship : (n, n) relatedness (used as given; GEMMA double-centres it first, see
        :func:`genosynth.genetics.kinship.double_centre`).
    y : (n,) trait without missing values.
    covariates : (n, k) extra covariates or None; ``beta`` of the result is (1 + k,), intercept first.
    device : where the work runs (default :func:`pick_device`).

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
    eigen = eigendecompose(kinship, device)
    n = len(y)
    w = np.ones((n, 1)) if covariates is None else np.column_stack([np.ones(n), covariates])
    return fit_null_rotated(eigen, eigen.rotate(w), eigen.rotate(y))
