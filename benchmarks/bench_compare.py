"""What the compare step and the privacy gate say about reference "synthetic" cohorts built from real data,
and what the compare and report steps cost.

Each real cohort is split into training (60%), holdout (20%) and a stand-in synthetic cohort:

- ``unseen real``: the remaining 20% of real individuals, i.e. what an ideal generator would produce (fresh
  genomes of the same population, never trained on). The gate must pass it;
- ``copy``: the training genomes themselves. The gate must block it;
- ``3% redrawn``: the training genomes with 3% of calls redrawn at random (no genome identical any more,
  each still next to its original). The gate must block it.

The GWAS tables are the per-SNP linear model of ``genosynth.gwas`` (the comparison does not depend on the
model; the LMM costs more time than this benchmark is about).
"""

from __future__ import annotations

import io
import os
import tempfile
import time

import numpy as np

from genosynth import compare_records, run_layout, storage
from genosynth.compare import step as compare_step
from genosynth.datasets import get_dataset
from genosynth.datasets.hs1940 import get_hs1940
from genosynth.formats.dataset import Dataset, write_dataset
from genosynth.gwas import run_gwas
from genosynth.report import step as report_step
from genosynth.run_config import RunConfig

KINDS = ("unseen real", "copy", "3% redrawn")


def _subset(url: str, ds: Dataset, dosages: np.ndarray, rows: np.ndarray, *,
            extra: dict | None = None) -> None:
    write_dataset(url, ds.samples.iloc[rows].reset_index(drop=True), ds.variants, dosages[rows],
                  traits=ds.traits, covariates=ds.covariates, column_kinds=ds.column_kinds, extra=extra)


def _gwas(run_url: str, key: str, dataset_key: str, traits: list[str]) -> None:
    table = run_gwas(run_layout.url(run_url, dataset_key), traits, model="lm").table
    buffer = io.BytesIO()
    table.to_parquet(buffer, index=False)
    storage.write_bytes(run_layout.url(run_url, key), buffer.getvalue())


def _run(base: str, ds: Dataset, dosages: np.ndarray, kind: str, traits: list[str], seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    order = rng.permutation(ds.n_samples)
    n_train, n_holdout = int(0.6 * ds.n_samples), int(0.2 * ds.n_samples)
    train = np.sort(order[:n_train])
    holdout = np.sort(order[n_train : n_train + n_holdout])
    unseen = np.sort(order[n_train + n_holdout :])
    run_url = os.path.join(base, kind.replace(" ", "_").replace("%", "pc"))
    RunConfig(dataset_url=ds.url, seed=seed, traits=traits).save(run_url)
    _subset(run_layout.url(run_url, run_layout.PREP_TRAIN), ds, dosages, train)
    _subset(run_layout.url(run_url, run_layout.PREP_HOLDOUT), ds, dosages, holdout)
    synth_url = run_layout.url(run_url, run_layout.SYNTHETIC)
    if kind == "unseen real":
        _subset(synth_url, ds, dosages, unseen, extra={"released": False})
    else:
        synthetic = dosages[train].copy()
        if kind == "3% redrawn":
            flip = rng.uniform(size=synthetic.shape) < 0.03
            synthetic[flip] = rng.integers(0, 3, size=int(flip.sum()))
        write_dataset(synth_url, ds.samples.iloc[train].reset_index(drop=True), ds.variants, synthetic,
                      traits=ds.traits, covariates=ds.covariates, column_kinds=ds.column_kinds,
                      extra={"released": False})
    _gwas(run_url, run_layout.GWAS_REAL, run_layout.PREP_TRAIN, traits)
    _gwas(run_url, run_layout.GWAS_SYNTHETIC, run_layout.SYNTHETIC, traits)
    started, cpu = time.perf_counter(), time.process_time()
    compare_step.run(run_url)
    compare_seconds, compare_cpu = time.perf_counter() - started, time.process_time() - cpu
    started = time.perf_counter()
    report_step.run(run_url)
    report_seconds = time.perf_counter() - started
    metrics = storage.read_json(run_layout.url(run_url, run_layout.COMPARE_METRICS))
    verdict = compare_records.read_gate(run_url)
    return {"metrics": metrics, "verdict": verdict, "compare_s": compare_seconds,
            "compare_cpu_s": compare_cpu, "report_s": report_seconds}


def _fmt(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _print(cohort: str, results: dict[str, dict]) -> None:
    header = ("cohort", "synthetic", "compare s", "compare cpu s", "report s", "identical", "closer p1",
              "AATS", "loss", "MIA AUC", "1st° excess", "F1 1e-8", "gate")
    rows = []
    for kind, result in results.items():
        privacy = result["metrics"]["privacy"]
        trait = next(iter(result["metrics"]["association"].values()))
        failed = [c["metric"] for c in result["verdict"].checks if not c["passed"]]
        rows.append((cohort, kind, f"{result['compare_s']:.1f}", f"{result['compare_cpu_s']:.1f}",
                     f"{result['report_s']:.1f}",
                     privacy["identical_genomes"], _fmt(privacy["fraction_closer_than_real_p1"]),
                     _fmt(privacy["aats"]), _fmt(privacy["privacy_loss"]), _fmt(privacy["membership_auc"]),
                     _fmt(privacy["excess_first_degree_or_closer"]),
                     _fmt(trait["thresholds"]["1e-8"]["f1"]),
                     "pass" if result["verdict"].passed else "FAIL: " + ", ".join(failed)))
    widths = [max(len(str(r[i])) for r in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)), flush=True)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-compare-") as base:
        cohorts = [("hs1940", lambda: get_hs1940(os.path.join(base, "hs1940")), ["trait1"])]
        if os.environ.get("GENOSYNTH_BENCH_QUICK") != "1":
            cohorts.append(("cfw-sim", lambda: get_dataset("cfw-sim", os.path.join(base, "cfw"), seed=0),
                            None))
        for name, build, traits in cohorts:
            ds = build()
            dosages = ds.dosages()
            chosen = traits or ds.traits[:1]
            results = {kind: _run(os.path.join(base, name), ds, dosages, kind, chosen) for kind in KINDS}
            print(f"\n{name}: {ds.n_samples} individuals x {ds.n_variants} SNPs, trait {chosen[0]}",
                  flush=True)
            _print(name, results)
            del dosages


if __name__ == "__main__":
    main()
