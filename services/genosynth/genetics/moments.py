"""Variance components and GLS of the kinship model without an n x n matrix, for cohorts too large for REML.

The model is the one :mod:`genosynth.genetics.reml` fits, ``y = Z b + g + e`` with ``g ~ N(0, vg K)``,
``e ~ N(0, ve I)`` and ``K = X X^T / m`` (centred genotypes ``X``, n x m), but every quantity comes from
products with ``X`` summed SNP block by SNP block, so memory is ``n x k`` vectors on top of ``X``:

* **Variance components by Haseman-Elston regression** (the method of moments of RHE-reg, Wu &
  Sankararaman 2018, Am J Hum Genet 103:1039). With ``P = I - Q Q^T`` the projection off the fixed
  effects (``Q`` an orthonormal basis of ``Z``), ``(vg, ve)`` solve::

      [tr(PKPK)  tr(PK)] [vg]   [y^T PKP y]
      [tr(PK)    n - c ] [ve] = [y^T P y  ]

  ``tr(PK) = (sum x^2 - |X^T Q|^2) / m`` and ``y^T PKP y = |X^T P y|^2 / m`` are exact;
  ``tr(PKPK) = |PKP|_F^2`` is Hutchinson's estimate ``mean_b |PKP z_b|^2`` over Rademacher vectors
  ``z_b``. The estimate is unbiased but less efficient than REML; ``vg / ve`` is kept inside REML's search
  range ``[1e-5, 1e5]``.
* **REML by Monte Carlo** (BOLT-REML's estimator, Loh et al. 2015, Nat Genet 47:284; its
  equation for the variance ratio): for a ratio ``delta = ve / vg``, the BLUP of the data gives effects
  ``u = X^T alpha`` and residuals ``e = lam alpha`` (``lam = m delta``, ``alpha`` the dual coefficients
  after the GLS fixed effects); the REML ratio is where ``|u|^2 / |e|^2`` of the data equals its mean
  over phenotypes simulated from the model at that ratio. The root in ``log delta`` is found by
  secant steps from the Haseman-Elston estimate; ``ve`` at that ratio is REML's ``y^T P y / (n - c)``
  (:func:`gls_effects`).
* **GLS fixed effects and dual ridge coefficients** by conjugate gradients on ``X X^T + lam I`` with
  ``lam = m ve / vg``, as ``V = (vg / m) (X X^T + lam I)``.

Several traits, each on its own individuals, are handled in one pass: their vectors are laid out on all
n individuals, zero where a trait is not observed (``masks``), and one product serves all of them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from genosynth.genetics.reml import L_MAX, L_MIN
from genosynth.genetics.ridge import BLOCK, conjugate_gradient, dual_effects, genetic_values, gram_product
from genosynth.genetics.wgr import project_out

#: Rademacher vectors of Hutchinson's estimate of tr(PKPK), per trait.
TRACE_VECTORS = 40
#: Phenotypes simulated per trait by the Monte Carlo REML (BOLT-REML uses 15 by default).
REML_SAMPLES = 15
#: Secant steps of the Monte Carlo REML, and the change of ``log delta`` at which it stops.
REML_STEPS, REML_TOLERANCE = 8, 0.01


def masked_gram(x: np.ndarray, v: np.ndarray, masks: np.ndarray, block: int = BLOCK) -> np.ndarray:
    """``M o X X^T (M o v)``: each column's Gram product over its own individuals, the products in the
    dtype of ``x`` (:func:`genosynth.genetics.ridge.gram_product`; float32 genotypes: error about 1e-6,
    below the solver's tolerance).

    Parameters
    ----------
    x : (n, m) centred genotypes; v : (n, k); masks : (n, k) 0/1, the individuals of each column

    Returns
    -------
    (n, k) float64
    """
    return masks * gram_product(x, masks * v, block, dtype=x.dtype.type)


def padded_solve(x: np.ndarray, rhs: np.ndarray, masks: np.ndarray, lams: np.ndarray, *,
                 start: np.ndarray | None = None, tol: float = 1e-5, max_iter: int = 1000,
                 block: int = BLOCK) -> tuple[np.ndarray, int]:
    """Dual ridge coefficients ``alpha_j = (X_j X_j^T + lam_j I)^-1 r_j`` of every column at once.

    Parameters
    ----------
    x : (n, m) centred genotypes; rhs : (n, k) right-hand sides, zero outside their masks
    masks : (n, k) 0/1 individuals of each column (``X_j`` is ``x`` on them); lams : (k,) penalties > 0
    start : (n, k) a starting guess (e.g. the previous solution), zero outside the masks

    Returns
    -------
    ``alpha`` (n, k) float64, zero outside the masks, and the conjugate-gradient iterations run.
    """
    lams = np.asarray(lams, dtype=np.float64)[None, :]
    return conjugate_gradient(lambda v: masked_gram(x, v, masks, block) + v * lams, rhs * masks, tol=tol,
                              max_iter=max_iter, start=None if start is None else start * masks)


def rademacher(shape: tuple[int, int], seed: int) -> np.ndarray:
    """Random signs (+1 / -1), float64, of ``shape``."""
    return np.random.default_rng([seed, 0x4E5]).integers(0, 2, size=shape).astype(np.float64) * 2.0 - 1.0


def he_components(x: np.ndarray, rows: Sequence[np.ndarray], fixed: Sequence[np.ndarray],
                  ys: Sequence[np.ndarray], *, vectors: int = TRACE_VECTORS, seed: int = 0,
                  row_squares: np.ndarray | None = None) -> np.ndarray:
    """Haseman-Elston variance components of several traits (see the module docstring), in two passes
    over ``x`` for all of them.

    Parameters
    ----------
    x : (n, m) centred genotypes of every individual
    rows : per trait, (n_t,) its individuals; fixed : per trait, (n_t, c_t) its fixed effects
    ys : per trait, (n_t,) its values
    vectors : Rademacher vectors per trait for ``tr(PKPK)``; seed : their seed
    row_squares : (n,) ``sum_j x_ij^2`` (computed when not given)

    Returns
    -------
    (t, 2) ``vg, ve`` per trait, with ``vg / ve`` inside ``[1e-5, 1e5]``.
    """
    n, m = x.shape
    t = len(rows)
    if row_squares is None:
        row_squares = row_square_sums(x)
    bases, projected_y, probes = [], [], []
    for j in range(t):
        q = np.linalg.qr(fixed[j])[0]
        z = rademacher((len(rows[j]), vectors), seed + j)
        parts = ((bases, q), (projected_y, project_out(q, ys[j])[:, None]), (probes, project_out(q, z)))
        for target, values in parts:
            padded = np.zeros((n, values.shape[1]))
            padded[rows[j]] = values
            target.append(padded)
    widths = [b.shape[1] for b in bases]
    crossed = dual_effects(x, np.concatenate([*bases, *projected_y, *probes], axis=1))  # (m, k)
    q_parts = np.split(crossed[:, : sum(widths)], np.cumsum(widths)[:-1], axis=1)
    py_parts = crossed[:, sum(widths) : sum(widths) + t]
    probe_cross = crossed[:, sum(widths) + t :]
    # K P z for every probe, then P again: P K P z (n, t * vectors).
    kz = genetic_values(x, probe_cross) / m
    out = np.empty((t, 2))
    for j in range(t):
        r = rows[j]
        kpz = kz[r, j * vectors : (j + 1) * vectors]
        q = bases[j][r]
        pkpz = project_out(q, kpz)
        a11 = float((pkpz * pkpz).sum() / vectors)
        a12 = float((row_squares[r].sum() - (q_parts[j] ** 2).sum()) / m)
        a22 = float(len(r) - q.shape[1])
        b1 = float((py_parts[:, j] ** 2).sum() / m)
        py = projected_y[j][r, 0]
        b2 = float(py @ py)
        out[j] = _bounded_solution(a11, a12, a22, b1, b2)
    return out


def _bounded_solution(a11: float, a12: float, a22: float, b1: float, b2: float) -> tuple[float, float]:
    """The 2 x 2 moment equations solved, ``vg / ve`` clipped to ``[L_MIN, L_MAX]`` (``ve`` refitted from
    the second equation when ``vg`` is clipped, ``vg`` from the first when ``ve`` is)."""
    det = a11 * a22 - a12 * a12
    vg = (b1 * a22 - a12 * b2) / det if det > 0 else 0.0
    ve = (a11 * b2 - a12 * b1) / det if det > 0 else b2 / max(a22, 1.0)
    if ve <= 0:
        vg = b1 / max(a11, 1e-300)
        return vg, vg / L_MAX
    ratio = vg / ve
    if ratio < L_MIN:
        ve = b2 / max(a22 + L_MIN * a12, 1e-300)
        return L_MIN * ve, ve
    if ratio > L_MAX:
        ve = b1 / max(L_MAX * a11 + a12, 1e-300)
        return L_MAX * ve, ve
    return vg, ve


def lay_out(n: int, rows: Sequence[np.ndarray], blocks: Sequence[np.ndarray], lams: Sequence[float],
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[int]]:
    """Each trait's columns ``blocks[j]`` (n_t, k_j) laid out on all n individuals: the right-hand sides
    (n, sum k), their masks, one penalty per column and each trait's first column."""
    total = sum(b.shape[1] for b in blocks)
    rhs, masks, penalties, offsets = np.zeros((n, total)), np.zeros((n, total)), np.empty(total), []
    lo = 0
    for r, b, lam in zip(rows, blocks, lams, strict=True):
        rhs[r, lo : lo + b.shape[1]] = b
        masks[r, lo : lo + b.shape[1]] = 1.0
        penalties[lo : lo + b.shape[1]] = lam
        offsets.append(lo)
        lo += b.shape[1]
    return rhs, masks, penalties, offsets


def gls_effects(x: np.ndarray, rows: Sequence[np.ndarray], fixed: Sequence[np.ndarray],
                ys: Sequence[np.ndarray], lams: Sequence[float], *, tol: float = 1e-5,
                ) -> tuple[list[np.ndarray], np.ndarray]:
    """GLS fixed effects ``b = (Z^T A^-1 Z)^-1 Z^T A^-1 y`` with ``A = X X^T + lam I`` of several traits, and
    their REML residual variances at those ratios, from one conjugate-gradient solve of every ``[Z, y]``.

    Parameters
    ----------
    x : (n, m); rows, fixed, ys : per trait as in :func:`he_components`; lams : per trait ``m ve / vg``

    Returns
    -------
    per trait, (c_t,) effects of its fixed-effect columns; and (t,) ``ve = lam y^T P y / (n_t - c_t)`` with
    ``P = A^-1 - A^-1 Z (Z^T A^-1 Z)^-1 Z^T A^-1`` (``V / ve = A / lam``).
    """
    rhs, masks, penalties, offsets = lay_out(x.shape[0], rows, [np.column_stack([z, y]) for z, y in
                                                                  zip(fixed, ys, strict=True)], lams)
    solved, _ = padded_solve(x, rhs, masks, penalties, tol=tol)
    effects, ve = [], np.empty(len(rows))
    for j, (r, z, y, lam, lo) in enumerate(zip(rows, fixed, ys, lams, offsets, strict=True)):
        inv = solved[r, lo : lo + z.shape[1] + 1]   # A^-1 [Z, y] on the trait's individuals
        gram = z.T @ inv[:, :-1]
        zy = z.T @ inv[:, -1]
        beta = np.linalg.solve(0.5 * (gram + gram.T), zy)
        effects.append(beta)
        ve[j] = float(lam) * (float(y @ inv[:, -1]) - float(zy @ beta)) / max(len(r) - z.shape[1], 1)
    return effects, ve


def mc_reml(x: np.ndarray, rows: Sequence[np.ndarray], fixed: Sequence[np.ndarray],
            ys: Sequence[np.ndarray], start: np.ndarray, *, samples: int = REML_SAMPLES, seed: int = 0,
            steps: int = REML_STEPS, tol: float = 1e-4) -> np.ndarray:
    """REML variance ratios ``ve / vg`` of several traits by Monte Carlo (see the module docstring).

    Parameters
    ----------
    x : (n, m) centred genotypes; rows, fixed, ys : per trait as in :func:`he_components`
    start : (t, 2) starting ``vg, ve`` (e.g. :func:`he_components`)
    samples : simulated phenotypes per trait; seed : their seed
    tol : the solver's tolerance (each step starts from the last step's solution)

    Returns
    -------
    (t,) ``delta = ve / vg`` per trait, inside ``[1e-5, 1e5]``; ``ve`` at it comes with the GLS effects
    (:func:`gls_effects` at ``lam = m delta``).
    """
    n, m = x.shape
    t = len(rows)
    rng = np.random.default_rng([seed, 0xB017])
    # Simulated genetic values X beta / sqrt(m) (beta ~ N(0, 1) per SNP) and residuals, fixed over the steps.
    genetic = genetic_values(x, rng.standard_normal((m, t * samples))) / np.sqrt(m)
    noise = rng.standard_normal((n, t * samples))
    bounds = (np.log(1.0 / L_MAX), np.log(1.0 / L_MIN))
    log_delta = np.clip(np.log(start[:, 1] / start[:, 0]), *bounds)
    previous, f_previous, solved = None, None, None
    for _ in range(steps):
        f, solved = _reml_equation(x, rows, fixed, ys, genetic, noise, np.exp(log_delta), samples, tol,
                                   solved)
        if previous is None:
            step = np.where(f > 0, -0.5, 0.5)
        else:
            # f rises with log delta: a secant step where the last two points show it, else a half step
            # against the sign of f.
            slope = (f - f_previous) / np.where(log_delta != previous, log_delta - previous, 1.0)
            step = np.where(slope > 0, -f / np.where(slope > 0, slope, 1.0), np.where(f > 0, -0.5, 0.5))
        step = np.clip(step, -2.0, 2.0)
        previous, f_previous = log_delta, f
        log_delta = np.clip(log_delta + step, *bounds)
        if np.all(np.abs(log_delta - previous) < REML_TOLERANCE):
            break
    return np.exp(log_delta)


def _reml_equation(x: np.ndarray, rows: Sequence[np.ndarray], fixed: Sequence[np.ndarray],
                   ys: Sequence[np.ndarray], genetic: np.ndarray, noise: np.ndarray, delta: np.ndarray,
                   samples: int, tol: float, start: np.ndarray | None,
                   ) -> tuple[np.ndarray, np.ndarray]:
    """``log(|u|^2 / |e|^2)`` of the data less the log of its mean over ``samples`` simulated phenotypes
    per trait (t,), at the ratios ``delta`` (t,), with ``u = X^T alpha``, ``e = lam alpha`` and ``alpha``
    the dual coefficients after the GLS fixed effects (``A = X X^T + lam I``); and the solved columns
    ``A^-1 [Z, y, simulated]`` of every trait (a start for the next ratios)."""
    n, m = x.shape
    blocks = []
    for j, (r, z, y) in enumerate(zip(rows, fixed, ys, strict=True)):
        own = slice(j * samples, (j + 1) * samples)
        blocks.append(np.column_stack([z, y, genetic[r, own] + np.sqrt(delta[j]) * noise[r, own]]))
    rhs, masks, penalties, offsets = lay_out(n, rows, blocks, m * delta)
    solved, _ = padded_solve(x, rhs, masks, penalties, tol=tol, start=start)
    # Dual coefficients after the GLS fixed effects: alpha = A^-1 v - A^-1 Z (Z^T A^-1 Z)^-1 Z^T A^-1 v.
    alphas = []
    for lo, r, z in zip(offsets, rows, fixed, strict=True):
        c = z.shape[1]
        inv_z = solved[:, lo : lo + c]
        inv_v = solved[:, lo + c : lo + c + 1 + samples]
        gram = z.T @ inv_z[r]
        alphas.append(inv_v - inv_z @ np.linalg.solve(0.5 * (gram + gram.T), z.T @ inv_v[r]))
    alpha = np.concatenate(alphas, axis=1)
    effects = dual_effects(x, alpha)
    ratio = (effects * effects).sum(axis=0) / np.maximum((alpha * alpha).sum(axis=0), 1e-300)
    data = ratio[:: 1 + samples]
    simulated = np.delete(ratio, np.arange(0, len(ratio), 1 + samples)).reshape(len(rows), samples)
    return np.log(data) - np.log(simulated.mean(axis=1)), solved


def he_pairs(x: np.ndarray, residuals: np.ndarray, *, vectors: int = TRACE_VECTORS, seed: int = 0,
             row_squares: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`genosynth.genetics.variance.haseman_elston_pairs` from products with ``x`` instead of the
    kinship: the numerators ``r_a^T K r_b - sum_i K_ii r_a,i r_b,i`` exactly, the denominators
    ``sum_{i != j} K_ij^2`` over the individuals observed for both by Hutchinson's estimate of
    ``|D K D|_F^2`` (one per distinct set of individuals).

    Parameters
    ----------
    x : (n, m) centred genotypes; residuals : (n, t), NaN where missing

    Returns
    -------
    genetic, product : (t, t) as :func:`haseman_elston_pairs` (the lower triangle; the diagonal and the
    upper triangle are NaN), NaN for pairs observed together on fewer than 3 individuals.
    """
    n, m = x.shape
    t = residuals.shape[1]
    if row_squares is None:
        row_squares = row_square_sums(x)
    diagonal = row_squares / m
    observed = ~np.isnan(residuals)
    values = np.where(observed, residuals, 0.0)
    pairs = [(a, b) for a in range(t) for b in range(a)]
    genetic, product = np.full((t, t), np.nan), np.full((t, t), np.nan)
    if not pairs:
        return genetic, product
    sides, keys, sets = [], [], {}
    for a, b in pairs:
        both = observed[:, a] & observed[:, b]
        count = max(int(both.sum()), 1)
        ra = np.where(both, values[:, a] - values[both, a].sum() / count, 0.0)
        rb = np.where(both, values[:, b] - values[both, b].sum() / count, 0.0)
        sides.append((ra, rb))
        key = np.packbits(both).tobytes()
        keys.append(key)
        sets.setdefault(key, both)
    set_keys = list(sets)
    probes = np.concatenate([rademacher((n, vectors), seed + i) * sets[k][:, None]
                             for i, k in enumerate(set_keys)], axis=1)
    crossed = dual_effects(x, np.concatenate([np.stack([s for pair in sides for s in pair], axis=1), probes],
                                             axis=1))
    sided, probe_cross = crossed[:, : 2 * len(pairs)], crossed[:, 2 * len(pairs) :]
    kz = genetic_values(x, probe_cross) / m
    squares = {}
    for i, k in enumerate(set_keys):
        both = sets[k].astype(np.float64)[:, None]
        dkdz = both * kz[:, i * vectors : (i + 1) * vectors]
        # |D K D|_F^2 less the diagonal's sum of squares: the off-diagonal pairs only.
        squares[k] = float((dkdz * dkdz).sum() / vectors) - float((sets[k] * diagonal**2).sum())
    for p, ((a, b), (ra, rb), key) in enumerate(zip(pairs, sides, keys, strict=True)):
        count = int(sets[key].sum())
        if count < 3:
            continue
        numerator = float(sided[:, 2 * p] @ sided[:, 2 * p + 1]) / m - float((diagonal * ra * rb).sum())
        genetic[a, b] = numerator / max(squares[key], 1e-300)
        product[a, b] = float(ra @ rb) / count
    return genetic, product


def row_square_sums(x: np.ndarray, block: int = BLOCK) -> np.ndarray:
    """``sum_j x_ij^2`` (n,), float64, an ``(n, block)`` slice at a time."""
    out = np.zeros(x.shape[0])
    for lo in range(0, x.shape[1], block):
        part = x[:, lo : lo + block].astype(np.float64)
        out += (part * part).sum(axis=1)
    return out
