"""Whole-genome ridge regression (SNP-BLUP), fitted SNP block by SNP block without an n x n matrix.

The model is ``r = Xc u + e`` with ``u ~ N(0, vg / m)`` per SNP and ``e ~ N(0, ve)``; its BLUP is the
ridge solution ``u = (Xc^T Xc + lam I)^-1 Xc^T r`` with ``lam = m ve / vg`` (Henderson 1975; Meuwissen et
al. 2001). We solve the dual system ``(Xc Xc^T + lam I) alpha = r`` by conjugate gradients, whose products
``Xc (Xc^T v)`` are summed over SNP blocks, so memory is ``n x block`` on top of ``Xc`` itself; then
``u = Xc^T alpha``. When the eigendecomposition of ``Xc Xc^T`` is at hand (a cohort small enough for
REML on its kinship), :func:`dual_solve` gives ``alpha`` exactly in ``O(n^2)`` instead.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

BLOCK = 4096


def gram_product(x: np.ndarray, v: np.ndarray, block: int = BLOCK, dtype: type = np.float64) -> np.ndarray:
    """``X (X^T v)`` summed over SNP blocks.

    Parameters
    ----------
    x : (n, m) centred genotypes (any float dtype)
    v : (n, t)
    dtype : the products' dtype; ``np.float32`` on float32 genotypes makes no copy of a block and runs at
        twice the BLAS speed (relative error about 1e-6); the sum is float64 either way

    Returns
    -------
    (n, t) float64
    """
    out = np.zeros((x.shape[0], v.shape[1]))
    w = v.astype(dtype, copy=False)
    for lo in range(0, x.shape[1], block):
        part = x[:, lo : lo + block].astype(dtype, copy=False)
        out += part @ (part.T @ w)
    return out


def conjugate_gradient(apply: Callable[[np.ndarray], np.ndarray], b: np.ndarray, *, tol: float = 1e-8,
                       max_iter: int = 500, start: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    """Solve ``A z = b`` for a symmetric positive definite ``A`` given as ``apply(v) = A v``.

    Parameters
    ----------
    b : (n, t), one right-hand side per column, solved together (one product per iteration).
    start : (n, t) a first guess (default zero); the tolerance stays relative to ``b``.

    Returns
    -------
    z : (n, t) and the number of iterations run (stops when every column's relative residual < ``tol``).
    """
    b = b.astype(np.float64)
    target = tol**2 * np.maximum((b * b).sum(axis=0), 1e-300)
    if start is None:
        z, r = np.zeros_like(b), b.copy()
    else:
        z = start.astype(np.float64).copy()
        r = b - apply(z)
    rr = (r * r).sum(axis=0)
    if np.all(rr <= target):
        return z, 0
    p = r.copy()
    for iteration in range(1, max_iter + 1):
        ap = apply(p)
        step = rr / np.maximum((p * ap).sum(axis=0), 1e-300)
        z += p * step
        r -= ap * step
        new = (r * r).sum(axis=0)
        if np.all(new <= target):
            return z, iteration
        p = r + p * (new / np.maximum(rr, 1e-300))
        rr = new
    return z, max_iter


def ridge_effects(x: np.ndarray, r: np.ndarray, lam: float | np.ndarray, *, block: int = BLOCK,
                  tol: float = 1e-8) -> np.ndarray:
    """Per-SNP ridge (BLUP) effects ``(X^T X + lam I)^-1 X^T r``, via the dual system.

    Parameters
    ----------
    x : (n, m) centred genotypes of the individuals where ``r`` is observed
    r : (n,) or (n, t) responses with fixed effects already removed
    lam : penalty, scalar or one per column of ``r`` (BLUP: ``m * ve / vg``)

    Returns
    -------
    (m,) or (m, t) float64 effects
    """
    column = r.ndim == 1
    rhs = r[:, None] if column else r
    lam_t = np.broadcast_to(np.asarray(lam, dtype=np.float64), (rhs.shape[1],))
    alpha, _ = conjugate_gradient(lambda v: gram_product(x, v, block) + v * lam_t, rhs, tol=tol)
    effects = dual_effects(x, alpha, block)
    return effects[:, 0] if column else effects


def dual_effects(x: np.ndarray, alpha: np.ndarray, block: int = BLOCK) -> np.ndarray:
    """Per-SNP effects ``X^T alpha`` of dual coefficients, an ``(n, block)`` float64 slice of ``x`` at a
    time.

    Parameters
    ----------
    x : (n, m) centred genotypes (any float dtype); alpha : (n, t)

    Returns
    -------
    (m, t) float64
    """
    effects = np.empty((x.shape[1], alpha.shape[1]))
    for lo in range(0, x.shape[1], block):
        effects[lo : lo + block] = x[:, lo : lo + block].astype(np.float64, copy=False).T @ alpha
    return effects


def genetic_values(x: np.ndarray, effects: np.ndarray, block: int = BLOCK) -> np.ndarray:
    """``X effects`` (n, k) of per-SNP ``effects`` (m, k), float64, an ``(n, block)`` slice of ``x`` at a
    time."""
    out = np.zeros((x.shape[0], effects.shape[1]))
    for lo in range(0, x.shape[1], block):
        out += x[:, lo : lo + block].astype(np.float64) @ effects[lo : lo + block]
    return out


def dual_solve(gram_values: np.ndarray, gram_vectors: np.ndarray, r: np.ndarray, lam: float) -> np.ndarray:
    """Dual ridge coefficients ``alpha = (X X^T + lam I)^-1 r`` from ``X X^T = V diag(s) V^T``.

    Parameters
    ----------
    gram_values : (n,) ``s``; gram_vectors : (n, n) ``V`` (orthonormal columns); r : (n,) or (n, t)
    lam : penalty > 0

    Returns
    -------
    ``alpha`` with the shape of ``r``, float64; the effects are ``X^T alpha`` and the genetic values
    ``X X^T alpha = r - lam alpha``.
    """
    rotated = gram_vectors.T @ r
    scale = 1.0 / (gram_values + lam)
    return gram_vectors @ (rotated * (scale if r.ndim == 1 else scale[:, None]))


def blup_penalty(n_snps: int, delta: float) -> float:
    """Ridge penalty of SNP-BLUP: ``m * delta`` with ``delta = ve / vg`` (``u ~ N(0, vg / m)``)."""
    return float(n_snps) * max(float(delta), 1e-6)


def cv_penalty(x: np.ndarray, r: np.ndarray, grid: np.ndarray, *, folds: int = 5, seed: int = 0,
               block: int = BLOCK) -> tuple[float, np.ndarray]:
    """Ridge penalty chosen by K-fold cross-validation (the level-0 choice of a REGENIE-style fit).

    Parameters
    ----------
    x : (n, m); r : (n,); grid : (k,) candidate penalties

    Returns
    -------
    the penalty of least out-of-fold squared error and the (k,) out-of-fold mean squared errors.
    """
    fold = np.random.default_rng(seed).permutation(len(r)) % folds
    errors = np.zeros(len(grid))
    for f in range(folds):
        train, test = fold != f, fold == f
        rhs = np.repeat(r[train, None], len(grid), axis=1)
        xt = x[train]
        alpha, _ = conjugate_gradient(lambda v, xt=xt: gram_product(xt, v, block) + v * grid[None, :], rhs,
                                      tol=1e-6)
        # Prediction on the held-out fold: X_test X_train^T alpha, SNP block by block.
        pred = np.zeros((int(test.sum()), len(grid)))
        for lo in range(0, x.shape[1], block):
            pred += x[test, lo : lo + block].astype(np.float64) @ (xt[:, lo : lo + block].astype(np.float64).T
                                                                   @ alpha)
        errors += ((pred - r[test, None]) ** 2).sum(axis=0)
    errors /= len(r)
    return float(grid[int(np.argmin(errors))]), errors
