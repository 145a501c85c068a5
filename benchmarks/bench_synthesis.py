"""Synthesis benchmark: hs1940 (all six traits) and the demo cohort, judged by our LOCO LMM and by GEMMA.

For each (cohort, phenotype-model variant) it runs prep -> train -> generate -> assemble through the step
functions (mosaic genotypes), the LMM GWAS (LOCO, our engine) of the whole real cohort and of
``synthetic/`` (which has the real cohort's size), the compare step, and prints per trait: SNP-level F1
at 1e-8, locus recall/precision at Bonferroni, r of -log10 p, top -log10 p real / synthetic, lambda_GC
real / synthetic, the effect slope at the real hits, and the privacy measures of the compare step, with
the wall time of the synthesis steps. On hs1940 the synthetic cohort is also exported to BIMBAM and
judged by GEMMA 0.98.5 against GEMMA on the real cohort, with the independent tools in
``../shared/tools`` (``gwaseval.py`` then ``judge_all_traits.py``).

Run with ``python -m benchmarks synthesis``. ``GENOSYNTH_BENCH_COHORTS=demo`` limits the cohorts;
``GENOSYNTH_BENCH_VARIANTS=blup:random,blup:scale,cv:random,blup:random:fitted`` compares phenotype-model
choices (``background:restore[:qtl_effects]``, ``qtl_effects`` auto unless named; the first is the
default model).

``GENOSYNTH_BENCH_PRIVACY=hlc,cfw-sim,demo-seed2`` (default: none) adds the genotype privacy of the mosaic
family on cohorts the gate once refused or passed only through its noise allowance: GEMMA's HLC (427
people, ``genosynth import plink``), 500 simulated CFW-like mice on chromosomes 1-3 and the demo cohort of
seed 2. They run prep, train and generate, then the compare step's privacy metrics and gate on the
synthetic genotypes (no phenotypes, no GWAS).
"""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from genosynth import run_layout, storage
from genosynth.compare import step as compare_step
from genosynth.formats.bimbam import export_bimbam
from genosynth.formats.dataset import Dataset
from genosynth.generate import assemble
from genosynth.generate import step as generate_step
from genosynth.gwas import run_gwas
from genosynth.prep import step as prep_step
from genosynth.run_config import RunConfig
from genosynth.run_state import BatchPlan
from genosynth.train import step as train_step

COHORTS = {"hs1940": None, "demo": None}
VARIANTS = ("blup:random",)
TOOLS = Path(__file__).resolve().parents[1] / ".." / "shared" / "tools"
GEMMA_EXAMPLE = Path("/usr/share/doc/gemma/example")


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
    batches = BatchPlan.read(run_url).batches
    for name, function in (("train", train_step.run), ("generate", generate_step.run)):
        started = time.perf_counter()
        for entry in batches:
            function(run_url, entry.batch)
        seconds[name] = time.perf_counter() - started
    started = time.perf_counter()
    assemble.run(run_url)
    seconds["assemble"] = time.perf_counter() - started
    return seconds


def make_privacy_cohort(name: str, root: str) -> str:
    """The cohorts of the privacy check (see the module docstring); returns the dataset URL."""
    import numpy as np

    url = storage.join(root, name)
    if name == "hlc":
        from genosynth.formats.plink import import_plink

        for kind in ("bed", "bim", "fam"):
            with gzip.open(GEMMA_EXAMPLE / f"HLC.{kind}.gz", "rb") as src, \
                    open(Path(root) / f"HLC.{kind}", "wb") as dst:
                shutil.copyfileobj(src, dst)
        import_plink(str(Path(root) / "HLC"), url)
    elif name == "cfw-sim":
        from genosynth.datasets.cfw_sim import make_cfw_sim
        from genosynth.formats.subset import subset_dataset

        full = make_cfw_sim(storage.join(root, "cfw-full"), seed=0, n_individuals=500, n_snps=40_000)
        keep = full.variants["chr"].astype(str).isin(["1", "2", "3"]).to_numpy()
        subset_dataset(full, url, np.arange(full.n_samples), keep)
    elif name.startswith("demo-seed"):
        from genosynth.datasets.demo import make_demo

        make_demo(url, seed=int(name.removeprefix("demo-seed")))
    else:
        raise SystemExit(f"unknown privacy cohort {name!r}: expected hlc, cfw-sim or demo-seedN")
    return url


