"""GWAS engine against GEMMA 0.98.5 on the same machine, and at CFW size.

1. mouse_hs1940 (full: 1,940 mice, 12,226 SNPs), traits 1 and 6: kinship + LMM, ours vs GEMMA
   (``-gk 1`` then ``-lmm 1`` per trait), speed-up and max |delta log10 p_wald|; the linear model; and
   LOCO of trait 1 (GEMMA ``-loco`` for each of the 19 chromosomes).
2. CFW-sized msprime cohort (``cfw-sim``: 1,220 x 92,734, 19 autosomes): LOCO LMM of abBMD with covariate
   SW16, and of 20 traits (individuals with all 20 observed, one eigendecomposition per chromosome).

``python -m benchmarks gwas``; ``GENOSYNTH_BENCH_QUICK=1`` skips GEMMA's LOCO (19 GEMMA runs) and the
CFW-sized cohort. GEMMA runs with two BLAS threads, like us.
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import tempfile
import time

import numpy as np
import pandas as pd

GEMMA_DIR = "/usr/share/doc/gemma/example"


def _timed(action):
    started = time.perf_counter()
    value = action()
    return value, time.perf_counter() - started


def _gemma(folder: str, *args: str) -> float:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "2", "OMP_NUM_THREADS": "2"}
    started = time.perf_counter()
    subprocess.run(["gemma", *args], cwd=folder, check=True, capture_output=True, env=env)
    return time.perf_counter() - started


def _assoc(folder: str, name: str) -> pd.DataFrame:
    return pd.read_csv(os.path.join(folder, "output", f"{name}.assoc.txt"), sep="\t")


def _delta(ours: pd.DataFrame, trait: str, reference: pd.DataFrame) -> tuple[float, bool]:
    rows = ours[ours["trait"] == trait]
    same = rows["snp"].tolist() == reference["rs"].tolist()
    if not same:
        return float("nan"), False
    diff = np.log10(rows["p"].to_numpy(dtype=float)) - np.log10(reference["p_wald"].to_numpy(dtype=float))
    return float(np.max(np.abs(diff))), True


def _hs1940(folder: str, rows: list[dict]) -> None:
    from genosynth.datasets.hs1940 import get_hs1940
    from genosynth.gwas import run_gwas

    for kind in ("geno", "pheno", "anno"):
        with gzip.open(f"{GEMMA_DIR}/mouse_hs1940.{kind}.txt.gz", "rb") as src, \
                open(os.path.join(folder, f"hs.{kind}.txt"), "wb") as dst:
            shutil.copyfileobj(src, dst)
    dataset = get_hs1940(os.path.join(folder, "hs1940"))
    base = ["-g", "hs.geno.txt", "-p", "hs.pheno.txt", "-a", "hs.anno.txt"]

    gemma_seconds = 0.0
    for column in (1, 6):
        gemma_seconds += _gemma(folder, *base, "-n", str(column), "-gk", "1", "-o", f"kin{column}")
        gemma_seconds += _gemma(folder, *base, "-n", str(column), "-k", f"output/kin{column}.cXX.txt",
                                "-lmm", "1", "-o", f"lmm{column}")
    ours, seconds = _timed(lambda: run_gwas(dataset, ["trait1", "trait6"], model="lmm"))
    deltas = [_delta(ours.table, f"trait{c}", _assoc(folder, f"lmm{c}")) for c in (1, 6)]
    rows.append({"task": "hs1940 kinship + LMM, traits 1 and 6", "ours_s": seconds, "gemma_s": gemma_seconds,
                 "max_dlog10p": max(d for d, _ in deltas), "same_snps": all(s for _, s in deltas),
                 "target": ">= 10x faster, dlog10p <= 1e-4"})

    gemma_lm = _gemma(folder, *base, "-n", "1", "-lm", "1", "-o", "lm1")
    ours, seconds = _timed(lambda: run_gwas(dataset, ["trait1"], model="lm"))
    delta, same = _delta(ours.table, "trait1", _assoc(folder, "lm1"))
    rows.append({"task": "hs1940 linear model, trait 1", "ours_s": seconds, "gemma_s": gemma_lm,
                 "max_dlog10p": delta, "same_snps": same, "target": "dlog10p <= 1e-6"})

    if os.environ.get("GENOSYNTH_BENCH_QUICK"):
        return
    chromosomes = list(dict.fromkeys(dataset.variants["chr"].astype(str)))
    gemma_loco, tables = 0.0, []
    for chrom in chromosomes:
        gemma_loco += _gemma(folder, *base, "-n", "1", "-gk", "1", "-loco", chrom, "-o", f"kl{chrom}")
        gemma_loco += _gemma(folder, *base, "-n", "1", "-k", f"output/kl{chrom}.cXX.txt", "-lmm", "1",
                             "-loco", chrom, "-o", f"loco{chrom}")
        tables.append(_assoc(folder, f"loco{chrom}"))
    ours, seconds = _timed(lambda: run_gwas(dataset, ["trait1"], model="lmm", loco=True))
    delta, same = _delta(ours.table, "trait1", pd.concat(tables, ignore_index=True))
    rows.append({"task": "hs1940 LOCO LMM (19 chromosomes), trait 1", "ours_s": seconds,
                 "gemma_s": gemma_loco, "max_dlog10p": delta, "same_snps": same,
                 "target": ">= 10x faster, dlog10p <= 1e-4"})


def _cfw(folder: str, rows: list[dict]) -> None:
    from genosynth.datasets.cfw_sim import make_cfw_sim
    from genosynth.gwas import run_gwas

    dataset, seconds = _timed(lambda: make_cfw_sim(os.path.join(folder, "cfw"), seed=0))
    size = f"{dataset.n_samples} x {dataset.n_variants}"
    rows.append({"task": f"cfw-sim simulation ({size})", "ours_s": seconds, "target": "about a minute"})
    covariates = ["SW16"] if "SW16" in dataset.samples.columns else []
    trait = "abBMD" if "abBMD" in dataset.traits else dataset.traits[0]
    result, seconds = _timed(lambda: run_gwas(dataset, [trait], covariates=covariates, model="lmm",
                                              loco=True))
    n = result.log["traits"][trait]["individuals_analysed"]
    rows.append({"task": f"cfw-sim LOCO LMM, {trait} + {','.join(covariates) or '-'} ({n} mice)",
                 "ours_s": seconds, "target": "<= 10 s (GEMMA: 85 s without LOCO)"})
    twenty = dataset.traits[:20]
    result, seconds = _timed(lambda: run_gwas(dataset, twenty, model="lmm", loco=True, missing="any"))
    n = next(iter(result.log["traits"].values()))["individuals_analysed"]
    rows.append({"task": f"cfw-sim LOCO LMM, 20 traits ({n} mice with all 20)", "ours_s": seconds,
                 "target": "<= 60 s"})


def main() -> None:
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="bench_gwas_") as folder:
        _hs1940(folder, rows)
        if not os.environ.get("GENOSYNTH_BENCH_QUICK"):
            _cfw(folder, rows)
    table = pd.DataFrame(rows)
    if "gemma_s" in table:
        table["speedup"] = table["gemma_s"] / table["ours_s"]
    with pd.option_context("display.width", 200, "display.max_colwidth", 60, "display.float_format",
                           lambda v: f"{v:.3g}"):
        print(table.to_string(index=False))


if __name__ == "__main__":
    main()
