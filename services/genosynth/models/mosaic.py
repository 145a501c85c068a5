"""Mosaic genotype model: each synthetic genome copies segments of training genomes along the chromosome.

Li & Stephens-style copying on unphased diploid genotypes: a synthetic individual follows an *ancestry
path* that, at each SNP, keeps its current donor (a training individual) or, with probability
``switch_rate``, jumps to a new donor drawn uniformly; a chromosome always starts with a fresh donor.
At each SNP, with probability ``mutation_rate``, the call is taken from another random donor instead
(emission noise: no segment is a verbatim copy). Copying real diploid segments keeps allele frequencies,
Hardy-Weinberg proportions and LD up to the segment length.

The path is a pure function of (seed, individual, SNP index) (see :mod:`genosynth.models.hashing`), so
every batch recomputes the stretch it needs and adjacent batches join seamlessly while running in
parallel. The switch rate is calibrated once per run (:meth:`MosaicModel.plan`) so that synthetic-to-
train nearest-neighbour distances match those of the held-out individuals: a synthetic genome looks like
a new member of the cohort, neither a copy of a training genome nor an outsider.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from genosynth.formats.dataset import Dataset
from genosynth.models.arrays import to_calls, to_dosages
from genosynth.models.base import GenotypeModel
from genosynth.models.hashing import hash_integers, hash_pairs, hash_uniform

_STREAM_SWITCH, _STREAM_DONOR, _STREAM_MUTATE, _STREAM_MUTANT_DONOR = 11, 12, 13, 14
_CALIBRATION_SNPS = 3000
_DEFAULT_MUTATION_RATE = 0.002


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


def calibrate_switch_rate(
    train: np.ndarray, holdout: np.ndarray, snp_index: np.ndarray, run_first: np.ndarray, *,
    mutation_rate: float, seed: int, target_quantile: float = 0.5,
) -> tuple[float, dict[str, Any]]:
    """Switch rate per SNP whose mosaics sit as far from the training genomes as held-out ones do.

    Parameters
    ----------
    train, holdout : (n_train, s), (n_holdout, s)
        Mean-imputed dosages on a subsample of ``s`` SNPs with whole-cohort indices ``snp_index``.
    run_first : (s,) bool
        True where a subsampled SNP is the first of its chromosome run (a fresh donor is drawn).

    Returns
    -------
    The rate and a log (target and achieved nearest-neighbour distance quantiles, rates tried).
    """
    target = float(np.quantile(_nearest_distances(holdout, train), target_quantile))
    gaps = np.diff(snp_index, prepend=snp_index[0]).astype(np.float64)
    n = max(len(holdout), 64)

    def achieved(rate: float) -> float:
        rng = np.random.default_rng([seed, 7])  # same draws for every rate: a smooth objective
        mosaics = _simulate_mosaics(train, gaps, run_first, n, rate, mutation_rate, rng)
        return float(np.quantile(_nearest_distances(mosaics, train), target_quantile))

    # Distance grows with the switch rate; bisect on log10(rate).
    lo, hi = -6.0, -0.3
    tried = []
    for _ in range(18):
        mid = 0.5 * (lo + hi)
        value = achieved(10**mid)
        tried.append([10**mid, value])
        if value < target:
            lo = mid
        else:
            hi = mid
    rate = 10 ** (0.5 * (lo + hi))
    return rate, {"target_nn_distance": target, "achieved_nn_distance": achieved(rate),
                  "quantile": target_quantile, "tried": tried, "calibration_snps": len(snp_index)}


def _subsample(batches: list[dict[str, Any]], limit: int) -> tuple[np.ndarray, np.ndarray]:
    """Evenly spaced SNP indices over all batches (``limit`` at most) and first-of-run flags."""
    owned = np.concatenate([np.arange(b["start"], b["stop"]) for b in batches])
    run_of = np.concatenate([np.full(b["stop"] - b["start"], b["run_start"]) for b in batches])
    pick = np.unique(np.linspace(0, len(owned) - 1, min(limit, len(owned))).round().astype(int))
    index, runs = owned[pick], run_of[pick]
    first = np.ones(len(index), dtype=bool)
    first[1:] = runs[1:] != runs[:-1]
    return index, first


def _mean_impute(dosages: np.ndarray) -> np.ndarray:
    means = np.nan_to_num(np.nanmean(dosages, axis=0))
    return np.where(np.isnan(dosages), means[None, :], dosages).astype(np.float64)


class MosaicModel(GenotypeModel):
    """Copying model: the fitted state of a batch is the training panel of its SNPs (hard calls)."""

    family = "mosaic"

    def __init__(self, panel: np.ndarray, start: int, stop: int):
        self.panel = panel  # (n_train, stop - start) int8, -1 missing
        self.start, self.stop = start, stop

    @classmethod
    def plan(cls, train: Dataset, holdout: Dataset, batches: list[dict[str, Any]], *, seed: int,
             options: dict[str, Any]) -> dict[str, Any]:
        plan = super().plan(train, holdout, batches, seed=seed, options=options)
        mutation_rate = float(options.get("mutation_rate", _DEFAULT_MUTATION_RATE))
        plan["mutation_rate"] = mutation_rate
        plan["n_donors"] = train.n_samples
        if "switch_rate" in options:
            plan["switch_rate"] = float(options["switch_rate"])
            plan["calibration"] = {"fixed_by_options": True}
            return plan
        index, first = _subsample(batches, int(options.get("calibration_snps", _CALIBRATION_SNPS)))
        columns = [np.asarray(ds.dosages(0, ds.n_variants)[:, index]) for ds in (train, holdout)]
        train_g, holdout_g = (_mean_impute(c) for c in columns)
        rate, log = calibrate_switch_rate(
            train_g, holdout_g, index, first, mutation_rate=mutation_rate, seed=seed,
            target_quantile=float(options.get("target_quantile", 0.5)))
        plan["switch_rate"] = rate * float(options.get("switch_rate_scale", 1.0))
        plan["calibration"] = log
        return plan

    @classmethod
    def fit(cls, dosages: np.ndarray, *, batch: dict[str, Any], plan: dict[str, Any], seed: int,
            options: dict[str, Any], device: torch.device) -> MosaicModel:
        offset = batch["start"] - batch["context_start"]
        own = dosages[:, offset : offset + batch["stop"] - batch["start"]]
        return cls(to_calls(own), batch["start"], batch["stop"])

    def sample(self, n: int, *, batch: dict[str, Any], plan: dict[str, Any], seed: int,
               device: torch.device) -> np.ndarray:
        individuals = np.arange(n)
        n_donors = self.panel.shape[0]
        path = donor_path(seed, individuals, self.start, self.stop, run_start=int(batch["run_start"]),
                          switch_rate=float(plan["switch_rate"]), n_donors=n_donors)
        snps = np.arange(self.start, self.stop)
        mutate = hash_uniform(seed, _STREAM_MUTATE, individuals, snps) < float(plan["mutation_rate"])
        other = hash_integers(seed, _STREAM_MUTANT_DONOR, individuals, snps, n_donors)
        donors = torch.from_numpy(np.where(mutate, other, path)).to(device)
        panel = torch.from_numpy(self.panel).to(device)
        calls = torch.gather(panel, 0, donors).cpu().numpy()
        return to_dosages(calls)

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return {"start": self.start, "stop": self.stop}, {"panel": self.panel}

    @classmethod
    def from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> MosaicModel:
        return cls(arrays["panel"], int(meta["start"]), int(meta["stop"]))