def privacy_only(dataset_url: str, run_url: str) -> tuple[dict[str, Any], dict[str, Any], Any, float]:
    """prep, train, generate, then the compare step's privacy metrics and gate on the synthetic genotypes."""
    import pandas as pd

    from genosynth.compare import gate, privacy
    from genosynth.compare.genotypes import load_cohort
    from genosynth.compare.step import MAX_SAMPLES, MAX_SNPS, even_subsample
    from genosynth.formats.dataset import DatasetWriter
    from genosynth.run_state import read_generated

    RunConfig(dataset_url=dataset_url, traits=[], model="mosaic", seed=1).save(run_url)
    started = time.perf_counter()
    prep_step.run(run_url)
    batch_plan = BatchPlan.read(run_url)
    for entry in batch_plan.batches:
        train_step.run(run_url, entry.batch)
        generate_step.run(run_url, entry.batch)
    seconds = time.perf_counter() - started
    train = Dataset.open(run_layout.url(run_url, run_layout.PREP_TRAIN))
    holdout = Dataset.open(run_layout.url(run_url, run_layout.PREP_HOLDOUT))
    plan = storage.read_json(run_layout.url(run_url, run_layout.PREP_PLAN))
    n = int(plan["n_synthetic"])
    writer = DatasetWriter(run_layout.url(run_url, run_layout.SYNTHETIC), n_samples=n,
                           chunk_size=train.chunk_size)
    for entry in batch_plan.in_genome_order():
        writer.add(read_generated(run_url, entry.batch))
    synthetic = writer.commit(pd.DataFrame({"id": [f"syn{i + 1:06d}" for i in range(n)]}), train.variants,
                              traits=[], covariates=[], column_kinds={}, provenance={"synthetic": True})
    index = even_subsample(train.n_variants, MAX_SNPS)
    cohorts = {name: load_cohort(ds, index, name=name, sample_index=even_subsample(ds.n_samples, MAX_SAMPLES))
               for name, ds in (("train", train), ("holdout", holdout), ("synthetic", synthetic))}
    pairs = privacy.compute_pairs(cohorts["train"], cohorts["holdout"], cohorts["synthetic"])
    metrics, _ = privacy.privacy_metrics(cohorts["train"], cohorts["holdout"], cohorts["synthetic"], pairs,
                                         seed=1)
    return metrics, plan, gate.evaluate(metrics, gate.DEFAULT_THRESHOLDS), seconds


def evaluate(run_url: str, traits: list[str]) -> dict[str, Any]:
    """GWAS (LMM, LOCO) of the whole QC'd real cohort and of ``synthetic/``, then the compare step's metrics.

    The synthetic cohort has the real cohort's size, so it is judged against the GWAS of every real
    individual (``prep/cohort``, as the pipeline's gwas-real step and an outside GEMMA check of the export
    do), not of the training split alone.
    """
    real = Dataset.open(run_layout.url(run_url, run_layout.PREP_COHORT))
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


