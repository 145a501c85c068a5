"""The compare step's privacy metrics on a SNP subsample against the same metrics on 20,000 SNPs.

Above 4,000 x 4,000 training x synthetic people the compare step computes its privacy metrics (exact
nearest neighbours and KING, chunk by chunk) on fewer SNPs (``compare.step.privacy_snps``). This measures
what that costs in accuracy on a cohort where 20,000 SNPs are affordable: the first
``GENOSYNTH_SCALE_COMPARE_N`` people (default 3,000) of a dataset, split 60 / 20 / 20 into train,
holdout and a stand-in synthetic cohort (``unseen real``: the gate must pass it; ``copy`` and
``3% redrawn``: it must block them, as in ``bench_compare``), each scored on 20,000, 5,000 and 2,000
evenly spaced SNPs.

Called by ``python -m benchmarks scale`` with ``GENOSYNTH_SCALE_PARTS`` naming ``compare`` and
``GENOSYNTH_SCALE_COMPARE_DATASET`` a dataset URL (e.g. the biobank-sim cohort of the biobank part).
"""

from __future__ import annotations

import os
import time

import numpy as np
import pandas as pd

from genosynth.compare import gate, privacy
from genosynth.compare.genotypes import CohortGenotypes, even_subsample, load_cohort
from genosynth.formats.dataset import Dataset

N_PEOPLE = int(os.environ.get("GENOSYNTH_SCALE_COMPARE_N", 3000))
SNP_COUNTS = (20_000, 5_000, 2_000)
KEYS = ("aats", "privacy_loss", "membership_auc", "fraction_closer_than_real_p1",
        "excess_first_degree_or_closer", "dcr_real_p1")


def _synthetic(kind: str, train: CohortGenotypes, unseen: CohortGenotypes, rng: np.random.Generator
               ) -> CohortGenotypes:
    if kind == "unseen real":
        return unseen
    dosages = train.dosages.copy()
    if kind == "3% redrawn":
        flip = rng.uniform(size=dosages.shape) < 0.03
        dosages[flip] = rng.integers(0, 3, size=int(flip.sum()))
    # Fingerprints as the synthetic cohort's own: identity is a separate (all-SNP) check.
    return CohortGenotypes(name="synthetic", sample_ids=train.sample_ids, dosages=dosages,
                           fingerprints=np.array([f"s{i}" for i in range(train.n)], dtype=object))


def measure(dataset_url: str, n_people: int = N_PEOPLE) -> pd.DataFrame:
    """Privacy metrics and gate verdict of each stand-in synthetic cohort on each SNP count."""
    ds = Dataset.open(dataset_url)
    people = even_subsample(ds.n_samples, n_people)
    order = np.random.default_rng(0).permutation(people.size)
    n_train, n_holdout = int(0.6 * people.size), int(0.2 * people.size)
    split = {"train": np.sort(people[order[:n_train]]),
             "holdout": np.sort(people[order[n_train:n_train + n_holdout]]),
             "unseen": np.sort(people[order[n_train + n_holdout:]])}
    rows = []
    for k in SNP_COUNTS:
        snps = even_subsample(ds.n_variants, k)
        cohorts = {name: load_cohort(ds, snps, name=name, sample_index=rows_)
                   for name, rows_ in split.items()}
        for kind in ("unseen real", "copy", "3% redrawn"):
            synthetic = _synthetic(kind, cohorts["train"], cohorts["unseen"], np.random.default_rng(1))
            started, cpu = time.perf_counter(), time.process_time()
            pairs = privacy.compute_pairs(cohorts["train"], cohorts["holdout"], synthetic)
            metrics, _ = privacy.privacy_metrics(cohorts["train"], cohorts["holdout"], synthetic, pairs,
                                                 seed=0)
            wall, cpu = time.perf_counter() - started, time.process_time() - cpu
            verdict = gate.evaluate(metrics, gate.DEFAULT_THRESHOLDS)
            rows.append({"snps": len(snps), "synthetic": kind, **{key: metrics[key] for key in KEYS},
                         "gate": "pass" if verdict.passed else "FAIL", "wall_s": wall, "cpu_s": cpu})
    table = pd.DataFrame(rows)
    exact = table[table["snps"] == table["snps"].max()].set_index("synthetic")
    for key in KEYS:
        table[f"d_{key}"] = table[key].to_numpy() - exact.loc[table["synthetic"], key].to_numpy()
    return table


def main() -> None:
    url = os.environ.get("GENOSYNTH_SCALE_COMPARE_DATASET")
    if not url:
        print("GENOSYNTH_SCALE_COMPARE_DATASET not set: compare part skipped")
        return
    table = measure(url)
    with pd.option_context("display.width", 250, "display.max_columns", 40,
                           "display.float_format", lambda v: f"{v:.4g}"):
        print(f"\nprivacy metrics on SNP subsamples ({N_PEOPLE:,} people of {url}; d_ = minus the "
              f"{max(SNP_COUNTS):,}-SNP value)")
        print(table.to_string(index=False))
