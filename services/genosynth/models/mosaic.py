"""Mosaic genotype model: each synthetic genome copies segments of training genomes along the chromosome.

Li & Stephens-style copying on unphased diploid genotypes: a synthetic individual follows an *ancestry
path* that, at each SNP, keeps its current donor (a training individual) or, with probability
``switch_rate``, jumps to a new donor; a chromosome always starts with a fresh donor. Donors are drawn
without replacement along each path (:func:`balanced_donor_path`), so no training genome gives one synthetic
genome more segments than chance requires.
At each SNP, with probability ``mutation_rate``, the call is taken from another random donor instead
(emission noise: no segment is a verbatim copy). Copying real diploid segments keeps allele frequencies,
Hardy-Weinberg proportions and LD up to the segment length.

The path is a pure function of (seed, individual, SNP index) (see :mod:`genosynth.models.hashing`), so
every batch recomputes the stretch it needs and adjacent batches join seamlessly while running in
parallel. The switch rate is set once per run (:meth:`MosaicModel.plan`): the shortest segments that
still keep all but ``max_ld_loss`` of the LD, unless copied segments would make donors stand out (a
privacy floor: the run's own sampler simulated on an internal split of the training genomes, with the
membership attack's AUC bounded, see :func:`calibrate_switch_rate`).

Synthetic individuals come in families sized like the cohort's first-degree relative counts; members
follow one of two shared parental paths at each SNP, so they share segments on every chromosome (genome-
wide relatedness, which a LOCO GWAS relies on) while no one is a relative of any training genome.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from genosynth.formats.dataset import Dataset
from genosynth.genetics.device import cpu_threads, side_by_side
from genosynth.genetics.dosages import calls_to_dosages, hard_calls, mean_impute
from genosynth.genetics.kinship import centred_kinship
from genosynth.genetics.ld import ld_by_lag
from genosynth.genetics.relatedness import (
    KING_FIRST_DEGREE,
    king_robust,
    kinship_spectrum,
    manhattan_distance,
    relatives_above,
)
from genosynth.genetics.roc import auc
from genosynth.models.base import GenotypeModel
from genosynth.models.hashing import hash_below, hash_integers, hash_pairs

if TYPE_CHECKING:
    from collections.abc import Sequence

    from genosynth.run_state import SnpBatch

_STREAM_SWITCH, _STREAM_DONOR, _STREAM_MUTATE, _STREAM_MUTANT_DONOR = 11, 12, 13, 14
_STREAM_STRIDE, _STREAM_OFFSET = 15, 16
_STREAM_PEDIGREE = 17
# Balanced donor draws count switches within windows of this many SNPs (a batch rescans at most one).
_WINDOW = 4096
_CALIBRATION_SNPS = 2000
_DEFAULT_MUTATION_RATE = 0.002
_DEFAULT_MAX_LD_LOSS = 0.05
# The membership AUC the calibration allows on its internal split: below the gate's 0.55 on the held-out
# split by a margin for the split's sampling noise.
_MAX_MEMBERSHIP_AUC = 0.52
_CALIBRATION_SYNTHETIC = 4000  # the compare step's sample cap: the attack sees at most this many
_CALIBRATION_SPLITS = 3  # one when the calibration panel has 1,000 genomes or more (steadier AUC)
_PRIVACY_SNPS = 20_000  # the compare step's SNP subsample (compare.step.MAX_SNPS)
_DEFAULT_POOL_FRACTION = 0.125
_DEFAULT_POOLS = 0  # off: on the demo colony pools of 1/8 of the donors leaked membership (AUC 0.65)
# Colony pedigree: clans of families descending from founder mosaics (founders set from the kinship spectrum).
_DEFAULT_GENERATIONS = 0  # off: on hs1940 the clans raised the synthetic LOCO lambda_GC (docs/synthesis.md)
_DEFAULT_CLANS = 4
_MIN_STRUCTURE_GAP = 0.005
_PARENT_OFFSET = 1 << 40
_ANCESTOR_OFFSET = 1 << 48  # ancestor (level, clan, k): ``_ANCESTOR_OFFSET + (level << 32) + clan A + k``
_CHILD_SEED = 0x5EED
_MEIOSIS_SEED = 0x3E105
_MAX_FAMILY = 32
_LD_MAX_LAG = 400


def _strides(seed: int, individuals: np.ndarray, n_donors: int) -> tuple[np.ndarray, np.ndarray]:
    """Per individual a bijection ``slot -> (stride slot + offset) mod n_donors`` (stride coprime)."""
    if n_donors < 2:
        zero = np.zeros(len(individuals), dtype=np.int64)
        return zero + 1, zero
    stride = np.ones(len(individuals), dtype=np.int64)
    todo = np.ones(len(individuals), dtype=bool)
    for attempt in range(16):
        draw = 1 + hash_integers(seed, _STREAM_STRIDE, individuals, np.array([attempt]), n_donors - 1)[:, 0]
        good = todo & (np.gcd(draw, n_donors) == 1)
        stride[good] = draw[good]
        todo &= ~good
    offset = hash_integers(seed, _STREAM_OFFSET, individuals, np.array([0]), n_donors)[:, 0]
    return stride, offset


def balanced_donor_path(
    seed: int, individuals: np.ndarray, lo: int, hi: int, *, run_start: int, switch_rate: float,
    n_donors: int, window: int = _WINDOW,
) -> np.ndarray:
    """Like :func:`donor_path`, but an individual's successive segments take donors without replacement.

    The ``k``-th switch inside the window of ``window`` SNPs starting at SNP ``w`` takes slot
    ``floor(w rate c) + k`` (``c`` leaves room for the window's spread of switch counts), and slot ``t``
    is donor ``(stride t + offset) mod n_donors`` with a per-individual stride coprime to ``n_donors``: so
    a donor recurs in one synthetic genome only after every other donor has been used (``n_donors``
    slots later). Random draws with replacement let a few donors give one synthetic genome several
    segments by chance, and those genomes are what a nearest-neighbour membership attack finds.

    Returns
    -------
    (n, hi - lo) int64 donor indices in ``[0, n_donors)``.
    """
    individuals = np.asarray(individuals, dtype=np.int64)
    n = len(individuals)
    stride, offset = _strides(seed, individuals, n_donors)
    spread = 1.0 + 3.0 / np.sqrt(max(window * switch_rate, 1e-12)) + 1.0 / max(window * switch_rate, 1e-12)
    per_snp = switch_rate * min(spread, 1e6)

    def window_start(j: int) -> int:
        return run_start + ((j - run_start) // window) * window

    def donors_of(slot: np.ndarray, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
        return (stride[rows, None] * (slot % n_donors) + offset[rows, None]) % n_donors

    w0 = window_start(lo)
    snps = np.arange(w0, hi)
    switch = hash_below(seed, _STREAM_SWITCH, individuals, snps, switch_rate)
    if w0 == run_start and hi > w0:
        switch[:, 0] = True
    starts = np.array([window_start(j) for j in range(w0, hi, window)] if hi > w0 else [], dtype=np.int64)
    column_window = (snps - w0) // window
    counts = np.cumsum(switch, axis=1)
    before = np.concatenate([np.zeros((n, 1), dtype=np.int64), counts[:, :-1]], axis=1) if hi > w0 else counts
    first_col = (starts - w0).astype(np.int64)
    k = counts - 1 - before[:, first_col][:, column_window]
    base = np.floor(starts.astype(np.float64) * per_snp).astype(np.int64)
    slot = base[column_window][None, :] + k
    column = np.where(switch, np.arange(hi - w0)[None, :], -1)
    last = np.maximum.accumulate(column, axis=1) if hi > w0 else column
    taken = np.take_along_axis(slot, np.maximum(last, 0), axis=1)
    path = donors_of(taken)
    # Individuals with no switch since ``w0`` keep the donor of their last switch in an earlier window.
    pending = np.flatnonzero((last[:, 0] < 0) if hi > w0 else np.zeros(n, bool))
    ws = w0
    while pending.size:
        ws -= window
        back = np.arange(ws, ws + window)
        events = hash_below(seed, _STREAM_SWITCH, individuals[pending], back, switch_rate)
        if ws == run_start:
            events[:, 0] = True
        found = events.any(axis=1)
        rows = pending[found]
        slot_rows = np.floor(ws * per_snp).astype(np.int64) + events[found].sum(axis=1) - 1
        earlier = donors_of(slot_rows[:, None], rows)
        path[rows] = np.where(last[rows] < 0, earlier, path[rows])
        pending = pending[~found]
    return path[:, lo - w0 :]


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
    switch = hash_below(seed, _STREAM_SWITCH, individuals, snps, switch_rate)
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
        events = hash_below(seed, _STREAM_SWITCH, individuals[pending], back, switch_rate)
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


def ancestor_paths(
    seed: int, nodes: np.ndarray, clans: np.ndarray, level: int, lo: int, hi: int, *, run_start: int,
    founder_rate: float, meiosis_rate: float, n_donors: int, founders: int, pools: np.ndarray | None = None,
) -> np.ndarray:
    """Donor paths of pedigree ``nodes`` at ``level`` over SNPs ``lo:hi`` (a multi-generation colony).

    Level 0 holds ``founders`` mosaics per clan (:func:`balanced_donor_path` at ``founder_rate``, over the
    clan's donor pool ``pools[clan % n_pools]`` when given). A node at level ``g > 0`` has two distinct
    parents among its clan's ``founders`` nodes of level ``g - 1`` (hashed from its id) and follows one or
    the other, switching at ``meiosis_rate`` (a meiosis). Two nodes of one clan at level ``g`` therefore
    share a founder at a locus with probability about ``1 - (1 - 1 / founders)^g``: the clan is a web of
    cousins and half-sibs, and clans are the cohort's population structure, while every founder is a
    mosaic of many donors (no node is a relative of a training genome).

    Parameters
    ----------
    nodes : (n,) int64 node ids (unique); clans : (n,) int64 clan of each node.

    Returns
    -------
    (n, hi - lo) int64 donor indices in ``[0, n_donors)``.
    """
    nodes = np.asarray(nodes, dtype=np.int64)
    clans = np.asarray(clans, dtype=np.int64)
    if level == 0:
        width = n_donors if pools is None else pools.shape[1]
        paths = balanced_donor_path(seed, nodes, lo, hi, run_start=run_start, switch_rate=founder_rate,
                                    n_donors=width)
        return paths if pools is None else pools[(clans % len(pools))[:, None], paths]
    first = hash_integers(seed, _STREAM_PEDIGREE, nodes, np.array([0]), founders)[:, 0]
    step = 1 + hash_integers(seed, _STREAM_PEDIGREE, nodes, np.array([1]), max(founders - 1, 1))[:, 0]
    picks = np.stack([first, (first + step) % founders], axis=1)
    parent_ids = _ANCESTOR_OFFSET + ((level - 1) << 32) + clans[:, None] * founders + picks
    unique, where = np.unique(parent_ids, return_inverse=True)
    unique_clans = (unique - _ANCESTOR_OFFSET - ((level - 1) << 32)) // founders
    above = ancestor_paths(seed, unique, unique_clans, level - 1, lo, hi, run_start=run_start,
                           founder_rate=founder_rate, meiosis_rate=meiosis_rate, n_donors=n_donors,
                           founders=founders, pools=pools)
    which = donor_path(seed ^ _MEIOSIS_SEED, nodes, lo, hi, run_start=run_start, switch_rate=meiosis_rate,
                       n_donors=2)
    where = where.reshape(len(nodes), 2)
    rows = np.where(which == 0, where[:, :1], where[:, 1:])
    return np.take_along_axis(above, rows, axis=0)


def family_donors(
    seed: int, family_of: np.ndarray, lo: int, hi: int, *, run_start: int, switch_rate: float, n_donors: int,
    pools: np.ndarray | None = None, pedigree: dict[str, int] | None = None,
) -> np.ndarray:
    """Donor of each synthetic individual at SNPs ``lo:hi`` under the family sampler (no emission noise).

    Each family has two parental paths over the donors; each member follows one parent or the other,
    switching along the genome, so members share segments genome-wide like sibs. With ``pools``
    ``(n_pools, k)`` a family copies only the ``k`` donors of pool ``family % n_pools`` (training genomes
    that are close in the top principal components), which keeps the cohort's population structure.

    With ``pedigree`` ``{"clans": K, "generations": G, "founders": A}`` (``G >= 1``) the parents are
    themselves the last generation of a colony (:func:`ancestor_paths`): family ``f`` belongs to clan
    ``f % K`` and its parents descend from the clan's ``A`` founders over ``G`` generations, so families of
    one clan are cousins. The switch rates of the founders (half the rate) and of the ``G + 1`` meioses
    (the other half, shared) add up to ``switch_rate``, so segment lengths (and LD) stay as without it.

    Parameters
    ----------
    family_of : (n,) int family of each synthetic individual (individual ``i`` is row ``i``).

    Returns
    -------
    (n, hi - lo) int64 donor indices in ``[0, n_donors)``.
    """
    n = len(family_of)
    family_of = np.asarray(family_of, dtype=np.int64)
    parents = _PARENT_OFFSET + np.stack([2 * family_of, 2 * family_of + 1])
    unique_parents, where = np.unique(parents, return_inverse=True)
    generations = int(pedigree["generations"]) if pedigree else 0
    child_rate = switch_rate / 2 / (generations + 1)
    parent_family = (unique_parents - _PARENT_OFFSET) // 2
    # Without a pedigree the parents are level-0 founders themselves, grouped (for pools) by family.
    groups = parent_family % int(pedigree["clans"]) if generations else parent_family
    parent_paths = ancestor_paths(seed, unique_parents, groups, generations, lo, hi, run_start=run_start,
                                  founder_rate=switch_rate / 2, meiosis_rate=child_rate, n_donors=n_donors,
                                  founders=int(pedigree["founders"]) if generations else 0, pools=pools)
    which = donor_path(seed ^ _CHILD_SEED, np.arange(n), lo, hi, run_start=run_start,
                       switch_rate=child_rate, n_donors=2)
    where = where.reshape(2, n)
    rows = np.where(which == 0, where[0][:, None], where[1][:, None])
    return np.take_along_axis(parent_paths, rows, axis=0)


def _pedigree(plan: dict[str, Any]) -> dict[str, int] | None:
    pedigree = plan.get("pedigree")
    return pedigree if pedigree and int(pedigree.get("generations", 0)) else None


def _pools(plan: dict[str, Any]) -> np.ndarray | None:
    pools = plan.get("donor_pools")
    return np.asarray(pools, dtype=np.int64) if pools else None


def donor_pools(scores: np.ndarray, n_pools: int, size: int, seed: int) -> np.ndarray:
    """``(n_pools, size)`` donor pools: the ``size`` training genomes nearest to each of ``n_pools`` anchors.

    ``scores`` ``(n_train, k)`` are principal-component scores of the training genomes; anchors are drawn
    at random among them, so pools sit where the cohort's individuals sit (dense clusters get more pools).
    """
    rng = np.random.default_rng([seed, 505])
    anchors = rng.choice(len(scores), size=n_pools, replace=n_pools > len(scores))
    distance = ((scores[anchors][:, None, :] - scores[None, :, :]) ** 2).sum(axis=2)
    return np.sort(np.argsort(distance, axis=1, kind="stable")[:, :size], axis=1)


def structure_scores(dosages: np.ndarray, max_components: int = 10) -> np.ndarray:
    """PC scores ``(n, k)`` of the components above twice the Marchenko-Pastur edge (``k`` may be 0).

    ``dosages`` ``(n, s)`` mean-imputed; SNPs are standardised, so a cohort without structure (beyond
    sampling noise) has no component above the edge ``(1 + sqrt(n / s))^2`` of ``X X^T / s``.
    """
    n, s = dosages.shape
    x = dosages - dosages.mean(axis=0)
    sd = x.std(axis=0)
    x = x[:, sd > 0] / sd[sd > 0]
    s = max(x.shape[1], 1)
    u, singular, _ = np.linalg.svd(x, full_matrices=False)
    eigen = singular**2 / s
    edge = (1.0 + np.sqrt(n / s)) ** 2
    k = int(min(max_components, np.sum(eigen > 2.0 * edge)))
    return u[:, :k] * singular[:k]


def simulate_family_mosaics(
    panel: np.ndarray, run_first: np.ndarray, family_of: np.ndarray, step_rate: float, mutation_rate: float,
    seed: int, pools: np.ndarray | None = None, pedigree: dict[str, int] | None = None,
    mutations: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """The family sampler of :meth:`MosaicModel.sample` on a SNP subsample ``panel`` ``(n_donors, s)``.

    The subsampled SNPs are treated as contiguous (``step_rate`` is the switch probability between two of
    them); ``run_first`` ``(s,)`` marks the first SNP of each chromosome run. ``mutations`` are
    :func:`mutation_draws` for this seed, shape and panel when already made (they do not depend on the
    rate). Returns ``(n, s)`` rows of ``panel`` values, ``n = len(family_of)``.
    """
    n_donors, m = panel.shape
    starts = np.flatnonzero(run_first)
    if m and (not len(starts) or starts[0] != 0):
        starts = np.concatenate([[0], starts])
    donors = np.empty((len(family_of), m), dtype=np.int64)
    for lo, hi in zip(starts, [*starts[1:], m], strict=True):
        donors[:, lo:hi] = family_donors(seed, family_of, int(lo), int(hi), run_start=int(lo),
                                         switch_rate=step_rate, n_donors=n_donors, pools=pools,
                                         pedigree=pedigree)
    positions, replacement = mutations or mutation_draws(seed, donors.shape, n_donors, mutation_rate)
    donors.reshape(-1)[positions] = replacement
    return panel[donors, np.arange(m)[None, :]]


def mutation_draws(seed: int, shape: tuple[int, int], n_donors: int, mutation_rate: float
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Where :func:`simulate_family_mosaics` copies a random donor instead of the path's: flat positions
    ``(k,)`` in an array of ``shape`` and those donors ``(k,)`` (each call mutated with probability
    ``mutation_rate``)."""
    rng = np.random.default_rng([seed, 606])
    mutate = rng.random(shape) < mutation_rate
    donors = rng.integers(0, n_donors, shape)
    positions = np.flatnonzero(mutate)
    return positions, donors.reshape(-1)[positions]


def nearest_manhattan(queries: np.ndarray, panel: np.ndarray) -> np.ndarray:
    """Manhattan distance per jointly called SNP from each query row to its nearest panel row, ``(q,)``.

    Dosages ``(q, s)`` and ``(p, s)`` (NaN missing) are rounded to hard calls, as the compare step's
    genome distance (:func:`genosynth.genetics.relatedness.manhattan_distance`); a query sharing no called
    SNP with the panel is at infinity. It tells copied segments apart better than the Euclidean distance
    (demo colony: membership AUC 0.64 Manhattan, 0.56 Euclidean on the same cohorts).
    """
    distance = manhattan_distance(hard_calls(queries), hard_calls(panel))
    return np.where(np.isnan(distance), np.inf, distance).min(axis=1)


def membership_auc(members: np.ndarray, nonmembers: np.ndarray, synthetic: np.ndarray) -> float:
    """AUC of the nearest-synthetic-genome attack: a real genome is called a member the closer it lies.

    ``members`` ``(a, s)`` were the donors, ``nonmembers`` ``(b, s)`` were not (dosages); 0.5 means no
    leak. Distances are Manhattan on hard calls, as the compare step's.
    """
    member = -nearest_manhattan(members, synthetic)
    nonmember = -nearest_manhattan(nonmembers, synthetic)
    return auc(member, nonmember)


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
    ld_curve_values: np.ndarray, *, family_of: np.ndarray, mutation_rate: float, max_ld_loss: float,
    seed: int, max_auc: float = _MAX_MEMBERSHIP_AUC, scores: np.ndarray | None = None,
    pool_fraction: float = 0.0, n_pools: int = 0, pedigree: dict[str, int] | None = None,
) -> tuple[float, dict[str, Any]]:
    """Switch rate per SNP: long segments keep LD, short ones keep each training genome hidden.

    The rate is the larger of (a) the largest rate that keeps ``1 - max_ld_loss`` of the LD (see
    :func:`ld_switch_rate`) and (b) the smallest rate at which the run's own family sampler
    (:func:`simulate_family_mosaics`, with the run's families and donor pools) leaks no membership: on an
    internal split of the *training* genomes (4/5 donors, 1/5 never copied), the nearest-synthetic attack's
    AUC, less that of leak-free mosaics on the same split, is at most ``max_auc - 0.5`` (mean of three
    splits; one split for 1,000 genomes or more). The held-out split is left to the gate, which then
    measures the leak on genomes the calibration never saw.

    Parameters
    ----------
    train, holdout : (n_train, s), (n_holdout, s)
        Dosages (NaN missing) on a subsample of ``s`` SNPs with whole-cohort indices ``snp_index``: the
        compare step's SNPs and at most its number of genomes.
    run_first : (s,) bool
        True where a subsampled SNP is the first of its chromosome run (a fresh donor is drawn).
    ld_curve_values : (L,) mean r^2 by SNP lag 1..L (:func:`genosynth.genetics.ld.ld_by_lag`).
    family_of : (n_synthetic,) family of each synthetic individual (:func:`family_plan`).
    scores, pool_fraction, n_pools : PC scores ``(n_train, k)`` and the donor-pool settings of the run.
    """
    ld_rate, background = ld_switch_rate(ld_curve_values, max_ld_loss)
    gap = float(np.median(np.diff(snp_index))) if len(snp_index) > 1 else 1.0
    family_sim = np.asarray(family_of, dtype=np.int64)[:_CALIBRATION_SYNTHETIC]
    splits = []
    for repeat in range(_CALIBRATION_SPLITS if len(train) < 1000 else 1):
        order = np.random.default_rng([seed, 707, repeat]).permutation(len(train))
        cut = max(1, len(train) // 5)
        out, donors = np.sort(order[:cut]), np.sort(order[cut:])
        pools = None
        if n_pools and scores is not None and scores.shape[1]:
            pools = donor_pools(scores[donors], n_pools, max(2, round(pool_fraction * len(donors))), seed)
        splits.append((donors, out, pools))

    # Every rate of one split draws the same mutations: make them once.
    mutations = [mutation_draws(seed ^ (0xCA11 + r), (len(family_sim), train.shape[1]), len(d), mutation_rate)
                 for r, (d, _, _) in enumerate(splits)]

    def mosaics_of(rate: float, donors: np.ndarray, pools: np.ndarray | None, repeat: int) -> np.ndarray:
        step = 1.0 - (1.0 - rate) ** gap if rate < 1.0 else 1.0
        return simulate_family_mosaics(train[donors], run_first, family_sim, step, mutation_rate,
                                       seed ^ (0xCA11 + repeat), pools, pedigree, mutations[repeat])

    def auc_of(rate: float) -> np.ndarray:
        def attack(repeat: int) -> float:
            donors, out, pools = splits[repeat]
            return membership_auc(train[donors], train[out], mosaics_of(rate, donors, pools, repeat))

        # The splits are independent: side by side, one per thread.
        return np.array(side_by_side(attack, range(len(splits)), cpu_threads()))

    # Even synthetic genomes that copy an independent donor at every SNP score above 0.5: they carry the
    # training allele frequencies, to which each donor contributes 1/n (the allele-frequency membership
    # signal; HLC: 0.67 on the gate's split). No segment length removes it, so the copying leak is measured
    # against that floor on the same split.
    baseline = auc_of(1.0)

    def leak(rate: float) -> float:
        return 0.5 + float(np.mean(auc_of(rate) - baseline))

    # Privacy floor: the smallest rate whose mosaics leak at most ``max_auc``; the leak falls as the rate
    # grows (more, shorter segments: no donor dominates any synthetic genome). Bisect on log10(rate),
    # starting from the LD rate: when it already leaks nothing the LD decides.
    lo, hi = float(np.log10(max(ld_rate, 1e-6))), -0.3
    leak_ld = leak(10**lo)
    if leak_ld <= max_auc:
        hi = lo
    for _ in range(8 if hi > lo else 0):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if leak(10**mid) > max_auc else (lo, mid)
    rate = max(ld_rate, 10**hi)
    leak_rate = leak_ld if rate == ld_rate else leak(rate)
    achieved = nearest_manhattan(train[splits[0][0]], mosaics_of(rate, *splits[0][::2], 0))
    holdout_nn = nearest_manhattan(holdout, train)
    return rate, {
        "rule": f"max(largest rate losing <= {max_ld_loss:g} of the excess LD, smallest rate at which the "
                f"family sampler's membership AUC on an internal training split, above that of leak-free "
                f"mosaics, is <= {max_auc - 0.5:g})",
        "ld_rate": ld_rate, "privacy_rate": 10**hi,
        "membership_auc_at_ld_rate": leak_ld, "membership_auc_internal": leak_rate,
        "membership_auc_internal_baseline": float(np.mean(baseline)),
        "mean_segment_snps": 1.0 / rate, "ld_background_r2": background,
        "ld_r2_by_lag": [round(float(v), 5) for v in ld_curve_values[:50]],
        # Manhattan distances on the calibration SNPs: training genome to its nearest simulated mosaic, and
        # held-out genome to its nearest training genome (the natural closeness of unseen relatives).
        "nn_distance_median_train_to_synthetic": float(np.median(achieved)),
        "nn_distance_median_holdout_to_train": float(np.median(holdout_nn)),
        "calibration_snps": len(snp_index),
    }


def pedigree_founders(real_shares: np.ndarray, family_shares: np.ndarray, clans: int, generations: int
                      ) -> int:
    """Founders per clan so that the clans add the real cohort's missing top kinship eigenvalues (0: none).

    ``K`` equal clans whose members share a founder at a locus with probability ``rho`` add ``K - 1``
    eigenvalues of about ``rho / K`` of the kinship's trace; ``real_shares`` and ``family_shares`` (``(k,)``
    top eigenvalue shares of the training genomes and of the family sampler without clans, on the same
    SNPs) give the gap ``rho / K`` to fill over the top ``K - 1``. ``A`` founders over ``G`` generations give
    ``rho = 1 - (1 - 1 / A)^G``. A gap under 0.005 (no structure beyond the sib families) gives 0.
    """
    top = max(clans - 1, 1)
    gap = float(np.mean(real_shares[:top]) - np.mean(family_shares[:top]))
    if gap < _MIN_STRUCTURE_GAP or clans < 2:
        return 0
    rho = min(clans * gap, 0.5)
    return max(2, round(1.0 / (1.0 - (1.0 - rho) ** (1.0 / generations))))


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


def _columns(dataset: Dataset, index: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """Dosages of the SNPs ``index`` (sorted) for all individuals (or ``rows``), read chunk by chunk."""
    parts = []
    for start, block in dataset.iter_dosages():
        chosen = index[(index >= start) & (index < start + block.shape[1])]
        parts.append(block[:, chosen - start] if rows is None else block[np.ix_(rows, chosen - start)])
    return np.concatenate(parts, axis=1)


def _even_rows(n: int, limit: int) -> np.ndarray:
    return np.unique(np.linspace(0, n - 1, min(n, limit)).round().astype(np.int64))


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
        index, index_first = _subsample(batches, int(options.get("calibration_snps", _CALIBRATION_SNPS)))
        train_g = mean_impute(_columns(train, index)).astype(np.float64)
        log: dict[str, Any] = {}
        family_of = np.arange(int(plan["n_synthetic"]))
        if options.get("families", True):
            relatives = first_degree_counts(hard_calls(_columns(train, index)))
            family_of = family_plan(relatives, plan["n_synthetic"], seed)
            plan["family_of"] = family_of.tolist()
            log["first_degree_relatives_mean"] = float(relatives.mean())
        # Donor pools keep the population structure (the top kinship eigenvalues): only where the cohort has
        # components above the noise edge, so an unstructured cohort copies from every donor.
        scores = structure_scores(train_g)
        n_pools = int(options.get("donor_pools", _DEFAULT_POOLS)) if scores.shape[1] else 0
        pool_fraction = float(options.get("pool_fraction", _DEFAULT_POOL_FRACTION))
        log["structure_components"] = int(scores.shape[1])
        if n_pools:
            plan["donor_pools"] = donor_pools(scores, n_pools, max(2, round(pool_fraction * len(scores))),
                                              seed).tolist()
        pedigree = None
        generations = int(options.get("pedigree_generations", _DEFAULT_GENERATIONS))
        if generations > 0 and options.get("families", True):
            clans = int(options.get("pedigree_clans", _DEFAULT_CLANS))
            if "pedigree_founders" in options:
                founders = int(options["pedigree_founders"])
            else:
                # The family sampler without clans, at a nominal 1,000-SNP segment length (the spectrum
                # barely depends on it), on the calibration SNPs: the structure the clans must add.
                gap = sum(b.n_snps for b in batches) / max(len(index), 1)
                sibs_only = simulate_family_mosaics(train_g, index_first, family_of, 1.0 - 0.999**gap,
                                                    mutation_rate, seed)
                real_shares = kinship_spectrum(centred_kinship(train_g), clans)
                family_shares = kinship_spectrum(centred_kinship(sibs_only), clans)
                founders = pedigree_founders(real_shares, family_shares, clans, generations)
                log["kinship_shares_real"] = [round(float(v), 4) for v in real_shares]
                log["kinship_shares_families"] = [round(float(v), 4) for v in family_shares]
            if founders >= 2:
                pedigree = {"clans": clans, "generations": generations, "founders": founders}
                plan["pedigree"] = pedigree
        if "switch_rate" in options:
            rate = float(options["switch_rate"])
            log["fixed_by_options"] = True
        else:
            # The attack is simulated on the SNPs and (at most) the individuals the compare step's gate
            # uses: segment lengths are seen at the gate's SNP spacing, with the gate's power.
            p_index, p_first = _subsample(batches, int(options.get("privacy_snps", _PRIVACY_SNPS)))
            rows = _even_rows(train.n_samples, _CALIBRATION_SYNTHETIC)
            panel = _columns(train, p_index, rows)
            holdout_p = _columns(holdout, p_index, _even_rows(holdout.n_samples, _CALIBRATION_SYNTHETIC))
            widest = max(batches, key=lambda b: b.n_snps)
            curve = ld_by_lag(train.dosages(widest.start, widest.stop), _LD_MAX_LAG)
            rate, calibration = calibrate_switch_rate(
                panel, holdout_p, p_index, p_first, curve, family_of=family_of, mutation_rate=mutation_rate,
                seed=seed, max_ld_loss=float(options.get("max_ld_loss", _DEFAULT_MAX_LD_LOSS)),
                max_auc=float(options.get("max_membership_auc", _MAX_MEMBERSHIP_AUC)),
                scores=scores[rows], pool_fraction=pool_fraction, n_pools=n_pools, pedigree=pedigree)
            log.update(calibration)
        plan["switch_rate"] = rate * float(options.get("switch_rate_scale", 1.0))
        plan["calibration"] = log
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
        family = np.asarray(plan.get("family_of") or np.arange(n), dtype=np.int64)[:n]
        path = family_donors(seed, family, self.start, self.stop, run_start=int(batch.run_start),
                             switch_rate=float(plan["switch_rate"]), n_donors=n_donors,
                             pools=_pools(plan), pedigree=_pedigree(plan))
        snps = np.arange(self.start, self.stop)
        mutate = hash_below(seed, _STREAM_MUTATE, individuals, snps, float(plan["mutation_rate"]))
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