def phenotype_leak(run_url: str, traits: list[str]) -> dict[str, dict[str, float]]:
    """How much the released cohort's phenotypes leak about the training individuals' own phenotypes.

    The fitted effects reach the synthetic phenotypes, much as a published polygenic score would. The
    attacker's view: a ridge polygenic score (penalty ``m``, i.e. heritability 0.5) fitted on the synthetic
    cohort alone, applied to the real genomes. Per trait: its correlation with the real phenotype on the
    training and the held-out individuals, and the AUC of calling an individual a training member the
    smaller its residual (0.5: no leak beyond what the score predicts for anyone).
    """
    import numpy as np

    from genosynth.genetics.ridge import ridge_effects
    from genosynth.genetics.roc import auc

    synthetic = Dataset.open(run_layout.url(run_url, run_layout.SYNTHETIC))
    train = Dataset.open(run_layout.url(run_url, run_layout.PREP_TRAIN))
    holdout = Dataset.open(run_layout.url(run_url, run_layout.PREP_HOLDOUT))
    x_syn = synthetic.dosages()
    means = np.nan_to_num(np.nanmean(x_syn, axis=0))

    def centred(x: np.ndarray) -> np.ndarray:
        out = x - means[None, :]
        out[np.isnan(out)] = 0.0
        return out

    x_syn = centred(x_syn)
    x_train, x_holdout = centred(train.dosages()), centred(holdout.dosages())
    out = {}
    for trait in traits:
        y = synthetic.samples[trait].to_numpy(dtype=np.float64, na_value=np.nan)
        seen = ~np.isnan(y)
        penalty = float(x_syn.shape[1])
        u = np.asarray(ridge_effects(x_syn[seen], y[seen] - y[seen].mean(), penalty)).reshape(-1)
        real = {}
        for name, ds, x in (("train", train, x_train), ("holdout", holdout, x_holdout)):
            values = ds.samples[trait].to_numpy(dtype=np.float64, na_value=np.nan)
            keep = ~np.isnan(values)
            real[name] = (values[keep], x[keep].astype(np.float64) @ u)
        both_y = np.concatenate([real["train"][0], real["holdout"][0]])
        both_s = np.concatenate([real["train"][1], real["holdout"][1]])
        slope, intercept = np.polyfit(both_s, both_y, 1)
        score = {k: -np.abs(v[0] - intercept - slope * v[1]) for k, v in real.items()}
        out[trait] = {"r_train": float(np.corrcoef(*real["train"])[0, 1]),
                      "r_holdout": float(np.corrcoef(*real["holdout"])[0, 1]),
                      "membership_auc": auc(score["train"], score["holdout"])}
    return out


def judge_with_gemma(run_url: str, root: str, n_traits: int) -> tuple[str, float]:
    """GEMMA on the real hs1940 trio and on the exported synthetic one; the judge's lines and seconds."""
    work = Path(root) / "gemma"
    work.mkdir(exist_ok=True)
    real = work / "real"
    for kind in ("geno", "pheno", "anno"):
        with gzip.open(GEMMA_EXAMPLE / f"mouse_hs1940.{kind}.txt.gz", "rb") as src, \
                open(f"{real}.{kind}.txt", "wb") as dst:
            shutil.copyfileobj(src, dst)
    subprocess.run([sys.executable, str(TOOLS / "clean_trio.py"), str(real), str(work / "clean")],
                   check=True, capture_output=True)
    export_bimbam(Dataset.open(run_layout.url(run_url, run_layout.SYNTHETIC)), str(work / "syn"))
    started = time.perf_counter()
    subprocess.run([sys.executable, str(TOOLS / "gwaseval.py"), str(work / "clean"), str(work / "syn"),
                    "--traits", ",".join(str(i + 1) for i in range(n_traits)),
                    "--out", str(work / "eval.json"),
                    "--work", str(work / "gemma-work"), "--no-privacy"], check=True, capture_output=True)
    seconds = time.perf_counter() - started
    judged = subprocess.run([sys.executable, str(TOOLS / "judge_all_traits.py"), str(work / "eval.json")],
                            capture_output=True, text=True)
    # The judge exits 1 where a target is missed; anything else without its lines is its own failure.
    failed = f"judge failed (exit {judged.returncode}): {judged.stderr.strip()[-800:]}"
    return judged.stdout.strip() or failed, seconds


def _number(value: float | None) -> float:
    return float("nan") if value is None else float(value)


