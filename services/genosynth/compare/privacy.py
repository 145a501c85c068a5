"""Privacy of a synthetic cohort against the training cohort, with the holdout cohort as the reference.

Every measure rests on pairwise comparisons of genomes on hard calls:

- *distance*: mean absolute genotype difference per jointly observed SNP (L1 / Hamming on {0, 1, 2},
  range 0-2; 0 means identical on every SNP both genomes have);
- *KING-robust kinship* (Manichaikul et al. 2010, within-family form; PLINK 2 reports the between-family
  form): ``(N_AaAa - 2 N_AA,aa) / (N_Aa(i) + N_Aa(j))`` over jointly observed SNPs; 0.5 for duplicates,
  about 0.25 / 0.125 / 0.0625 for first / second / third degree relatives.

Both come from :func:`genosynth.genetics.relatedness.pair_counts`: a few matrix products of one-hot genotype
indicators, accumulated over SNP blocks. Every metric needs only each genome's nearest neighbour and its
largest KING kinship, so :func:`neighbours` computes the pairs a chunk of rows at a time and keeps those
per-genome reductions: memory is ``O(chunk * n_b)`` whatever the cohort sizes, and the result is the exact
brute-force nearest neighbour (no approximate index).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from genosynth.compare.genotypes import CohortGenotypes
from genosynth.genetics.relatedness import (
    KING_DUPLICATE,
    KING_FIRST_DEGREE,
    KING_SECOND_DEGREE,
    SNP_BLOCK,
    genotype_distance,
    king_from_counts,
    pair_counts,
)
from genosynth.genetics.roc import auc, auc_standard_error


@dataclass
class PairStatistics:
    """Distances and KING kinship between every genome of cohort A (rows) and of cohort B (columns).

    Attributes
    ----------
    distance : (n_a, n_b) float32
        Mean absolute genotype difference over jointly observed SNPs (NaN when none is shared).
    king : (n_a, n_b) float32
        KING-robust kinship (NaN when neither genome has a heterozygous call on shared SNPs).
    """

    distance: np.ndarray
    king: np.ndarray


def pair_statistics(calls_a: np.ndarray, calls_b: np.ndarray, block: int = SNP_BLOCK) -> PairStatistics:
    """Distances and KING kinship between the genomes of two cohorts.

    Parameters
    ----------
    calls_a : (n_a, k) int8
        Hard calls in {0, 1, 2}, ``-1`` missing; same SNPs as ``calls_b``.
    calls_b : (n_b, k) int8
    """
    counts = pair_counts(calls_a, calls_b, block)
    return PairStatistics(distance=genotype_distance(counts).astype(np.float32),
                          king=king_from_counts(counts).astype(np.float32))


def nearest(distance: np.ndarray, *, exclude_self: bool = False) -> np.ndarray:
    """Distance from each row genome to its closest column genome, ``(n_a,)``.

    ``exclude_self`` (square within-cohort matrices) skips the diagonal: leave-one-out nearest neighbour.
    """
    d = np.array(distance, dtype=np.float64)
    if exclude_self:
        np.fill_diagonal(d, np.inf)
    d[np.isnan(d)] = np.inf
    return d.min(axis=1)


#: Pairs computed at once by :func:`neighbours` (chunk rows x every column): about 6 float64 count matrices
#: of this many cells, ~200 MB, whatever the cohort sizes.
PAIR_CHUNK_CELLS = 4_000_000


@dataclass(frozen=True)
class Neighbours:
    """Each genome's nearest neighbour in the other cohort, and each row genome's closest relative.

    Attributes
    ----------
    row_nearest : (n_a,) float
        Distance from each genome of cohort A to its closest genome of B (``inf`` when none shares a SNP;
        within one cohort, to its closest *other* genome).
    col_nearest : (n_b,) float
        Distance from each genome of B to its closest genome of A.
    row_max_king : (n_a,) float
        Each A genome's largest KING kinship to a B genome (NaN when no pair has one).
    """

    row_nearest: np.ndarray
    col_nearest: np.ndarray
    row_max_king: np.ndarray

    @classmethod
    def of(cls, stats: PairStatistics, *, within: bool = False) -> Neighbours:
        """The reductions of full ``(n_a, n_b)`` pair matrices (``within``: one cohort, diagonal skipped)."""
        king = np.where(np.isnan(stats.king), -np.inf, np.asarray(stats.king, dtype=np.float64))
        if within:
            np.fill_diagonal(king, -np.inf)
        best = king.max(axis=1) if king.size else np.zeros(king.shape[0])
        return cls(row_nearest=nearest(stats.distance, exclude_self=within),
                   col_nearest=nearest(np.asarray(stats.distance).T, exclude_self=within),
                   row_max_king=np.where(np.isfinite(best), best, np.nan))


def neighbours(calls_a: np.ndarray, calls_b: np.ndarray | None = None, *,
               chunk_cells: int = PAIR_CHUNK_CELLS, block: int = SNP_BLOCK) -> Neighbours:
    """Exact nearest neighbours and closest KING relatives between two cohorts, a chunk of rows at a time.

    Parameters
    ----------
    calls_a : (n_a, k) int8
        Hard calls in {0, 1, 2}, ``-1`` missing.
    calls_b : (n_b, k) int8, optional
        Same SNPs; default ``calls_a`` (within one cohort: each genome's closest *other* genome).
    chunk_cells : rows per chunk are ``max(1, chunk_cells // n_b)``; memory is ``O(chunk * n_b)``.

    Returns
    -------
    :class:`Neighbours`, equal to ``Neighbours.of(pair_statistics(calls_a, calls_b))``.
    """
    within = calls_b is None
    calls_b = calls_a if calls_b is None else calls_b
    n_a, n_b = calls_a.shape[0], calls_b.shape[0]
    rows = max(1, chunk_cells // max(n_b, 1))
    row_nearest = np.full(n_a, np.inf)
    col_nearest = np.full(n_b, np.inf)
    row_king = np.full(n_a, np.nan)
    for start in range(0, n_a, rows):
        stop = min(start + rows, n_a)
        stats = pair_statistics(calls_a[start:stop], calls_b, block)
        distance = np.asarray(stats.distance, dtype=np.float64)
        distance[np.isnan(distance)] = np.inf
        king = np.where(np.isnan(stats.king), -np.inf, np.asarray(stats.king, dtype=np.float64))
        if within:
            local = np.arange(stop - start)
            distance[local, start + local] = np.inf
            king[local, start + local] = -np.inf
        row_nearest[start:stop] = distance.min(axis=1) if n_b else np.inf
        np.minimum(col_nearest, distance.min(axis=0), out=col_nearest)
        best = king.max(axis=1) if n_b else np.full(stop - start, -np.inf)
        row_king[start:stop] = np.where(np.isfinite(best), best, np.nan)
    return Neighbours(row_nearest=row_nearest, col_nearest=col_nearest, row_max_king=row_king)


def aats_from(between: Neighbours, within_a: Neighbours, within_b: Neighbours) -> float:
    """:func:`aats` from nearest-neighbour summaries: ``between`` of cohort A (rows) against B, and each
    cohort's within-cohort summary."""
    return float(0.5 * (np.mean(between.row_nearest > within_a.row_nearest)
                        + np.mean(between.col_nearest > within_b.row_nearest)))


def aats(d_real_synth: np.ndarray, d_real_real: np.ndarray, d_synth_synth: np.ndarray) -> float:
    """Nearest-neighbour adversarial accuracy AA_TS (Yelmen et al. 2021) of two equally sized cohorts.

    ``AA_TS = 1/2 [ mean(d_TS > d_TT) + mean(d_ST > d_SS) ]`` where ``d_TS(i)`` is real genome i's distance
    to the closest synthetic genome, ``d_TT(i)`` to the closest other real genome, and ``d_ST``, ``d_SS``
    likewise for synthetic genomes. 0.5: a nearest-neighbour classifier cannot tell the cohorts apart;
    near 0: synthetic genomes sit on top of real ones (copies); near 1: they are easy to tell apart.

    Parameters
    ----------
    d_real_synth : (n, n) distances real (rows) to synthetic (columns)
    d_real_real, d_synth_synth : (n, n) within-cohort distances (diagonal ignored)
    """
    d_ts = nearest(d_real_synth)
    d_st = nearest(d_real_synth.T)
    d_tt = nearest(d_real_real, exclude_self=True)
    d_ss = nearest(d_synth_synth, exclude_self=True)
    return float(0.5 * (np.mean(d_ts > d_tt) + np.mean(d_st > d_ss)))


def _quantiles(values: np.ndarray, qs: tuple[float, ...] = (0.0, 0.01, 0.05, 0.5, 0.95)) -> dict[str, float]:
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return {f"q{q:g}": math.nan for q in qs}
    return {f"q{q:g}": float(np.quantile(values, q)) for q in qs}


def _share(flags: np.ndarray) -> float:
    return float(np.mean(flags)) if np.size(flags) else math.nan


def _balanced(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    return np.sort(rng.choice(n, size=size, replace=False)) if size < n else np.arange(n)


@dataclass
class PrivacyInputs:
    """Nearest-neighbour summaries among the three cohorts (rows first: ``synth_train`` has a row per
    synthetic genome), computed once; within-cohort summaries skip each genome itself."""

    synth_train: Neighbours
    holdout_train: Neighbours
    train_train: Neighbours
    synth_synth: Neighbours
    holdout_synth: Neighbours
    holdout_holdout: Neighbours


def compute_pairs(
    train: CohortGenotypes, holdout: CohortGenotypes, synthetic: CohortGenotypes, *,
    train_train: PairStatistics | None = None, synth_synth: PairStatistics | None = None,
) -> PrivacyInputs:
    """Every nearest-neighbour summary that the privacy metrics need, chunk by chunk (no n x n matrix).

    ``train_train`` / ``synth_synth``: the within-cohort pair matrices on the same genomes and SNPs when
    the caller already has them (the structure metrics of a small cohort), reduced instead of recomputed.
    """
    t, h, s = train.calls(), holdout.calls(), synthetic.calls()
    return PrivacyInputs(
        synth_train=neighbours(s, t),
        holdout_train=neighbours(h, t),
        train_train=neighbours(t) if train_train is None else Neighbours.of(train_train, within=True),
        synth_synth=neighbours(s) if synth_synth is None else Neighbours.of(synth_synth, within=True),
        holdout_synth=neighbours(h, s),
        holdout_holdout=neighbours(h),
    )


@dataclass(frozen=True)
class IdenticalGenomes:
    """Genomes equal to a training genome on every SNP of the dataset (by fingerprint)."""

    synthetic: int
    holdout: int


def identical_genomes(train: CohortGenotypes, holdout: CohortGenotypes,
                      synthetic: CohortGenotypes) -> IdenticalGenomes:
    train_set = set(train.fingerprints.tolist())
    return IdenticalGenomes(synthetic=int(sum(f in train_set for f in synthetic.fingerprints.tolist())),
                            holdout=int(sum(f in train_set for f in holdout.fingerprints.tolist())))


@dataclass(frozen=True)
class Closeness:
    """Distance to closest record (DCR): each genome's nearest training genome.

    Attributes
    ----------
    synth_to_train, holdout_to_train, train_to_train : (n_s,), (n_h,), (n_t,) float
        Nearest-neighbour distances (train to its closest *other* training genome).
    real_p1 : float
        1st percentile of the real cohort's own nearest-neighbour distances (holdout-to-train pooled with
        train-to-other-train); NaN when none is finite.
    synthetic_closer, holdout_closer : float
        Share of synthetic / holdout genomes closer to a training genome than ``real_p1``.
    """

    synth_to_train: np.ndarray
    holdout_to_train: np.ndarray
    train_to_train: np.ndarray
    real_p1: float
    synthetic_closer: float
    holdout_closer: float

    @property
    def synthetic_closer_beyond_noise(self) -> float:
        """``synthetic_closer`` less 1.96 binomial standard errors."""
        share = self.synthetic_closer
        return share - 1.96 * math.sqrt(share * (1 - share) / max(self.synth_to_train.size, 1))


def closeness(pairs: PrivacyInputs) -> Closeness:
    synth_to_train = pairs.synth_train.row_nearest
    holdout_to_train = pairs.holdout_train.row_nearest
    train_to_train = pairs.train_train.row_nearest
    # The real cohort's own nearest-neighbour distances: unseen (holdout) genomes to training genomes,
    # pooled with training genomes to their closest other training genome (same distribution, more values,
    # so a steadier 1st percentile).
    real_nn = np.concatenate([holdout_to_train, train_to_train])
    real_nn = real_nn[np.isfinite(real_nn)]
    real_p1 = float(np.quantile(real_nn, 0.01)) if real_nn.size else math.nan
    return Closeness(synth_to_train=synth_to_train, holdout_to_train=holdout_to_train,
                     train_to_train=train_to_train, real_p1=real_p1,
                     synthetic_closer=_share(synth_to_train < real_p1),
                     holdout_closer=_share(holdout_to_train < real_p1))


@dataclass(frozen=True)
class AdversarialAccuracy:
    """AATS of the synthetic cohort against training genomes (all) and against holdout and training
    genomes on cohorts of the holdout's size (``train_matched``), whose difference is the privacy loss."""

    train: float
    holdout: float
    train_matched: float

    @property
    def privacy_loss(self) -> float:
        return self.holdout - self.train_matched


def adversarial_accuracy(pairs: PrivacyInputs, train: CohortGenotypes, holdout: CohortGenotypes,
                         synthetic: CohortGenotypes, rng: np.random.Generator) -> AdversarialAccuracy:
    """AATS needs cohorts of equal size: the larger one is subsampled (deterministically, from ``rng``).

    A cohort used whole reuses the summaries of ``pairs``; a subsample gets its own (chunked) summaries.
    """
    cache: dict[tuple, Neighbours] = {}
    whole = {("synthetic", "train"): pairs.synth_train, ("train", "train"): pairs.train_train,
             ("synthetic", "synthetic"): pairs.synth_synth, ("holdout", "synthetic"): pairs.holdout_synth,
             ("holdout", "holdout"): pairs.holdout_holdout}
    cohorts = {"train": train, "holdout": holdout, "synthetic": synthetic}

    def summary(a: str, ia: np.ndarray, b: str, ib: np.ndarray) -> Neighbours:
        if ia.size == cohorts[a].n and ib.size == cohorts[b].n and (a, b) in whole:
            return whole[(a, b)]
        key = (a, ia.tobytes(), b, ib.tobytes())
        if key not in cache:
            calls_a = cohorts[a].calls()[ia]
            same = a == b and np.array_equal(ia, ib)
            cache[key] = neighbours(calls_a) if same else neighbours(calls_a, cohorts[b].calls()[ib])
        return cache[key]

    def accuracy(a: str, ia: np.ndarray, b: str, ib: np.ndarray, swap: bool = False) -> float:
        # AATS of cohort ``a`` (the real side) against ``b``; ``swap``: the between summary is stored b-first.
        between = summary(b, ib, a, ia) if swap else summary(a, ia, b, ib)
        if swap:
            between = Neighbours(row_nearest=between.col_nearest, col_nearest=between.row_nearest,
                                 row_max_king=np.full(between.col_nearest.shape, np.nan))
        return aats_from(between, summary(a, ia, a, ia), summary(b, ib, b, ib))

    n_train, n_holdout, n_synthetic = train.n, holdout.n, synthetic.n
    n = min(n_train, n_synthetic)
    ti, si = _balanced(rng, n_train, n), _balanced(rng, n_synthetic, n)
    full = accuracy("train", ti, "synthetic", si, swap=True)
    m = min(n_holdout, n_synthetic, n_train)
    hi, si_m, ti_m = _balanced(rng, n_holdout, m), _balanced(rng, n_synthetic, m), _balanced(rng, n_train, m)
    held = accuracy("holdout", hi, "synthetic", si_m)
    matched = accuracy("train", ti_m, "synthetic", si_m, swap=True)
    return AdversarialAccuracy(train=full, holdout=held, train_matched=matched)


@dataclass(frozen=True)
class MembershipInference:
    """The distance-to-closest-synthetic attack: a real genome is called a training member the closer it
    lies to a synthetic genome (training genomes are members, holdout genomes are not)."""

    auc: float
    members: int
    non_members: int

    @property
    def auc_beyond_noise(self) -> float:
        # Less 1.96 standard errors, like the other shares: with a holdout of ~100 genomes the AUC of an
        # ideal generator scatters by +-0.07, so the raw value alone would fail good cohorts at random.
        return self.auc - 1.96 * auc_standard_error(self.auc, self.members, self.non_members)


def membership_inference(pairs: PrivacyInputs) -> MembershipInference:
    member_score = -pairs.synth_train.col_nearest
    nonmember_score = -pairs.holdout_synth.row_nearest
    return MembershipInference(auc=auc(member_score, nonmember_score), members=member_score.size,
                               non_members=nonmember_score.size)


#: KING levels of the relative shares, by the label used in the metric keys.
RELATIVE_CUTS = (("second_degree", KING_SECOND_DEGREE), ("first_degree", KING_FIRST_DEGREE),
                 ("duplicate", KING_DUPLICATE))


@dataclass(frozen=True)
class RelativeShare:
    """Shares of synthetic and of holdout genomes with a training relative above one KING cut-off."""

    label: str
    synthetic: float
    holdout: float
    noise: float  # 1.96 standard errors of the difference of the two proportions

    @property
    def excess(self) -> float:
        return self.synthetic - self.holdout

    @property
    def excess_beyond_noise(self) -> float:
        return self.excess - self.noise


@dataclass(frozen=True)
class Relatives:
    """Each synthetic / holdout genome's largest KING kinship to a training genome, and the shares of
    genomes with a training relative at each level."""

    king_synthetic: np.ndarray
    king_holdout: np.ndarray
    shares: tuple[RelativeShare, ...]


def relatives(pairs: PrivacyInputs) -> Relatives:
    king_synth = pairs.synth_train.row_max_king
    king_holdout = pairs.holdout_train.row_max_king
    king_synth, king_holdout = king_synth[np.isfinite(king_synth)], king_holdout[np.isfinite(king_holdout)]
    shares = []
    for label, cut in RELATIVE_CUTS:
        synth_share, holdout_share = _share(king_synth > cut), _share(king_holdout > cut)
        # The holdout share is an estimate from a few hundred genomes: discount two standard errors of the
        # difference so that an ideal generator is not failed by sampling noise.
        noise = 1.96 * math.sqrt(synth_share * (1 - synth_share) / max(king_synth.size, 1)
                                 + holdout_share * (1 - holdout_share) / max(king_holdout.size, 1))
        shares.append(RelativeShare(label=label, synthetic=synth_share, holdout=holdout_share, noise=noise))
    return Relatives(king_synthetic=king_synth, king_holdout=king_holdout, shares=tuple(shares))


def privacy_metrics(
    train: CohortGenotypes, holdout: CohortGenotypes, synthetic: CohortGenotypes, pairs: PrivacyInputs,
    *, seed: int = 0,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Privacy metrics of ``synthetic`` against ``train`` with ``holdout`` as the never-seen reference.

    Four families, each from its own function: :func:`identical_genomes`, :func:`closeness` (distance to
    closest record), :func:`adversarial_accuracy` (AATS) with :func:`membership_inference`, and
    :func:`relatives` (KING kinship to training genomes).

    Returns
    -------
    metrics : dict
        ``identical_genomes`` (synthetic genomes equal to a training genome on every SNP of the dataset);
        ``dcr_*`` (distance to closest record: quantiles of synthetic-to-train, holdout-to-train and
        train-to-other-train nearest-neighbour distances) and ``fraction_closer_than_real_p1``, the share of
        synthetic genomes closer to a training genome than the 1st percentile ``dcr_real_p1`` of the real
        cohort's nearest-neighbour distances (holdout-to-train pooled with train-to-other-train), and
        that share less 1.96 binomial standard errors (``..._beyond_noise``);
        ``aats`` (synthetic vs train), ``aats_holdout``, ``aats_train_matched`` and
        ``privacy_loss = aats_holdout - aats_train_matched`` (both on cohorts of the holdout's size);
        ``membership_auc`` (attack: a real genome is called a training member the closer it is to a
        synthetic genome; train = members, holdout = non-members) and ``membership_auc_beyond_noise``,
        that AUC less 1.96 Hanley-McNeil standard errors; the KING kinship between synthetic and
        training genomes (``max_king_kinship``; the share of synthetic genomes with a training relative of
        2nd degree, 1st degree or duplicate level) next to the same figures for holdout genomes, the
        ``excess_*`` of the synthetic share over the holdout share, and ``excess_*_beyond_noise``: that
        excess less 1.96 standard errors of the difference of two proportions. The keys are the fields of
        ``genosynth.compare_records.Privacy``.
    details : dict
        Distributions for the report (nearest-neighbour distances of each kind).
    """
    rng = np.random.default_rng([seed, 20211103])
    identical = identical_genomes(train, holdout, synthetic)
    close = closeness(pairs)
    accuracy = adversarial_accuracy(pairs, train, holdout, synthetic, rng)
    membership = membership_inference(pairs)
    related = relatives(pairs)
    metrics: dict[str, Any] = {
        "identical_genomes": identical.synthetic,
        "identical_genomes_holdout": identical.holdout,
        "dcr_synthetic_to_train": _quantiles(close.synth_to_train),
        "dcr_holdout_to_train": _quantiles(close.holdout_to_train),
        "dcr_train_to_train": _quantiles(close.train_to_train),
        "dcr_real_p1": close.real_p1,
        "fraction_closer_than_real_p1": close.synthetic_closer,
        "fraction_holdout_closer_than_real_p1": close.holdout_closer,
        # Less 1.96 binomial standard errors: the near-duplicate families of outbred colonies make this
        # share lumpy (unseen hs1940 mice score 0.021 against an expected 0.01).
        "fraction_closer_than_real_p1_beyond_noise": close.synthetic_closer_beyond_noise,
        "aats": accuracy.train,
        "aats_holdout": accuracy.holdout,
        "aats_train_matched": accuracy.train_matched,
        "privacy_loss": accuracy.privacy_loss,
        "membership_auc": membership.auc,
        "membership_auc_beyond_noise": membership.auc_beyond_noise,
        "max_king_kinship": float(np.max(related.king_synthetic, initial=-np.inf)),
        "max_king_kinship_holdout": float(np.max(related.king_holdout, initial=-np.inf)),
    }
    for share in related.shares:
        metrics[f"fraction_synthetic_{share.label}_or_closer"] = share.synthetic
        metrics[f"fraction_holdout_{share.label}_or_closer"] = share.holdout
        metrics[f"excess_{share.label}_or_closer"] = share.excess
        metrics[f"excess_{share.label}_or_closer_beyond_noise"] = share.excess_beyond_noise
    metrics["snps_used"] = int(train.dosages.shape[1])
    details = {
        "nn_synthetic_to_train": close.synth_to_train,
        "nn_holdout_to_train": close.holdout_to_train,
        "nn_train_to_train": close.train_to_train,
        "max_king_synthetic_to_train": related.king_synthetic,
        "max_king_holdout_to_train": related.king_holdout,
    }
    return metrics, details
