"""SNP batches and phenotype column groups."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from genosynth.prep.batching import make_batches, phenotype_groups, snp_runs
from genosynth.prep.step import split_individuals


def _variants(chroms: list[str], positioned: list[bool]) -> pd.DataFrame:
    pos = pd.array([i * 1000 if p else None for i, p in enumerate(positioned)], dtype="Int64")
    return pd.DataFrame({"id": [f"s{i}" for i in range(len(chroms))], "chr": chroms, "pos": pos})


def test_batches_cover_every_snp_once_within_one_chromosome():
    variants = _variants(["1"] * 2500 + ["2"] * 700, [True] * 3200)
    batches = make_batches(variants, batch_snps=1000, context_snps=50)
    owned = np.concatenate([np.arange(b["start"], b["stop"]) for b in batches])
    assert np.array_equal(owned, np.arange(3200))
    chrom = variants["chr"].to_numpy()
    for b in batches:
        assert b["stop"] - b["start"] <= 1000
        assert set(chrom[b["context_start"] : b["context_stop"]]) == {b["chr"]}
        assert b["context_start"] <= b["start"] and b["context_stop"] >= b["stop"]
    first_chr2 = next(b for b in batches if b["chr"] == "2")
    assert first_chr2["context_start"] == first_chr2["start"] == first_chr2["run_start"] == 2500
    # Interior edges get context on both sides so LD continues across them.
    assert batches[1]["context_start"] == batches[1]["start"] - 50


def test_long_unpositioned_stretch_is_its_own_run_and_short_ones_stay_in_place():
    positioned = [True] * 100 + [False] * 3 + [True] * 100 + [False] * 80
    runs = snp_runs(_variants(["1"] * len(positioned), positioned), min_unpositioned=50)
    assert runs == [("1", 0, 203, True), ("1", 203, 283, False)]


def test_phenotype_groups_put_correlated_columns_together():
    rng = np.random.default_rng(0)
    a = rng.normal(size=500)
    samples = pd.DataFrame({
        "weight": a, "length": a + 0.5 * rng.normal(size=500), "glucose": rng.normal(size=500),
        "cage": rng.choice(["x", "y"], size=500),
    })
    groups = phenotype_groups(samples, ["weight", "length", "glucose", "cage"])
    assert ["weight", "length"] in groups
    assert sorted(map(sorted, groups)) == [["cage"], ["glucose"], ["length", "weight"]]


def test_split_is_disjoint_seeded_and_sized():
    train, holdout = split_individuals(1000, 0.2, seed=3)
    assert len(holdout) == 200 and len(train) == 800
    assert not set(train) & set(holdout)
    again = split_individuals(1000, 0.2, seed=3)
    assert np.array_equal(again[0], train)
    assert not np.array_equal(split_individuals(1000, 0.2, seed=4)[1], holdout)


def test_the_batch_plan_round_trips_and_names_its_file_when_damaged(tmp_path):
    from genosynth import storage
    from genosynth.errors import InputError
    from genosynth.run_state import BatchPlan, plan_url

    run_url = str(tmp_path / "run")
    variants = _variants(["1"] * 900 + ["2"] * 300, [True] * 1200)
    plan = BatchPlan.build(make_batches(variants, batch_snps=400, context_snps=20), [["a", "b"], ["c"]])
    plan.write(run_url)
    again = BatchPlan.read(run_url)
    assert again == plan
    assert again.numbers == list(range(len(plan.batches)))
    assert sum(b.n_snps for b in again.batches) == 1200
    with pytest.raises(InputError, match="out of range"):
        again.batch(len(plan.batches), source=plan_url(run_url))

    document = storage.read_json(plan_url(run_url))
    del document["batches"][1]["stop"]
    storage.write_json(plan_url(run_url), document)
    with pytest.raises(InputError, match=r"batches\.json: not a batch plan"):
        BatchPlan.read(run_url)
    storage.write_json(plan_url(run_url), {**plan.to_json(), "schema_version": 99})
    with pytest.raises(InputError, match="schema_version 1 expected, found 99"):
        BatchPlan.read(run_url)
