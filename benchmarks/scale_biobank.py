"""Scale on biobank-sim: the scalable GWAS against its peers on the same PLINK files, and the pipeline per
step, at the sizes in ``GENOSYNTH_SCALE_SIZES`` (``NxM,NxM``; default ``2000x20000,5000x20000``).

Per size, each command in a fresh process measured by ``bench_scale.measure`` (wall, CPU seconds of the
process tree, peak RSS of the tree):

1. ``genosynth datasets get biobank-sim --samples N --snps M --plink PREFIX``;
2. ``genosynth gwas --model wgr`` (quant + disease), ``--model lmm --loco`` (quant; up to
   ``GENOSYNTH_SCALE_LMM_MAX`` people, default 5,000), PLINK 2 ``--glm`` (quant linear, disease
   logistic with Firth fallback) and BOLT-LMM (``--lmm --LDscoresUseChip``, the ``.bim``'s cM as map);
3. agreement of each peer with WGR: r of -log10 p over SNPs, lambda_GC of both, loci at 5e-8
   (``compare.association.merge_loci``, 500 kb window; found = overlapping within 250 kb) found by both,
   and the time ratio peer / WGR;
4. at the first size only, the whole pipeline step by step (``genosynth run --init-only`` then
   ``genosynth step NAME --run RUN [--batches all]``), each step in its own process: what Argo runs.

Called by ``python -m benchmarks scale``; ``GENOSYNTH_SCALE_PARTS=biobank`` runs this part only,
``GENOSYNTH_SCALE_PEERS=0`` skips step 2-3 (the pipeline table alone), ``GENOSYNTH_SCALE_PIPELINE=0``
skips step 4.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from genosynth.compare.association import Locus, merge_loci
from genosynth.genetics.scan import lambda_gc

PYTHON = [sys.executable, "-m", "genosynth"]
SIZES = os.environ.get("GENOSYNTH_SCALE_SIZES", "2000x20000,5000x20000")
LMM_MAX = int(os.environ.get("GENOSYNTH_SCALE_LMM_MAX", 5000))
GENOME_WIDE = 5e-8
LOCUS_BP = 500_000
PIPELINE_CONFIG = "{gwas_model: wgr, traits: [quant, disease], covariates: [sex, age], batch_snps: 2000}"


def sizes() -> list[tuple[int, int]]:
    return [tuple(int(v) for v in item.lower().split("x")) for item in SIZES.split(",") if item.strip()]


def loci(table: pd.DataFrame, threshold: float = GENOME_WIDE) -> list[Locus]:
    """Hits at ``threshold`` merged into loci by the compare step's rule (``association.merge_loci``):
    a hit more than 500 kb after the previous one starts a new locus."""
    hits = table[table["p"] < threshold]
    return merge_loci(hits["chr"].astype(str).to_numpy(), hits["pos"].to_numpy(dtype=np.float64),
                      hits["snp"].astype(str).to_numpy(), LOCUS_BP)


def _found(ours: list[Locus], theirs: list[Locus]) -> int:
    """Loci of ``ours`` that overlap one of ``theirs`` widened by half the window (compare's rule)."""
    return sum(any(a.overlaps(b, LOCUS_BP // 2) for b in theirs) for a in ours)


def agreement(ours: pd.DataFrame, peer: pd.DataFrame) -> dict[str, float]:
    """r of -log10 p over shared SNPs, lambda_GC of each, and loci at 5e-8 of each found by the other."""
    merged = ours.merge(peer, on="snp", suffixes=("", "_peer"))
    a = -np.log10(np.clip(merged["p"], 1e-300, 1))
    b = -np.log10(np.clip(merged["p_peer"], 1e-300, 1))
    ours_loci, peer_loci = loci(ours), loci(peer)
    return {"snps": len(merged), "r_log10p": float(np.corrcoef(a, b)[0, 1]),
            "lambda_wgr": lambda_gc(merged["p"]), "lambda_peer": lambda_gc(merged["p_peer"]),
            "loci_wgr": len(ours_loci), "loci_peer": len(peer_loci),
            "wgr_loci_in_peer": _found(ours_loci, peer_loci),
            "peer_loci_in_wgr": _found(peer_loci, ours_loci)}


def _read_plink2(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path, sep="\t")
    frame = frame[frame["TEST"] == "ADD"] if "TEST" in frame else frame
    return pd.DataFrame({"snp": frame["ID"], "chr": frame["#CHROM"].astype(str), "pos": frame["POS"],
                         "p": pd.to_numeric(frame["P"], errors="coerce")}).dropna()


def _read_bolt(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path, sep=r"\s+")
    column = "P_BOLT_LMM" if "P_BOLT_LMM" in frame else "P_BOLT_LMM_INF"
    return pd.DataFrame({"snp": frame["SNP"], "chr": frame["CHR"].astype(str), "pos": frame["BP"],
                         "p": pd.to_numeric(frame[column], errors="coerce")}).dropna()


def _ours(path: Path, trait: str) -> pd.DataFrame:
    table = pd.read_parquet(path)
    table = table[table["trait"] == trait]
    return pd.DataFrame({"snp": table["snp"], "chr": table["chr"].astype(str),
                         "pos": table["pos"].astype(np.int64), "p": table["p"]})


def simulate(n: int, m: int, folder: Path, measure, rows: list[dict]) -> None:
    """``datasets get biobank-sim`` into ``folder/ds`` (and PLINK files ``folder/plink/bb``) unless there."""
    dataset, prefix = folder / "ds", folder / "plink" / "bb"
    if not (dataset / "dataset.json").exists():
        shutil.rmtree(dataset, ignore_errors=True)
        rows.append({"what": f"biobank-sim {n:,} x {m:,}: datasets get (+ PLINK)", **measure(
            [*PYTHON, "datasets", "get", "biobank-sim", "--samples", str(n), "--snps", str(m), "--out",
             str(dataset), "--plink", str(prefix), "--force"])})


def peers(n: int, m: int, folder: Path, measure, rows: list[dict]) -> list[dict]:
    """Run WGR, the exact LMM and the peers on the cohort in ``folder``; returns the peer table rows."""
    label = f"{n:,} x {m:,}"
    dataset, prefix = folder / "ds", folder / "plink" / "bb"
    wgr_out = folder / "wgr.parquet"
    timing = {}
    timing["wgr"] = measure([*PYTHON, "gwas", str(dataset), "--traits", "quant,disease", "--covariates",
                             "sex,age", "--model", "wgr", "--out", str(wgr_out)])
    rows.append({"what": f"biobank-sim {label}: gwas --model wgr (quant + disease)", **timing["wgr"]})
    tables: dict[str, tuple[str, pd.DataFrame]] = {}
    if n <= LMM_MAX:
        lmm_out = folder / "lmm.parquet"
        timing["lmm"] = measure([*PYTHON, "gwas", str(dataset), "--traits", "quant", "--covariates",
                                 "sex,age", "--model", "lmm", "--loco", "--out", str(lmm_out)])
        rows.append({"what": f"biobank-sim {label}: gwas --model lmm --loco (quant)", **timing["lmm"]})
        tables["lmm"] = ("quant", _ours(lmm_out, "quant"))
    if shutil.which("plink2"):
        timing["plink2"] = measure([
            "plink2", "--bfile", str(prefix), "--pheno", f"{prefix}.pheno", "--pheno-name", "quant,disease",
            "--covar", f"{prefix}.pheno", "--covar-name", "sex,age", "--1", "--glm", "hide-covar", "omit-ref",
            "firth-fallback", "--threads", "2", "--out", str(folder / "plink2")])
        rows.append({"what": f"biobank-sim {label}: plink2 --glm (quant linear, disease logistic)",
                     **timing["plink2"]})
        tables["plink2"] = ("quant", _read_plink2(folder / "plink2.quant.glm.linear"))
        binary = next(folder.glob("plink2.disease.glm.*"), None)
        if binary is not None:
            tables["plink2 (disease)"] = ("disease", _read_plink2(binary))
    if shutil.which("bolt"):
        timing["bolt"] = measure([
            "bolt", f"--bfile={prefix}", f"--phenoFile={prefix}.pheno", "--phenoCol=quant",
            f"--covarFile={prefix}.pheno", "--covarCol=sex", "--qCovarCol=age", "--lmm", "--LDscoresUseChip",
            "--numThreads=2", f"--statsFile={folder / 'bolt.stats'}"])
        rows.append({"what": f"biobank-sim {label}: bolt --lmm --LDscoresUseChip (quant)", **timing["bolt"]})
        tables["bolt"] = ("quant", _read_bolt(folder / "bolt.stats"))
    out = []
    for peer, (trait, table) in tables.items():
        tool = peer.split(" ")[0]
        out.append({"cohort": label, "trait": trait, "peer": peer, **agreement(_ours(wgr_out, trait), table),
                    "peer_cpu_over_wgr_cpu": timing[tool]["cpu_s"] / timing["wgr"]["cpu_s"],
                    "peer_wall_over_wgr_wall": timing[tool]["wall_s"] / timing["wgr"]["wall_s"]})
    return out


def pipeline_steps(dataset: Path, run: Path, measure) -> pd.DataFrame:
    """The whole pipeline on ``dataset``, one step per process in DAG order (fan-out steps: all batches)."""
    from genosynth import pipeline

    shutil.rmtree(run, ignore_errors=True)
    subprocess.run([*PYTHON, "run", str(dataset), "--out", str(run), "--config-text", PIPELINE_CONFIG,
                    "--init-only"], check=True, capture_output=True)
    rows = []
    for step in [*pipeline.dag_steps(), *pipeline.exit_steps()]:
        command = [*PYTHON, "step", step.name, "--run", str(run)]
        if step.per_batch:
            batches = pipeline.read_batches(str(run))
            command += ["--batches", pipeline.format_ranges(batches)]
        m = measure(command, env={"GENOSYNTH_DEVICE": "cpu"})
        rows.append({"step": step.name, **{k: m[k] for k in ("wall_s", "cpu_s", "peak_rss_mb", "rc")}})
        print(f"step {step.name}: {m['wall_s']:.1f} s wall, {m['cpu_s']:.1f} CPU s, "
              f"{m['peak_rss_mb']:.0f} MB", flush=True)
    return pd.DataFrame(rows)


def main(folder: Path, measure) -> None:
    rows: list[dict] = []
    peer_rows: list[dict] = []
    steps = None
    for index, (n, m) in enumerate(sizes()):
        cohort = folder / f"biobank-{n}x{m}"
        cohort.mkdir(parents=True, exist_ok=True)
        simulate(n, m, cohort, measure, rows)
        if os.environ.get("GENOSYNTH_SCALE_PEERS", "1") != "0":
            peer_rows += peers(n, m, cohort, measure, rows)
        if index == 0 and os.environ.get("GENOSYNTH_SCALE_PIPELINE", "1") != "0":
            steps = pipeline_steps(cohort / "ds", cohort / "run", measure)
            steps.insert(0, "cohort", f"{n:,} x {m:,}")
    with pd.option_context("display.width", 250, "display.max_colwidth", 90, "display.max_columns", 30,
                           "display.float_format", lambda v: f"{v:.4g}"):
        print("\nbiobank-sim: measured commands (wall s, CPU s of the process tree, peak tree RSS MB)")
        print(pd.DataFrame(rows).drop(columns=["stopped"], errors="ignore").to_string(index=False))
        if peer_rows:
            print("\npeers on the same PLINK files (agreement with WGR; 5e-8 loci merged at 500 kb)")
            print(pd.DataFrame(peer_rows).to_string(index=False))
        if steps is not None:
            print("\nthe pipeline step by step (gwas_model: wgr), each step in its own process")
            print(steps.to_string(index=False))
