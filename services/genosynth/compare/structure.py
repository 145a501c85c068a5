"""Does the synthetic cohort keep the real cohort's genetic structure?

Allele frequencies, linkage disequilibrium (LD) decay with distance, the relatedness (kinship)
distribution, and the principal-component (PCA) layout, each compared between the training cohort and the
synthetic cohort on the same SNPs.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import linalg, stats

from genosynth.compare.genotypes import even_subsample
from genosynth.genetics.dosages import standardise

# Distance bins for LD decay, in base pairs: fine near zero where r^2 falls fastest, log-spaced beyond.
LD_BIN_EDGES = (0, 1e3, 1e4, 5e4, 1e5, 2.5e5, 5e5, 1e6, 2.5e6, 5e6, 1e7, 2e7, 5e7)
LD_SNPS_PER_CHROMOSOME = 400
KINSHIP_QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 0.999)
PCA_COMPONENTS = 10


def allele_frequency_metrics(af_real: np.ndarray, af_synthetic: np.ndarray) -> dict[str, float]:
    """Agreement of per-SNP alternate allele frequencies ``(m,)``: Pearson r, mean and max |difference|."""
    af_real, af_synthetic = np.asarray(af_real, float), np.asarray(af_synthetic, float)
    ok = np.isfinite(af_real) & np.isfinite(af_synthetic)
    if ok.sum() < 3:
        return {"correlation": math.nan, "mean_abs_difference": math.nan, "max_abs_difference": math.nan}
    diff = np.abs(af_real[ok] - af_synthetic[ok])
    return {
        "correlation": float(stats.pearsonr(af_real[ok], af_synthetic[ok])[0]),
        "mean_abs_difference": float(diff.mean()),
        "max_abs_difference": float(diff.max()),
    }


def ld_pairs(dosages: np.ndarray, chrom: np.ndarray, pos: np.ndarray, snps_per_chromosome: int
             ) -> list[tuple[np.ndarray, np.ndarray]]:
    """The SNP sets used for LD decay: per chromosome, up to ``snps_per_chromosome`` evenly spaced SNPs
    that have a position and vary in ``dosages``.

    Returns a list of ``(snp_index, positions)`` per chromosome.
    """
    out = []
    varies = np.nanstd(dosages, axis=0) > 0 if dosages.size else np.zeros(0, bool)
    for name in np.unique(chrom):
        idx = np.flatnonzero((chrom == name) & np.isfinite(pos) & varies)
        if idx.size < 2:
            continue
        idx = idx[even_subsample(idx.size, snps_per_chromosome)]
        out.append((idx, pos[idx]))
    return out


def ld_decay(dosages: np.ndarray, snp_sets: list[tuple[np.ndarray, np.ndarray]],
             edges: tuple[float, ...] = LD_BIN_EDGES) -> dict[str, list[float]]:
    """Mean r^2 of SNP pairs by distance bin, within chromosomes.

    Parameters
    ----------
    dosages : (n, k) float
        Dosages, NaN missing (mean-imputed here).
    snp_sets : list of ((c,) int, (c,) float)
        Per chromosome, the SNP columns and their base-pair positions (from :func:`ld_pairs`).

    Returns
    -------
    dict
        ``bin_left``, ``bin_right`` (bp), ``mean_r2`` (NaN where a bin has no pair) and ``pairs`` per bin.
    """
    edges_array = np.asarray(edges, dtype=np.float64)
    total = np.zeros(len(edges) - 1)
    count = np.zeros(len(edges) - 1)
    for idx, positions in snp_sets:
        z, _, _ = standardise(np.asarray(dosages[:, idx], dtype=np.float64))
        r2 = (z.T @ z / max(z.shape[0], 1)) ** 2
        i, j = np.triu_indices(len(idx), k=1)
        distance = np.abs(positions[j] - positions[i])
        which = np.searchsorted(edges_array, distance, side="right") - 1
        inside = (which >= 0) & (which < len(total))
        np.add.at(total, which[inside], r2[i[inside], j[inside]])
        np.add.at(count, which[inside], 1)
    with np.errstate(invalid="ignore"):
        mean = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return {"bin_left": list(edges_array[:-1]), "bin_right": list(edges_array[1:]),
            "mean_r2": mean.tolist(), "pairs": count.astype(int).tolist()}


def ld_decay_distance(real: dict[str, list[float]], synthetic: dict[str, list[float]]) -> dict[str, float]:
    """Mean and max |difference| of two LD-decay curves over the bins that both have pairs in."""
    a, b = np.asarray(real["mean_r2"], float), np.asarray(synthetic["mean_r2"], float)
    ok = np.isfinite(a) & np.isfinite(b)
    if not ok.any():
        return {"mean_abs_difference": math.nan, "max_abs_difference": math.nan}
    return {"mean_abs_difference": float(np.abs(a[ok] - b[ok]).mean()),
            "max_abs_difference": float(np.abs(a[ok] - b[ok]).max())}


def off_diagonal(matrix: np.ndarray) -> np.ndarray:
    """Upper-triangle entries (each pair once) of a square matrix ``(n, n)`` -> ``(n (n - 1) / 2,)``."""
    i, j = np.triu_indices(matrix.shape[0], k=1)
    values = np.asarray(matrix)[i, j]
    return values[np.isfinite(values)]


def kinship_quantiles(real: np.ndarray, synthetic: np.ndarray,
                      qs: tuple[float, ...] = KINSHIP_QUANTILES) -> dict[str, Any]:
    """Quantiles of the off-diagonal kinship values of both cohorts and their mean |difference|."""
    def quantiles(values: np.ndarray) -> list[float]:
        return [float(np.quantile(values, q)) for q in qs] if values.size else [math.nan] * len(qs)

    qr, qsyn = quantiles(real), quantiles(synthetic)
    diff = np.abs(np.asarray(qr) - np.asarray(qsyn))
    return {"quantiles": list(qs), "real": qr, "synthetic": qsyn,
            "mean_abs_difference": float(np.nanmean(diff)) if np.isfinite(diff).any() else math.nan}


def _top_axes(z: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top ``k`` right singular vectors ``(k, m)`` of ``z (n, m)`` and their squared singular values.

    Through the eigenvectors of the smaller Gram matrix (n x n or m x m), computing only the top ``k``:
    much cheaper than a full SVD when one side is large.
    """
    n, m = z.shape
    if n <= m:
        values, u = linalg.eigh(z @ z.T, subset_by_index=(n - k, n - 1))
        values, u = values[::-1], u[:, ::-1]
        axes = (z.T @ u) / np.sqrt(np.maximum(values, 1e-300))
        return axes.T, np.maximum(values, 0.0)
    values, v = linalg.eigh(z.T @ z, subset_by_index=(m - k, m - 1))
    return v[:, ::-1].T, np.maximum(values[::-1], 0.0)


