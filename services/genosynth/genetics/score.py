"""Score test of a binary trait with a saddlepoint approximation (SPA; Dey et al. 2017, AJHG 101:37).

Null model: logistic regression ``logit mu = C a + offset`` (covariates ``C`` with intercept, ``offset``
a fixed genetic prediction, e.g. a LOCO prediction). For a SNP ``g`` the score is ``U = g'(y - mu)`` and
its null variance ``V = g~' W g~`` with ``W = diag(mu (1 - mu))`` and ``g~ = g - C (C'WC)^-1 C'W g`` the
genotype adjusted for the covariates. The normal approximation ``U / sqrt(V)`` is poorly calibrated in
the tails when cases are rare; where ``|U| / sqrt(V)`` exceeds ``cutoff`` the p-value is the
Lugannani-Rice saddlepoint approximation of ``P(|U| >= |u|)`` from the exact cumulant generating
function of ``U = sum g~_i (y_i - mu_i)`` under independent ``y_i ~ Bernoulli(mu_i)``::

    K(t) = sum_i log(1 - mu_i + mu_i exp(g~_i t)) - t g~_i mu_i
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special


def logistic_null(y: np.ndarray, covariates: np.ndarray, offset: np.ndarray | None = None, *,
                  max_iter: int = 50, tol: float = 1e-10) -> np.ndarray:
    """Fitted probabilities of the null logistic model by iteratively reweighted least squares.

    Parameters
    ----------
    y : (n,) 0/1; covariates : (n, q) with an intercept column; offset : (n,) on the logit scale

    Returns
    -------
    mu : (n,) fitted probabilities
    """
    offset = np.zeros(len(y)) if offset is None else offset
    coef = np.zeros(covariates.shape[1])
    mean = float(np.clip(y.mean(), 1e-6, 1 - 1e-6))
    eta = offset + np.log(mean / (1 - mean))
    for _ in range(max_iter):
        mu = special.expit(eta)
        weight = np.maximum(mu * (1 - mu), 1e-12)
        working = eta - offset + (y - mu) / weight
        hessian = covariates.T @ (covariates * weight[:, None])
        new = np.linalg.solve(hessian, covariates.T @ (weight * working))
        eta = offset + covariates @ new
        if np.max(np.abs(new - coef)) < tol:
            break
        coef = new
    return special.expit(eta)


@dataclass
class ScoreResult:
    """Per SNP, each (k,): ``beta = U / V`` (one-step log odds ratio), ``se = 1 / sqrt(V)``, ``p``
    (SPA where ``|z|`` > cutoff, normal elsewhere) and ``spa`` (whether the SPA was used)."""

    beta: np.ndarray
    se: np.ndarray
    p: np.ndarray
    spa: np.ndarray


def score_test(genotypes: np.ndarray, y: np.ndarray, mu: np.ndarray, covariates: np.ndarray, *,
               cutoff: float = 2.0) -> ScoreResult:
    """Score test of each SNP with the SPA in the tails.

    Parameters
    ----------
    genotypes : (n, k) mean-imputed dosages; y : (n,) 0/1; mu : (n,) null fitted probabilities
    covariates : (n, q) the null model's covariates (intercept included)
    """
    g = np.asarray(genotypes, dtype=np.float64)
    weight = mu * (1 - mu)
    cwc = covariates.T @ (covariates * weight[:, None])
    adjusted = g - covariates @ np.linalg.solve(cwc, covariates.T @ (g * weight[:, None]))
    score = adjusted.T @ (y - mu)
    variance = (adjusted**2 * weight[:, None]).sum(axis=0)
    usable = variance > 1e-12
    safe_var = np.where(usable, variance, 1.0)
    z = score / np.sqrt(safe_var)
    p = np.where(usable, 2 * special.ndtr(-np.abs(z)), 1.0)
    tail = usable & (np.abs(z) > cutoff)
    if tail.any():
        p[tail] = spa_pvalue(adjusted[:, tail], mu, score[tail], variance[tail])
    se = np.where(usable, 1 / np.sqrt(safe_var), np.inf)
    return ScoreResult(beta=np.where(usable, score / safe_var, 0.0), se=se, p=p, spa=tail)


def _cgf(t: np.ndarray, g: np.ndarray, logit_mu: np.ndarray, mu: np.ndarray):
    """K, K' and K'' of U at ``t`` (k,), for adjusted genotypes ``g`` (n, k)."""
    a = g * t[None, :]
    shifted = logit_mu[:, None] + a
    s = special.expit(shifted)
    k0 = (np.logaddexp(0.0, shifted) - np.logaddexp(0.0, logit_mu)[:, None] - a * mu[:, None]).sum(axis=0)
    k1 = (g * (s - mu[:, None])).sum(axis=0)
    k2 = (g**2 * s * (1 - s)).sum(axis=0)
    return k0, k1, k2


def _saddlepoint(q: np.ndarray, g: np.ndarray, logit_mu: np.ndarray, mu: np.ndarray, variance: np.ndarray,
                 iterations: int = 100) -> np.ndarray:
    """Root ``t`` of ``K'(t) = q`` by Newton's method with step halving (K' increases in t)."""
    t = q / variance
    _, k1, k2 = _cgf(t, g, logit_mu, mu)
    for _ in range(iterations):
        residual = k1 - q
        if np.all(np.abs(residual) <= 1e-10 * np.maximum(np.sqrt(variance), 1.0)):
            break
        step = residual / np.maximum(k2, 1e-300)
        for _ in range(30):
            trial = t - step
            _, t1, t2 = _cgf(trial, g, logit_mu, mu)
            worse = np.abs(t1 - q) > np.abs(residual)
            if not worse.any():
                break
            step = np.where(worse, step / 2, step)
        t, k1, k2 = trial, t1, t2
    return t


def spa_pvalue(adjusted: np.ndarray, mu: np.ndarray, score: np.ndarray, variance: np.ndarray) -> np.ndarray:
    """Two-sided SPA p-value ``P(U >= |u|) + P(U <= -|u|)``.

    Parameters
    ----------
    adjusted : (n, k) covariate-adjusted genotypes; mu : (n,); score, variance : (k,) observed U and V
    """
    logit_mu = special.logit(np.clip(mu, 1e-12, 1 - 1e-12))
    total = np.zeros(len(score))
    for sign in (1.0, -1.0):
        q = sign * np.abs(score)
        t = _saddlepoint(q, adjusted, logit_mu, mu, variance)
        k0, _, k2 = _cgf(t, adjusted, logit_mu, mu)
        w = np.sign(t) * np.sqrt(np.maximum(2 * (t * q - k0), 0.0))
        v = t * np.sqrt(np.maximum(k2, 1e-300))
        with np.errstate(divide="ignore", invalid="ignore"):
            corrected = w + np.log(v / w) / w
        # Lugannani-Rice: P(U >= q) = 1 - Phi(corrected) for q > 0, P(U <= q) = Phi(corrected) for q < 0.
        tail = special.ndtr(-corrected) if sign > 0 else special.ndtr(corrected)
        # At w -> 0 the approximation is 0/0; the normal tail is exact enough there.
        normal = special.ndtr(-np.abs(score) / np.sqrt(variance))
        total += np.where(np.isfinite(corrected) & (np.abs(w) > 1e-6), tail, normal)
    return np.minimum(total, 1.0)
