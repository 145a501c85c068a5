"""Whole-genome regression in two levels, as REGENIE's step 1 (Mbatchou et al. 2021, Nat Genet 53:1097).

Level 0: for each SNP block ``b`` (standardised genotypes ``X_b``, covariates projected out) and each
ridge penalty ``lam_r`` of a small grid, a ridge regression of each trait is fitted in K-fold
cross-validation; each person's level-0 prediction comes from the model fitted without their fold::

    beta_{b,r,-k} = (X_{b,-k}' X_{b,-k} + lam_r I)^-1 X_{b,-k}' y_{-k},   w_{i,b,r} = x_{i,b} beta_{b,r,-k(i)}

The penalties are REGENIE's: ``lam = M (1 - h2) / h2`` for ``h2`` in (0.01, 0.25, 0.5, 0.75, 0.99) with
``M`` the number of SNPs of the whole genome (per-SNP variance ``h2 / M`` of standardised genotypes).
Only ``m_b x m_b`` cross-products and one eigendecomposition per block and fold are needed, so memory
is ``n x m_b`` for the block plus ``n x (blocks x penalties)`` for the predictions, independent of the
SNPs within blocks.

Level 1: a ridge regression of the trait on the (standardised) level-0 predictions, its penalty chosen
by the same K-fold cross-validation; the leave-one-chromosome-out (LOCO) prediction for chromosome ``c``
of a person in fold ``k`` is the level-1 model of the other folds applied to the level-0 predictions of
the blocks not on ``c``. Step 2 tests each SNP of ``c`` against the trait minus that prediction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

H2_GRID = (0.01, 0.25, 0.5, 0.75, 0.99)


def ridge_penalties(n_snps: int, h2_grid: tuple[float, ...] = H2_GRID) -> np.ndarray:
    """REGENIE's penalties ``n_snps (1 - h2) / h2``, shape (len(h2_grid),)."""
    h2 = np.asarray(h2_grid, dtype=np.float64)
    return n_snps * (1.0 - h2) / h2


def assign_folds(n: int, folds: int, seed: int) -> np.ndarray:
    """Random, balanced fold of each person, (n,) int in ``[0, folds)``."""
    return np.random.default_rng(seed).permutation(n) % folds


def project_out(basis: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``values - Q (Q' values)``: residuals on the covariates, with ``basis`` Q (n, q) orthonormal."""
    return values - basis @ (basis.T @ values)


def standardise_columns(values: np.ndarray) -> np.ndarray:
    """Columns of ``values`` (n, k) scaled to unit variance (constant columns become 0); float64 copy."""
    values = np.asarray(values, dtype=np.float64)
    sd = values.std(axis=0)
    return values / np.where(sd > 0, sd, np.inf)


def level0_block(x: np.ndarray, y: np.ndarray, fold: np.ndarray, penalties: np.ndarray) -> np.ndarray:
    """Out-of-fold ridge predictions of one SNP block.

    Parameters
    ----------
    x : (n, m) standardised genotypes of the block, covariates projected out
    y : (n, t) standardised trait residuals
    fold : (n,) fold of each person, ints ``0 .. K-1``
    penalties : (R,) ridge penalties

    Returns
    -------
    (n, t, R) float64: ``w[i, :, r]`` predicted by the block's ridge fit without person i's fold.
    """
    n, m = x.shape
    t, folds = y.shape[1], int(fold.max()) + 1
    grams = np.empty((folds, m, m))
    cross = np.empty((folds, m, t))
    for k in range(folds):
        part = x[fold == k]
        grams[k] = part.T @ part
        cross[k] = part.T @ y[fold == k]
    gram_all, cross_all = grams.sum(axis=0), cross.sum(axis=0)
    out = np.empty((n, t, len(penalties)))
    for k in range(folds):
        values, vectors = np.linalg.eigh(gram_all - grams[k])
        values = np.maximum(values, 0.0)
        rotated = vectors.T @ (cross_all - cross[k])  # (m, t)
        shrunk = rotated[:, :, None] / (values[:, None, None] + penalties[None, None, :])  # (m, t, R)
        held = x[fold == k] @ vectors  # (n_k, m)
        out[fold == k] = np.einsum("im,mtr->itr", held, shrunk)
    return out


@dataclass
class Level1Fit:
    """The level-1 ridge of one trait.

    ``coefficients`` : (K, P) per fold (fitted without that fold) at the chosen penalty;
    ``penalty`` : the chosen penalty; ``cv_mse`` : (len(grid),) out-of-fold mean squared error per penalty;
    ``scale`` : (P,) the standard deviations the predictors were divided by.
    """

    coefficients: np.ndarray
    penalty: float
    cv_mse: np.ndarray
    scale: np.ndarray


def level1_fit(w: np.ndarray, y: np.ndarray, fold: np.ndarray, penalties: np.ndarray) -> Level1Fit:
    """Ridge of ``y`` on the level-0 predictions, penalty by K-fold cross-validation.

    Parameters
    ----------
    w : (n, P) level-0 predictions of one trait (blocks x level-0 penalties)
    y : (n,) standardised trait residual
    fold : (n,) folds (the level-0 ones, so no person's own data predicts them twice)
    penalties : (L,) candidate level-1 penalties
    """
    scale = w.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    z = w / scale
    folds = int(fold.max()) + 1
    gram_all, cross_all = z.T @ z, z.T @ y
    errors = np.zeros(len(penalties))
    coefficients = np.empty((folds, len(penalties), z.shape[1]))
    for k in range(folds):
        held = fold == k
        values, vectors = np.linalg.eigh(gram_all - z[held].T @ z[held])
        values = np.maximum(values, 0.0)
        rotated = vectors.T @ (cross_all - z[held].T @ y[held])
        beta = (rotated[:, None] / (values[:, None] + penalties[None, :])).T @ vectors.T  # (L, P)
        coefficients[k] = beta
        errors += ((z[held] @ beta.T - y[held, None]) ** 2).sum(axis=0)
    best = int(np.argmin(errors))
    return Level1Fit(coefficients=coefficients[:, best], penalty=float(penalties[best]),
                     cv_mse=errors / len(y), scale=scale)


def loco_predictions(w: np.ndarray, fit: Level1Fit, fold: np.ndarray, column_chromosome: np.ndarray,
                     n_chromosomes: int) -> np.ndarray:
    """Leave-one-chromosome-out genetic predictions.

    Parameters
    ----------
    w : (n, P) level-0 predictions; fit : its :func:`level1_fit`; fold : (n,)
    column_chromosome : (P,) chromosome index of the block behind each column, in ``[0, n_chromosomes)``

    Returns
    -------
    (n, n_chromosomes): column c is the prediction from the blocks of every chromosome but c.
    """
    z = w / fit.scale
    per_chromosome = np.zeros((len(z), n_chromosomes))
    for k in range(fit.coefficients.shape[0]):
        held = fold == k
        contribution = z[held] * fit.coefficients[k][None, :]
        for c in range(n_chromosomes):
            per_chromosome[held, c] = contribution[:, column_chromosome == c].sum(axis=1)
    return per_chromosome.sum(axis=1, keepdims=True) - per_chromosome


def level1_penalties(n_predictors: int) -> np.ndarray:
    """Level-1 grid: REGENIE's ``h2`` grid over the ``P`` predictors, widened towards no shrinkage."""
    return np.r_[ridge_penalties(n_predictors), n_predictors * np.array([1e-2, 1e-4])]
