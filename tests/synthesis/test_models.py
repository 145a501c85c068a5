"""Both genotype model families behind one interface, on the demo colony's genotypes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genosynth.errors import InputError
from genosynth.models import families, get_family, load_model
from genosynth.models.mosaic import (
    balanced_donor_path,
    calibrate_switch_rate,
    donor_path,
    family_donors,
    membership_auc,
    pedigree_founders,
)
from genosynth.run_state import SnpBatch

BATCH = SnpBatch(batch=0, chr="1", start=30, stop=230, context_start=0, context_stop=260, run_start=0,
                 positioned=True)
PLAN = {"n_synthetic": 300, "switch_rate": 0.01, "mutation_rate": 0.002}
OPTIONS = {"epochs": 40}


@pytest.fixture(scope="module")
def real_block(demo_dataset):
    return demo_dataset.dosages(BATCH.context_start, BATCH.context_stop)


def _adjacent_r2(dosages: np.ndarray, lag: int) -> np.ndarray:
    x = np.where(np.isnan(dosages), np.nanmean(dosages, axis=0), dosages)
    x = x - x.mean(axis=0)
    num = (x[:, :-lag] * x[:, lag:]).sum(axis=0)
    den = np.sqrt((x[:, :-lag] ** 2).sum(axis=0) * (x[:, lag:] ** 2).sum(axis=0))
    return np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0) ** 2


def test_registry_lists_both_families_and_rejects_unknown():
    assert {"mosaic", "autoregressive"} <= set(families())
    with pytest.raises(InputError, match="unknown model 'gan'"):
        get_family("gan")


@pytest.mark.parametrize("family", ["mosaic", "autoregressive"])
def test_family_keeps_allele_frequencies_and_short_range_ld(family, real_block, tmp_path):
    cls = get_family(family)
    model = cls.fit(real_block, batch=BATCH, plan=PLAN, seed=5, options=OPTIONS, device=torch.device("cpu"))
    synthetic = model.sample(300, batch=BATCH, plan=PLAN, seed=5, device=torch.device("cpu"))
    own = real_block[:, BATCH.start - BATCH.context_start : BATCH.stop - BATCH.context_start]
    assert synthetic.shape == (300, BATCH.stop - BATCH.start)
    assert synthetic.dtype == np.float32
    assert set(np.unique(synthetic[~np.isnan(synthetic)])) <= {0.0, 1.0, 2.0}
    af_real, af_synth = np.nanmean(own, axis=0) / 2, np.nanmean(synthetic, axis=0) / 2
    assert np.corrcoef(af_real, af_synth)[0, 1] > 0.97
    assert np.abs(af_real - af_synth).mean() < 0.03
    for lag in (1, 5):
        r2_real, r2_synth = _adjacent_r2(own, lag), _adjacent_r2(synthetic, lag)
        assert abs(r2_synth.mean() - r2_real.mean()) < 0.12 * r2_real.mean() + 0.02, (lag, r2_real.mean(),
                                                                                       r2_synth.mean())
        assert np.corrcoef(r2_real, r2_synth)[0, 1] > 0.8
    # A fitted model survives a save/load round trip and samples the same genomes.
    model.save(str(tmp_path / family))
    again = load_model(str(tmp_path / family)).sample(300, batch=BATCH, plan=PLAN, seed=5,
                                                      device=torch.device("cpu"))
    assert np.array_equal(np.nan_to_num(again, nan=-1), np.nan_to_num(synthetic, nan=-1))


def test_mosaic_paths_join_seamlessly_across_batch_edges():
    individuals = np.arange(50)
    kwargs = {"run_start": 100, "switch_rate": 0.02, "n_donors": 300}
    whole = donor_path(9, individuals, 150, 900, **kwargs)
    left = donor_path(9, individuals, 150, 400, **kwargs)
    right = donor_path(9, individuals, 400, 900, **kwargs)
    assert np.array_equal(whole, np.concatenate([left, right], axis=1))
    # Segments: switches are rare, donors vary between individuals and along the genome.
    switches = (np.diff(whole, axis=1) != 0).mean()
    assert 0.005 < switches < 0.03
    assert len(np.unique(whole[:, 0])) > 30


def test_mosaic_restarts_each_chromosome_with_a_fresh_donor():
    individuals = np.arange(200)
    a = donor_path(1, individuals, 0, 10, run_start=0, switch_rate=1e-9, n_donors=500)
    b = donor_path(1, individuals, 10, 20, run_start=10, switch_rate=1e-9, n_donors=500)
    assert (a == a[:, :1]).all() and (b == b[:, :1]).all()
    assert (a[:, 0] != b[:, 0]).mean() > 0.9


def test_balanced_paths_join_across_batch_and_window_edges_and_spread_over_donors():
    individuals = np.arange(40)
    kwargs = {"run_start": 100, "switch_rate": 0.01, "n_donors": 300, "window": 512}
    whole = balanced_donor_path(9, individuals, 150, 3000, **kwargs)
    for cut in (151, 611, 612, 613, 1300, 2999):
        assert np.array_equal(whole[:, : cut - 150], balanced_donor_path(9, individuals, 150, cut, **kwargs))
        assert np.array_equal(whole[:, cut - 150 :], balanced_donor_path(9, individuals, cut, 3000, **kwargs))
    assert 0.005 < (np.diff(whole, axis=1) != 0).mean() < 0.02
    # Without replacement: fewer segments than donors, so no donor gives one genome two segments.
    for row in whole:
        segments = row[np.r_[True, row[1:] != row[:-1]]]
        assert len(np.unique(segments)) == len(segments)


def test_family_members_share_segments_and_strangers_do_not():
    family_of = np.repeat(np.arange(50), 2)  # 50 pairs of sibs
    donors = family_donors(4, family_of, 0, 4000, run_start=0, switch_rate=0.01, n_donors=500)
    sibs = (donors[0::2] == donors[1::2]).mean()
    strangers = (donors[0::2] == np.roll(donors[1::2], 1, axis=0)).mean()
    assert 0.35 < sibs < 0.65
    assert strangers < 0.02


def test_colony_pedigree_makes_clans_of_cousins_and_joins_across_batch_edges():
    # 4 clans of 8 founders over 3 generations: two clan-mates from different families share a founder at
    # a locus with probability about 1 - (7/8)^3 = 0.33; other clans share nothing; sibs stay sibs.
    family_of = np.repeat(np.arange(80), 2)
    pedigree = {"clans": 4, "generations": 3, "founders": 8}
    kwargs = {"run_start": 0, "switch_rate": 0.01, "n_donors": 500, "pedigree": pedigree}
    donors = family_donors(4, family_of, 0, 6000, **kwargs)
    assert np.array_equal(donors[:, :2500], family_donors(4, family_of, 0, 2500, **kwargs))
    assert np.array_equal(donors[:, 2500:], family_donors(4, family_of, 2500, 6000, **kwargs))
    sibs = (donors[0::2] == donors[1::2]).mean()
    first = donors[0::2]  # one member of each family: family f is in clan f % 4
    clan_mates = (first[:-4] == first[4:]).mean()
    other_clans = (first[:-1] == first[1:]).mean()
    assert 0.5 < sibs < 0.8  # sibs share a parent path half the time, plus what their parents share
    assert 0.2 < clan_mates < 0.5
    assert other_clans < 0.02
    # Segments stay as long as without the pedigree: the founder and meiosis rates add up to the rate.
    switches = (donors[:, 1:] != donors[:, :-1]).mean()
    assert 0.006 < switches < 0.014


def test_pedigree_founders_fill_the_missing_top_eigenvalues_and_only_those():
    real = np.array([0.054, 0.043, 0.038, 0.023])
    families = np.array([0.016, 0.015, 0.014, 0.013])
    founders = pedigree_founders(real, families, clans=4, generations=3)
    rho = 1 - (1 - 1 / founders) ** 3  # shared-founder probability of two clan-mates
    assert abs(rho / 4 - (real[:3].mean() - families[:3].mean())) < 0.003
    # No structure beyond what the sib families already give: no clans.
    assert pedigree_founders(families + 0.002, families, clans=4, generations=3) == 0


def test_membership_auc_tells_copies_from_fresh_genomes():
    rng = np.random.default_rng(2)
    members, fresh = rng.integers(0, 3, (60, 400)).astype(float), rng.integers(0, 3, (60, 400)).astype(float)
    assert membership_auc(members, fresh, members + 0.0) == 1.0
    assert abs(membership_auc(members, fresh, rng.integers(0, 3, (80, 400)).astype(float)) - 0.5) < 0.15


def test_the_calibrated_rate_hides_donors_from_the_simulated_attack():
    # 200 unrelated genomes: long segments would let the attack find donors; the calibration shortens them
    # until the family sampler's internal membership AUC is back at the leak-free level.
    rng = np.random.default_rng(5)
    train = rng.binomial(2, rng.uniform(0.1, 0.9, 1000), size=(200, 1000)).astype(float)
    first = np.zeros(1000, dtype=bool)
    first[[0, 500]] = True
    curve = np.r_[np.linspace(0.5, 0.01, 50), np.full(50, 0.01)]
    rate, log = calibrate_switch_rate(train, train[:20], np.arange(1000), first, curve,
                                      family_of=np.arange(250), mutation_rate=0.002, max_ld_loss=0.05, seed=3)
    assert log["membership_auc_at_ld_rate"] > 0.6
    assert rate > log["ld_rate"]
    assert log["membership_auc_internal"] <= 0.53