def pca_comparison(real: np.ndarray, synthetic: np.ndarray, k: int = PCA_COMPONENTS
                   ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Project the synthetic cohort onto the real cohort's principal components and compare the layouts.

    Parameters
    ----------
    real : (n_r, m) float, synthetic : (n_s, m) float
        Dosages on the same SNPs, NaN missing. Both are standardised with the *real* means and sds, so
        a synthetic genome lands where a real genome with the same genotypes would.

    Returns
    -------
    metrics : dict
        ``variance_explained`` of the real PCs; per PC the synthetic/real ``score_sd_ratio`` and the
        Wasserstein-1 distance of score distributions in real-sd units (``wasserstein_sd``); the
        ``centroid_distance_sd`` (Euclidean distance of the mean scores in real-sd units over the k PCs)
        and ``mean_wasserstein_sd`` (mean over PCs: 0 for identical layouts).
    scores : dict
        ``real`` (n_r, k) and ``synthetic`` (n_s, k) PC scores, for plots.
    """
    z_real, mean, sd = standardise(np.asarray(real, dtype=np.float64))
    z_synth, _, _ = standardise(np.asarray(synthetic, dtype=np.float64), mean, sd)
    k = max(1, min(k, z_real.shape[0] - 1, z_real.shape[1]))
    vt, s = _top_axes(z_real, k)
    # SVD signs are arbitrary; fix them so reruns and platforms agree: largest |loading| positive.
    signs = np.sign(vt[np.arange(k), np.abs(vt).argmax(axis=1)])
    signs[signs == 0] = 1
    vt = vt * signs[:, None]
    score_real, score_synth = z_real @ vt.T, z_synth @ vt.T
    real_sd = score_real.std(axis=0)
    real_sd[real_sd == 0] = 1.0
    wasserstein = [float(stats.wasserstein_distance(score_real[:, c], score_synth[:, c]) / real_sd[c])
                   for c in range(k)]
    centroid = (score_synth.mean(axis=0) - score_real.mean(axis=0)) / real_sd
    variance = s / max(float(np.sum(z_real**2)), 1e-300)
    metrics = {
        "components": k,
        "variance_explained": variance[:k].tolist(),
        "score_sd_ratio": (score_synth.std(axis=0) / real_sd).tolist(),
        "wasserstein_sd": wasserstein,
        "mean_wasserstein_sd": float(np.mean(wasserstein)),
        "centroid_distance_sd": float(np.linalg.norm(centroid)),
    }
    return metrics, {"real": score_real, "synthetic": score_synth}


# --- sampling error of the metrics on a sample subsample ---------------------------------------------
JACKKNIFE_GROUPS = 8


def jackknife_se(replicates: np.ndarray) -> np.ndarray:
    """Delete-a-group jackknife standard error from ``(G, ...)`` leave-one-group-out values.

    ``sqrt((G - 1) / G * sum_g (theta_g - mean theta)^2)``; NaN replicates make the SE NaN.
    """
    replicates = np.asarray(replicates, dtype=np.float64)
    g = replicates.shape[0]
    if g < 2:
        return np.full(replicates.shape[1:], np.nan)
    return np.sqrt((g - 1) / g * np.sum((replicates - replicates.mean(axis=0)) ** 2, axis=0))


def summary_numbers(real: np.ndarray, synthetic: np.ndarray, snp_sets: list[tuple[np.ndarray, np.ndarray]],
                    king_real: np.ndarray, king_synth: np.ndarray, grm_real: np.ndarray,
                    grm_synth: np.ndarray) -> dict[str, float]:
    """The scalar structure metrics that depend on which individuals are compared.

    Parameters
    ----------
    real : (n_r, m), synthetic : (n_s, m) float
        Dosages, NaN missing.
    king_real, grm_real : (n_r, n_r); king_synth, grm_synth : (n_s, n_s)
        KING and centred kinship matrices of the same individuals.

    Returns
    -------
    dict keyed ``ld_decay.mean_abs_difference``, ``kinship_king.mean_abs_difference``,
    ``kinship_centred.mean_abs_difference``, ``pca.mean_wasserstein_sd``, ``pca.centroid_distance_sd``.
    """
    ld = ld_decay_distance(ld_decay(real, snp_sets), ld_decay(synthetic, snp_sets))
    king = kinship_quantiles(off_diagonal(king_real), off_diagonal(king_synth))
    grm = kinship_quantiles(off_diagonal(grm_real), off_diagonal(grm_synth))
    pca, _ = pca_comparison(real, synthetic)
    return {"ld_decay.mean_abs_difference": ld["mean_abs_difference"],
            "kinship_king.mean_abs_difference": king["mean_abs_difference"],
            "kinship_centred.mean_abs_difference": grm["mean_abs_difference"],
            "pca.mean_wasserstein_sd": pca["mean_wasserstein_sd"],
            "pca.centroid_distance_sd": pca["centroid_distance_sd"]}


def subsample_standard_errors(real: np.ndarray, synthetic: np.ndarray,
                              snp_sets: list[tuple[np.ndarray, np.ndarray]], king_real: np.ndarray,
                              king_synth: np.ndarray, grm_real: np.ndarray, grm_synth: np.ndarray,
                              groups: int = JACKKNIFE_GROUPS) -> dict[str, float]:
    """Sampling error of :func:`summary_numbers` computed on a sample of individuals.

    Each cohort's rows are dealt into ``groups`` groups (row ``i`` into group ``i % groups``); replicate
    ``g`` leaves group ``g`` out of both cohorts (the pair matrices are cut, not recomputed) and the
    spread of the replicates is the delete-a-group jackknife SE (:func:`jackknife_se`) of each number.
    Arguments as :func:`summary_numbers`.
    """
    rows_r, rows_s = np.arange(real.shape[0]) % groups, np.arange(synthetic.shape[0]) % groups
    replicates = []
    for g in range(groups):
        kr, ks = np.flatnonzero(rows_r != g), np.flatnonzero(rows_s != g)
        numbers = summary_numbers(real[kr], synthetic[ks], snp_sets, king_real[np.ix_(kr, kr)],
                                  king_synth[np.ix_(ks, ks)], grm_real[np.ix_(kr, kr)],
                                  grm_synth[np.ix_(ks, ks)])
        replicates.append(list(numbers.values()))
    se = jackknife_se(np.asarray(replicates))
    return dict(zip(numbers.keys(), se.tolist(), strict=True))