def _share(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else float("nan")


def _row(cohort: str, variant: str, trait: str, m: dict[str, Any], ev: dict[str, Any], total: float) -> str:
    at8, bonf = m["thresholds"]["1e-8"], m["thresholds"]["bonferroni"]
    recall = _share(bonf["loci_real_recovered"], bonf["loci_real"])
    precision = _share(bonf["loci_synthetic_real"], bonf["loci_synthetic"])
    p = ev["privacy"]
    f1 = at8["f1"] if at8["f1"] is not None else float("nan")
    return (f"{cohort:7s} {variant:12s} {trait:12s} {f1:5.2f} {bonf['loci_real']:3d} "
            f"{bonf['loci_synthetic']:3d} {recall:5.2f} {precision:5.2f} "
            f"{_number(m['neglog10p_correlation']):5.2f} "
            f"{m['top_neglog10p_real']:5.1f} {m['top_neglog10p_synthetic']:5.1f} {m['lambda_gc_real']:5.2f} "
            f"{m['lambda_gc_synthetic']:5.2f} {_number(m['effect_slope_real_hits']):5.2f} "
            f"{p['identical_genomes']:3.0f} {p['membership_auc']:5.2f} {p['max_king_kinship']:5.2f} "
            f"{total:5.0f}")


HEADER = ("cohort  variant      trait         F1@8 Lr  Ls  Lrec  Lprec    r  top_r top_s lam_r lam_s "
          "slope idn   mia  king synth_s")


def main() -> None:
    import torch

    torch.set_num_threads(2)
    chosen = os.environ.get("GENOSYNTH_BENCH_COHORTS", ",".join(COHORTS)).split(",")
    variants = os.environ.get("GENOSYNTH_BENCH_VARIANTS", ",".join(VARIANTS)).split(",")
    print(HEADER)
    with tempfile.TemporaryDirectory(prefix="genosynth-bench-") as root:
        for cohort in chosen:
            dataset_url = make_cohort(cohort, root)
            traits = COHORTS[cohort] or Dataset.open(dataset_url).traits
            for variant in variants:
                background, restore, *effects = variant.split(":")
                options = {"phenotypes": {"background": background, "restore": restore,
                                          "qtl_effects": effects[0] if effects else "auto"}}
                run_url = storage.join(root, f"run-{cohort}-{variant.replace(':', '-')}")
                seconds = synthesise(dataset_url, run_url, "mosaic", traits, options=options)
                ev = evaluate(run_url, traits)
                for trait, metrics in ev["association"].items():
                    print(_row(cohort, variant, trait, metrics, ev, sum(seconds.values())), flush=True)
                print("        steps: " + ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items())
                      + f"; LOCO GWAS real+synthetic {ev['gwas_seconds']:.0f} s", flush=True)
                spectrum = ev["structure"]["kinship_spectrum"]
                king = ev["structure"]["kinship_king"]
                print("        kinship eigenvalues (share of trace) real "
                      + " ".join(f"{v:.3f}" for v in spectrum["real"][:5]) + " / synthetic "
                      + " ".join(f"{v:.3f}" for v in spectrum["synthetic"][:5]), flush=True)
                print(f"        KING quantiles {king.get('quantiles')} real {king.get('real')} "
                      f"synthetic {king.get('synthetic')}", flush=True)
                leak = phenotype_leak(run_url, traits)
                print("        phenotype leak (ridge score fitted on the synthetic cohort; r train / "
                      "holdout, residual membership AUC): " + "; ".join(
                          f"{t} {v['r_train']:.2f}/{v['r_holdout']:.2f} {v['membership_auc']:.2f}"
                          for t, v in leak.items()), flush=True)
                if cohort == "hs1940":
                    judged, seconds_gemma = judge_with_gemma(run_url, root, len(traits))
                    print(f"        GEMMA (-gk 1, -lmm 1) on the export, {seconds_gemma:.0f} s:", flush=True)
                    for line in judged.splitlines():
                        print("          " + line, flush=True)
                storage.write_json(storage.join(root, f"metrics-{cohort}-{variant.replace(':', '-')}.json"),
                                   json.loads(json.dumps(ev, default=str)))
        privacy_cohorts = [c for c in os.environ.get("GENOSYNTH_BENCH_PRIVACY", "").split(",") if c]
        if privacy_cohorts:
            print("privacy  cohort       n_synth  SNPs    segment  identical  mia    mia-noise  loss    "
                  "max_king  gate  synth_s", flush=True)
        for cohort in privacy_cohorts:
            dataset_url = make_privacy_cohort(cohort, root)
            m, plan, verdict, seconds = privacy_only(dataset_url, storage.join(root, f"run-privacy-{cohort}"))
            print(f"privacy  {cohort:11s}  {plan['n_synthetic']:7d}  {m['snps_used']:6d}  "
                  f"{1 / plan['switch_rate']:7.1f}  {m['identical_genomes']:9d}  {m['membership_auc']:.3f}  "
                  f"{m['membership_auc_beyond_noise']:9.3f}  {m['privacy_loss']:6.3f}  "
                  f"{m['max_king_kinship']:8.3f}  {'pass' if verdict.passed else 'FAIL'}  {seconds:7.0f}",
                  flush=True)
            if not verdict.passed:
                print("         " + "; ".join(verdict.failures), flush=True)


if __name__ == "__main__":
    main()
