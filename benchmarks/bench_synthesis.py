"""Synthesis benchmark: both genotype model families on hs1940 (traits 1 and 6) and on the demo cohort.

For each (cohort, family) it runs prep -> train -> generate -> assemble through the step functions, the
LMM GWAS (LOCO, our engine) of ``prep/train`` and of ``synthetic/``, and prints the issue's targets:
SNP-level F1 at 1e-8, locus recall/precision at Bonferroni, top -log10 p ratio, delta lambda_GC, allele-
frequency correlation, and the privacy measures of ``genosynth.compare.privacy`` (identical genomes,
DCR, AATS, membership-inference AUC, largest KING kinship), with the wall time of the synthesis steps.

Run with ``python -m benchmarks synthesis`` (``GENOSYNTH_BENCH_COHORTS=demo`` to limit the cohorts).
"""

from __future__ import annotations

import io
import os
import tempfile
import time
from typing import Any

from genosynth import run_layout, storage
from genosynth.compare import step as compare_step
from genosynth.formats.dataset import Dataset
from genosynth.generate import assemble
from genosynth.generate import step as generate_step
from genosynth.gwas import run_gwas
from genosynth.prep import step as prep_step
from genosynth.run_config import RunConfig
from genosynth.train import step as train_step

COHORTS = {"hs1940": ["trait1", "trait6"], "demo": None}
FAMILIES = ("mosaic", "autoregressive")
# Fewer epochs than the default keep the benchmark within minutes on 2 shared cores.
FAMILY_OPTIONS: dict[str, dict[str, Any]] = {"mosaic": {}, "autoregressive": {"epochs": 30}}


def make_cohort(name: str, root: str) -> str:
    url = storage.join(root, name)
    if name == "hs1940":
        from genosynth.datasets.hs1940 import get_hs1940

        get_hs1940(url)
    else:
        from genosynth.datasets.demo import make_demo

        make_demo(url, seed=0)
    return url


def synthesise(dataset_url: str, run_url: str, family: str, traits: list[str], seed: int = 1,
               options: dict[str, Any] | None = None) -> dict[str, float]:
    """Run the four synthesis steps; returns seconds per step."""
    RunConfig(dataset_url=dataset_url, traits=traits, model=family, seed=seed,
              model_options=options or {}).save(run_url)
    seconds = {}
    started = time.perf_counter()
    prep_step.run(run_url)
    seconds["prep"] = time.perf_counter() - started
    batches = storage.read_json(run_layout.url(run_url, run_layout.PREP_BATCHES))["batches"]
    for name, function in (("train", train_step.run), ("generate", generate_step.run)):
        started = time.perf_counter()
        for entry in batches:
            function(run_url, entry["batch"])
        seconds[name] = time.perf_counter() - started
    started = time.perf_counter()
    assemble.run(run_url)
    seconds["assemble"] = time.perf_counter() - started
    return seconds


def evaluate(run_url: str, traits: list[str]) -> dict[str, Any]:
    """GWAS (LMM, LOCO) of the whole real cohort and of ``synthetic/``, then the compare step's metrics.

    The synthetic cohort has the real cohort's size, so it is judged against the GWAS of every real
    individual (as an outside GEMMA check of the export does), not of the training split alone.
    """
    real = Dataset.open(RunConfig.load(run_url).dataset_url)
    synthetic = Dataset.open(run_layout.url(run_url, run_layout.SYNTHETIC))
    started = time.perf_counter()
    for dataset, key in ((real, run_layout.GWAS_REAL), (synthetic, run_layout.GWAS_SYNTHETIC)):
        table = run_gwas(dataset, traits, dataset.covariates, model="lmm", loco=True).table
        buffer = io.BytesIO()
        table.to_parquet(buffer, index=False)
        storage.write_bytes(run_layout.url(run_url, key), buffer.getvalue())
    gwas_seconds = time.perf_counter() - started
    compare_step.run(run_url)
    metrics = storage.read_json(run_layout.url(run_url, run_layout.COMPARE_METRICS))
    return {"gwas_seconds": gwas_seconds, **metrics}


def _share(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else float("nan")


def _row(cohort: str, family: str, trait: str, m: dict[str, Any], ev: dict[str, Any], total: float) -> str:
    at8, bonf = m["thresholds"]["1e-8"], m["thresholds"]["bonferroni"]
    recall = _share(bonf["loci_real_recovered"], bonf["loci_real"])
    precision = _share(bonf["loci_synthetic_real"], bonf["loci_synthetic"])
    p = ev["privacy"]
    af = ev["structure"]["allele_frequency"]["correlation"]
    return (f"{cohort:7s} {family:14s} {trait:12s} {at8['f1']:6.2f} {recall:6.2f} {precision:6.2f} "
            f"{m['top_neglog10p_real']:6.1f} {m['top_neglog10p_synthetic']:6.1f} "
            f"{m['top_neglog10p_ratio']:5.2f} {m['lambda_gc_delta']:+6.3f} {af:5.3f} "
            f"{p['identical_genomes']:3.0f} {p['fraction_closer_than_real_p1']:5.3f} {p['aats']:5.2f} "
            f"{p['membership_auc']:5.2f} {p['max_king_kinship']:5.2f} {total:6.0f}")


HEADER = ("cohort  family         trait          F1@8  Lrec  Lprec top_r  top_s ratio  dlam    afr  "
          "idn   dcr  aats   mia  king  synth_s")


def main() -> None:
    import torch

    torch.set_num_threads(2)
    chosen = os.environ.get("GENOSYNTH_BENCH_COHORTS", ",".join(COHORTS)).split(",")
    print(HEADER)
    with tempfile.TemporaryDirectory(prefix="genosynth-bench-") as root:
        for cohort in chosen:
            dataset_url = make_cohort(cohort, root)
            traits = COHORTS[cohort] or Dataset.open(dataset_url).traits
            for family in FAMILIES:
                run_url = storage.join(root, f"run-{cohort}-{family}")
                seconds = synthesise(dataset_url, run_url, family, traits, options=FAMILY_OPTIONS[family])
                ev = evaluate(run_url, traits)
                for trait, metrics in ev["association"].items():
                    print(_row(cohort, family, trait, metrics, ev, sum(seconds.values())), flush=True)
                print("        steps: " + ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items())
                      + f"; GWAS real+synthetic {ev['gwas_seconds']:.0f} s", flush=True)


if __name__ == "__main__":
    main()
