"""Mosaic genotype model: each synthetic genome copies segments of training genomes along the chromosome.

Li & Stephens-style copying on unphased diploid genotypes: a synthetic individual follows an *ancestry
path* that, at each SNP, keeps its current donor (a training individual) or, with probability
``switch_rate``, jumps to a new donor drawn uniformly; a chromosome always starts with a fresh donor.
At each SNP, with probability ``mutation_rate``, the call is taken from another random donor instead
(emission noise: no segment is a verbatim copy). Copying real diploid segments keeps allele frequencies,
Hardy-Weinberg proportions and LD up to the segment length.

The path is a pure function of (seed, individual, SNP index) (see :mod:`genosynth.models.hashing`), so
every batch recomputes the stretch it needs and adjacent batches join seamlessly while running in
parallel. The switch rate is set once per run (:meth:`MosaicModel.plan`): the shortest segments that
still keep all but ``max_ld_loss`` of the LD, unless copied segments would make donors stand out (a
privacy floor from simulated nearest-neighbour adversarial accuracy, see :func:`calibrate_switch_rate`).

Synthetic individuals come in families sized like the cohort's first-degree relative counts; members
follow one of two shared parental paths at each SNP, so they share segments on every chromosome (genome-
wide relatedness, which a LOCO GWAS relies on) while no one is a relative of any training genome.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from genosynth.formats.dataset import Dataset
from genosynth.genetics.dosages import calls_to_dosages, hard_calls, mean_impute
from genosynth.genetics.ld import ld_by_lag
from genosynth.genetics.relatedness import KING_FIRST_DEGREE, king_robust, relatives_above
from genosynth.models.base import GenotypeModel
from genosynth.models.hashing import hash_integers, hash_pairs, hash_uniform

if TYPE_CHECKING:
    from collections.abc import Sequence

    from genosynth.run_state import SnpBatch

_STREAM_SWITCH, _STREAM_DONOR, _STREAM_MUTATE, _STREAM_MUTANT_DONOR = 11, 12, 13, 14
_CALIBRATION_SNPS = 2000
_DEFAULT_MUTATION_RATE = 0.002
_DEFAULT_MAX_LD_LOSS = 0.05
_MIN_AATS = 0.55
# The family-path sampler copies donors in longer effective stretches than the independent mosaics the
# calibration simulates (measured on the demo colony: AATS 0.35 where the simulation says 0.55), so the
# privacy floor is widened by this factor (demo: membership AUC 0.58 at 8x the simulated rate, 0.85 at 1x).
_PRIVACY_MARGIN = 6.0
_PARENT_OFFSET = 1 << 40
_CHILD_SEED = 0x5EED
_MAX_FAMILY = 32
_LD_MAX_LAG = 400


def donor_path(
    seed: int, individuals: np.ndarray, lo: int, hi: int, *, run_start: int, switch_rate: float,
    n_donors: int, scan_chunk: int = 4096,
) -> np.ndarray:
    """Donor index of each individual at SNPs ``lo:hi`` of the whole-cohort SNP order.

    Parameters
    ----------
    individuals : (n,) int
        Synthetic individual numbers (the same number means the same path in every batch).
    lo, hi : int
        SNP index range; ``run_start <= lo`` is the first SNP of the chromosome run holding it.

    Returns
    -------
    (n, hi - lo) int64 donor indices in ``[0, n_donors)``.
    """
    individuals = np.asarray(individuals, dtype=np.int64)
    snps = np.arange(lo, hi)
    switch = hash_uniform(seed, _STREAM_SWITCH, individuals, snps) < switch_rate
    if lo == run_start and hi > lo:
        switch[:, 0] = True
    new_donor = hash_integers(seed, _STREAM_DONOR, individuals, snps, n_donors)
    # The donor in force at ``lo`` is the one drawn at the last switch before it: scan backwards.
    initial = np.zeros(len(individuals), dtype=np.int64)
    pending = np.arange(len(individuals)) if lo > run_start else np.arange(0)
    pos = lo
    while pending.size:
        width = min(pos - run_start, scan_chunk)
        back = np.arange(pos - width, pos)
        events = hash_uniform(seed, _STREAM_SWITCH, individuals[pending], back) < switch_rate
        if pos - width == run_start:
            events[:, 0] = True
        found = events.any(axis=1)
        last = back[width - 1 - np.argmax(events[:, ::-1], axis=1)]
        rows = pending[found]
        initial[rows] = (hash_pairs(seed, _STREAM_DONOR, individuals[rows], last[found])
                         % np.uint64(n_donors)).astype(np.int64)
        pending = pending[~found]
        pos -= width
    column = np.where(switch, np.arange(hi - lo)[None, :], -1)
    last_switch = np.maximum.accumulate(column, axis=1)
    taken = np.take_along_axis(new_donor, np.maximum(last_switch, 0), axis=1)
    return np.where(last_switch >= 0, taken, initial[:, None])


def _nearest_distances(queries: np.ndarray, panel: np.ndarray, *, exclude_self: bool = False) -> np.ndarray:
    """Euclidean distance of each query row to its nearest panel row, ``(n_queries,)``."""
    q2 = (queries**2).sum(axis=1)[:, None]
    p2 = (panel**2).sum(axis=1)[None, :]
    squared = np.maximum(q2 + p2 - 2.0 * queries @ panel.T, 0.0)
    if exclude_self:
        np.fill_diagonal(squared, np.inf)
    return np.sqrt(squared.min(axis=1))


def _simulate_mosaics(
    panel: np.ndarray, gaps: np.ndarray, run_first: np.ndarray, n: int, switch_rate: float,
    mutation_rate: float, rng: np.random.Generator,
) -> np.ndarray:
    """Mosaics of ``panel`` rows on a SNP subsample; ``gaps`` are index gaps between subsampled SNPs."""
    n_donors, m = panel.shape
    p_switch = 1.0 - (1.0 - switch_rate) ** gaps
    switch = rng.random((n, m)) < p_switch[None, :]
    switch[:, run_first] = True
    column = np.where(switch, np.arange(m)[None, :], -1)
    last = np.maximum.accumulate(column, axis=1)
    donors = np.take_along_axis(rng.integers(0, n_donors, (n, m)), last, axis=1)
    mutate = rng.random((n, m)) < mutation_rate
    donors = np.where(mutate, rng.integers(0, n_donors, (n, m)), donors)
    return panel[donors, np.arange(m)[None, :]]


def ld_switch_rate(curve: np.ndarray, max_loss: float) -> tuple[float, float]:
    """Largest switch rate that loses at most ``max_loss`` of the excess LD in ``curve``.

    A pair of SNPs ``l`` apart keeps its LD only if no switch falls between them (probability
    ``(1 - rate)^l``), so the LD lost is ``sum_l excess(l) (1 - (1 - rate)^l) / sum_l excess(l)`` with
    ``excess`` the r^2 above the background level (the median of the curve's far half).

    Returns
    -------
    The rate and the background r^2.
    """
    background = float(np.median(curve[len(curve) // 2 :])) if len(curve) > 3 else 0.0
    excess = np.maximum(curve - background, 0.0)
    if excess.sum() <= 0:
        return 0.05, background
    lags = np.arange(1, len(curve) + 1)

    def loss(rate: float) -> float:
        return float((excess * (1.0 - (1.0 - rate) ** lags)).sum() / excess.sum())

    lo, hi = -6.0, -0.3
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if loss(10**mid) < max_loss else (lo, mid)
    return 10**lo, background


def calibrate_switch_rate(
    train: np.ndarray, holdout: np.ndarray, snp_index: np.ndarray, run_first: np.ndarray,
    ld_curve_values: np.ndarray, *, mutation_rate: float, max_ld_loss: float, seed: int, n_synthetic: int,
) -> tuple[float, dict[str, Any]]:
    """Switch rate per SNP: long segments keep LD, short ones keep each genome far from every donor.

    The rate is the larger of (a) the largest rate that keeps ``1 - max_ld_loss`` of the LD (see
    :func:`ld_switch_rate`) and (b) the smallest rate at which ``n_synthetic`` simulated mosaics reach a
    nearest-neighbour adversarial accuracy (AATS, Euclidean on dosages of a SNP subsample) of 0.55 against
    the training genomes, times a measured safety margin. Long copied segments make donors stand out
    (membership inference, AATS near 0); in cohorts of close relatives (b) is tiny and LD decides, in
    cohorts of distant relatives (b) shortens the segments until donors no longer stand out.

    Parameters
    ----------
    train, holdout : (n_train, s), (n_holdout, s)
        Mean-imputed dosages on a subsample of ``s`` SNPs with whole-cohort indices ``snp_index``.
    run_first : (s,) bool
        True where a subsampled SNP is the first of its chromosome run (a fresh donor is drawn).
    ld_curve_values : (L,) mean r^2 by SNP lag 1..L (:func:`genosynth.genetics.ld.ld_by_lag`).
    """
    ld_rate, background = ld_switch_rate(ld_curve_values, max_ld_loss)
    gaps = np.diff(snp_index, prepend=snp_index[0]).astype(np.float64)
    train_nn = _nearest_distances(train, train, exclude_self=True)
    target = float(np.median(train_nn))

    def mosaics_of(rate: float) -> np.ndarray:
        rng = np.random.default_rng([seed, 7])  # the same draws for every rate: a smooth objective
        return _simulate_mosaics(train, gaps, run_first, n_synthetic, rate, mutation_rate, rng)

    def adversarial_accuracy(rate: float) -> float:
        # AATS of the mosaics against the training genomes: long copied segments make each donor's nearest
        # neighbour a mosaic (and each mosaic's a donor), which is what membership inference exploits.
        mosaics = mosaics_of(rate)
        to_mosaic = _nearest_distances(train, mosaics)
        to_train = _nearest_distances(mosaics, train)
        among = _nearest_distances(mosaics, mosaics, exclude_self=True)
        return 0.5 * (float(np.mean(to_mosaic > train_nn)) + float(np.mean(to_train > among)))

    # Privacy floor: the smallest rate whose mosaics reach an adversarial accuracy of ``_MIN_AATS``.
    # Accuracy grows with the rate; bisect on log10(rate).
    lo, hi = -6.0, -0.3
    if adversarial_accuracy(10**lo) >= _MIN_AATS:
        hi = lo
    for _ in range(10 if hi > lo else 0):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if adversarial_accuracy(10**mid) < _MIN_AATS else (lo, mid)
    privacy_rate = min(10**hi * _PRIVACY_MARGIN, 0.5) if hi > -6.0 else 10**hi
    rate = max(ld_rate, privacy_rate)
    achieved = _nearest_distances(mosaics_of(rate), train)
    holdout_nn = _nearest_distances(holdout, train)
    return rate, {
        "rule": f"max(largest rate losing <= {max_ld_loss:g} of the excess LD, smallest rate at which "
                f"mosaics reach an adversarial accuracy (AATS) of {_MIN_AATS:g})",
        "train_nn_distance_median": target,
        "ld_rate": ld_rate, "privacy_rate": privacy_rate,
        "mean_segment_snps": 1.0 / rate, "ld_background_r2": background,
        "ld_r2_by_lag": [round(float(v), 5) for v in ld_curve_values[:50]],
        "nn_distance_median_synthetic": float(np.median(achieved)),
        "nn_distance_median_holdout": float(np.median(holdout_nn)),
        "calibration_snps": len(snp_index),
    }


def first_degree_counts(calls: np.ndarray) -> np.ndarray:
    """Number of first-degree (or closer) relatives of each individual among the others, ``(n,)``."""
    return relatives_above(king_robust(calls), KING_FIRST_DEGREE)


def family_plan(relatives: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Family number of each of ``n`` synthetic individuals (families are contiguous).

    Sizes are drawn so that the share of synthetic individuals with ``k`` sibs matches the share of real
    individuals with ``k`` first-degree relatives: a family of size ``s`` holds ``s`` such individuals, so
    sizes are drawn with weights ``P(relatives = s - 1) / s``.
    """
    sizes = np.minimum(relatives + 1, _MAX_FAMILY)
    counts = np.bincount(sizes, minlength=_MAX_FAMILY + 1).astype(np.float64)
    weights = counts / np.maximum(np.arange(_MAX_FAMILY + 1), 1)
    weights[0] = 0.0
    rng = np.random.default_rng([seed, 404])
    family_of = np.empty(n, dtype=np.int64)
    filled, family = 0, 0
    while filled < n:
        size = min(int(rng.choice(len(weights), p=weights / weights.sum())), n - filled)
        family_of[filled : filled + size] = family
        filled += size
        family += 1
    return family_of


def _subsample(batches: Sequence[SnpBatch], limit: int) -> tuple[np.ndarray, np.ndarray]:
    """Evenly spaced SNP indices over all batches (``limit`` at most) and first-of-run flags."""
    owned = np.concatenate([np.arange(b.start, b.stop) for b in batches])
    run_of = np.concatenate([np.full(b.stop - b.start, b.run_start) for b in batches])
    pick = np.unique(np.linspace(0, len(owned) - 1, min(limit, len(owned))).round().astype(int))
    index, runs = owned[pick], run_of[pick]
    first = np.ones(len(index), dtype=bool)
    first[1:] = runs[1:] != runs[:-1]
    return index, first


def _columns(dataset: Dataset, index: np.ndarray) -> np.ndarray:
    """Dosages of the SNPs ``index`` (sorted) for all individuals, read chunk by chunk."""
    parts = []
    for start, block in dataset.iter_dosages():
        chosen = index[(index >= start) & (index < start + block.shape[1])]
        parts.append(block[:, chosen - start])
    return np.concatenate(parts, axis=1)


class MosaicModel(GenotypeModel):
    """Copying model: the fitted state of a batch is the training panel of its SNPs (hard calls)."""

    family = "mosaic"

    def __init__(self, panel: np.ndarray, start: int, stop: int):
        self.panel = panel  # (n_train, stop - start) int8, -1 missing
        self.start, self.stop = start, stop

    @classmethod
    def plan(cls, train: Dataset, holdout: Dataset, batches: Sequence[SnpBatch], *, seed: int,
             options: dict[str, Any]) -> dict[str, Any]:
        plan = super().plan(train, holdout, batches, seed=seed, options=options)
        mutation_rate = float(options.get("mutation_rate", _DEFAULT_MUTATION_RATE))
        plan["mutation_rate"] = mutation_rate
        plan["n_donors"] = train.n_samples
        index, first = _subsample(batches, int(options.get("calibration_snps", _CALIBRATION_SNPS)))
        if "switch_rate" in options:
            rate, log = float(options["switch_rate"]), {"fixed_by_options": True}
        else:
            train_g = mean_impute(_columns(train, index)).astype(np.float64)
            holdout_g = mean_impute(_columns(holdout, index)).astype(np.float64)
            widest = max(batches, key=lambda b: b.n_snps)
            curve = ld_by_lag(train.dosages(widest.start, widest.stop), _LD_MAX_LAG)
            rate, log = calibrate_switch_rate(
                train_g, holdout_g, index, first, curve, mutation_rate=mutation_rate, seed=seed,
                max_ld_loss=float(options.get("max_ld_loss", _DEFAULT_MAX_LD_LOSS)),
                n_synthetic=int(plan["n_synthetic"]))
        plan["switch_rate"] = rate * float(options.get("switch_rate_scale", 1.0))
        plan["calibration"] = log
        if options.get("families", True):
            relatives = first_degree_counts(hard_calls(_columns(train, index)))
            plan["family_of"] = family_plan(relatives, plan["n_synthetic"], seed).tolist()
            log["first_degree_relatives_mean"] = float(relatives.mean())
        return plan

    @classmethod
    def fit(cls, dosages: np.ndarray, *, batch: SnpBatch, plan: dict[str, Any], seed: int,
            options: dict[str, Any], device: torch.device) -> MosaicModel:
        offset = batch.start - batch.context_start
        own = dosages[:, offset : offset + batch.stop - batch.start]
        return cls(hard_calls(own), batch.start, batch.stop)

    def sample(self, n: int, *, batch: SnpBatch, plan: dict[str, Any], seed: int,
               device: torch.device) -> np.ndarray:
        individuals = np.arange(n)
        n_donors = self.panel.shape[0]
        rate = float(plan["switch_rate"])
        run_start = int(batch.run_start)
        family = np.asarray(plan.get("family_of") or np.arange(n), dtype=np.int64)[:n]
        # Each family has two parental paths over the donors; each member follows one parent or the
        # other, switching along the genome: members share segments genome-wide, like sibs.
        parents = _PARENT_OFFSET + np.stack([2 * family, 2 * family + 1])
        unique_parents, where = np.unique(parents, return_inverse=True)
        parent_paths = donor_path(seed, unique_parents, self.start, self.stop, run_start=run_start,
                                  switch_rate=rate / 2, n_donors=n_donors)
        which = donor_path(seed ^ _CHILD_SEED, individuals, self.start, self.stop, run_start=run_start,
                           switch_rate=rate / 2, n_donors=2)
        rows = np.where(which == 0, where.reshape(2, n)[0][:, None], where.reshape(2, n)[1][:, None])
        path = np.take_along_axis(parent_paths, rows, axis=0)
        snps = np.arange(self.start, self.stop)
        mutate = hash_uniform(seed, _STREAM_MUTATE, individuals, snps) < float(plan["mutation_rate"])
        other = hash_integers(seed, _STREAM_MUTANT_DONOR, individuals, snps, n_donors)
        donors = torch.from_numpy(np.where(mutate, other, path)).to(device)
        panel = torch.from_numpy(self.panel).to(device)
        calls = torch.gather(panel, 0, donors).cpu().numpy()
        return calls_to_dosages(calls)

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return {"start": self.start, "stop": self.stop}, {"panel": self.panel}

    @classmethod
    def from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> MosaicModel:
        return cls(arrays["panel"], int(meta["start"]), int(meta["stop"]))
