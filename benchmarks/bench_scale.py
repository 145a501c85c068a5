"""Scale: a CFW-sized cohort end to end on this machine, and the projection to 500,000 x 800,000 on Argo.

Measured here (each on the machine running the benchmark; CPU seconds are given next to wall seconds
because a shared machine stretches wall time):

1. ``genosynth datasets get cfw-sim`` (1,220 mice x 92,734 SNPs) and its QC (MAF 2%, quality 0.95);
2. ``genosynth run`` with ``configs/cfw-sim.yaml``: wall, CPU, peak RSS of the whole process tree
   (runner + workers), the time of every step from the run's cost ledger and its throughput in
   individuals x SNPs per second;
3. memory of one batch: ``train`` and ``generate`` of the first, middle and last batch re-run in a
   fresh process each (peak RSS and CPU seconds): flat in the cohort's number of SNPs;
4. GWAS at that size: LOCO LMM of abBMD + SW16 and of 20 traits, the linear model of all SNPs;
5. the GPU code paths run with ``device="cpu"`` explicitly: autoregressive training of one batch (the
   model family that needs a GPU) and the LMM;
6. the projection to 500,000 x 800,000 on Argo (batches, pods, GPU and CPU hours, dollars against
   $1,440), every figure derived from the numbers above by the arithmetic in ``docs/scaling.md``.

``python -m benchmarks scale`` first runs the biobank-sim part (``benchmarks/scale_biobank.py``: the
scalable GWAS against BOLT-LMM and PLINK 2 on the same files, and the pipeline per step);
``GENOSYNTH_SCALE_PARTS=biobank`` or ``=cfw`` runs one part only; ``compare`` (not run by default)
adds ``benchmarks/scale_compare.py``, the privacy metrics on SNP subsamples against 20,000 SNPs.
``GENOSYNTH_SCALE_DIR`` keeps the cohort and the run in that folder (reused when already there) instead
of a temporary one. The cfw part takes about 30-40 minutes on 2 shared cores, most of it GWAS; the run
stops (and is reported) if its processes pass ``GENOSYNTH_SCALE_MEMORY_LIMIT_MB``.
"""

from __future__ import annotations

import json
import math
import os
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd

from genosynth.run_state import BatchPlan

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "cfw-sim.yaml"

# Target cohort of the plan and the prices of services/genosynth/cost/prices.py.
TARGET_N, TARGET_M = 500_000, 800_000
BUDGET_DOLLARS = 1440.0
T4_ON_DEMAND, T4_SPOT, CPU_CORE_HOUR = 0.35, 0.14, 0.0475
# Assumption, not a measurement (no GPU was at hand): a T4 does the autoregressive training maths
# (dense einsum + cross-entropy, float32) in 1/20 of the CPU core-seconds measured here.
ASSUMED_T4_SPEEDUP = 20.0
# Memory of a training/generation pod in pipeline.py (8 GiB), of which batches may use about half.
POD_BATCH_BYTES = 4 * 2**30
BATCH_GROUP_SIZE, MAX_GROUPS = 32, 500  # runners/argo.py and pipeline.group_batches
# A run whose process tree passes this is stopped and reported (the target is 4 GB).
MEMORY_LIMIT_MB = float(os.environ.get("GENOSYNTH_SCALE_MEMORY_LIMIT_MB", 8000))


# --- measuring processes ----------------------------------------------------------------------------
def _tree_rss(root: int) -> int:
    """Resident bytes of ``root`` and all its descendants (read from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                parent = int(handle.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry))
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        try:
            with open(f"/proc/{pid}/statm") as handle:
                total += int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            pass
        stack.extend(children.get(pid, []))
    return total


def measure(command: list[str], *, env: dict[str, str] | None = None,
            limit_mb: float = MEMORY_LIMIT_MB) -> dict[str, float]:
    """Run ``command``; wall and CPU seconds (the process and all its descendants) and peak tree RSS.

    The process group is stopped when the tree's RSS passes ``limit_mb`` (a shared machine must not
    run out of memory); ``stopped`` then says so and ``rc`` is the signal's negative number.

    Returns
    -------
    dict with ``wall_s``, ``cpu_s``, ``peak_rss_mb`` (sum over the process tree, sampled every 0.2 s),
    ``rc`` and ``stopped``.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    # Its own session, so that stopping it stops the runner's worker processes too.
    proc = subprocess.Popen(command, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    chunks: list[str] = []
    reader = threading.Thread(target=lambda: chunks.append(proc.stdout.read() if proc.stdout else ""))
    reader.start()
    peak, stopped = 0, False
    while proc.poll() is None:
        peak = max(peak, _tree_rss(proc.pid))
        if peak > limit_mb * 1e6 and not stopped:
            stopped = True
            os.killpg(proc.pid, signal.SIGKILL)
        time.sleep(0.2)
    reader.join()
    output = "".join(chunks)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # Children count once waited for: a stopped tree's workers never were, so its CPU time is unknown.
    cpu = float("nan") if stopped else (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if not stopped and proc.returncode not in (0, 3):  # 3: privacy gate failed, reported in the table
        raise RuntimeError(f"{' '.join(command)} exited {proc.returncode}:\n{output[-3000:]}")
    # ru_maxrss of a single waited child is a floor for short runs the sampler may miss.
    peak = max(peak, after.ru_maxrss * 1024 if after.ru_maxrss > before.ru_maxrss else 0)
    return {"wall_s": wall, "cpu_s": cpu, "peak_rss_mb": peak / 1e6, "rc": proc.returncode,
            "stopped": stopped}


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


# --- the measurements -----------------------------------------------------------------------------
def _cohort(folder: Path, rows: list[dict]) -> Path:
    url = folder / "cfw"
    if not (url / "dataset.json").exists():
        m = measure([sys.executable, "-m", "genosynth", "datasets", "get", "cfw-sim", "--out", str(url)])
        rows.append({"what": "cfw-sim generation, 1,220 x 92,734", **m})
    qc = measure(_python(
        "from genosynth.formats.dataset import Dataset; from genosynth.prep.qc import run_qc;"
        f"r = run_qc(Dataset.open({str(url)!r}), maf=0.02, min_quality=0.95);"
        "import json; print(json.dumps(r.log['snps']['kept']))"
    ))
    rows.append({"what": "QC of cfw-sim (MAF 0.02, quality 0.95)", **qc})
    return url


def _pipeline(cohort: Path, run: Path, rows: list[dict]) -> dict:
    if not (run / "_markers" / "finalize.json").exists():
        m = measure([sys.executable, "-m", "genosynth", "run", str(cohort), "--out", str(run), "--config",
                     str(CONFIG), "--no-progress", "--allow-privacy-failure"])
        what = "genosynth run cfw-sim (configs/cfw-sim.yaml), whole process tree"
        if m["stopped"]:
            what += f"; STOPPED at {MEMORY_LIMIT_MB:.0f} MB in: {', '.join(_unfinished(run))}"
        rows.append({"what": what, **m})
    from genosynth.compare_records import read_gate
    from genosynth.cost import ledger

    if (run / "_markers" / "compare.json").exists():
        gate = read_gate(str(run))
        rows.append({"what": f"privacy gate passed: {gate.passed} {'; '.join(gate.failures)}"[:100]})
    return ledger.summary(str(run))


def _unfinished(run: Path) -> list[str]:
    """Steps (or batches) that started an attempt but have no commit marker."""
    attempts = run / "_markers" / "attempts"
    started = sorted(p.name for p in attempts.iterdir()) if attempts.exists() else []
    return [name for name in started if not (run / "_markers" / f"{name}.json").exists()]


def _step_table(run: Path, cohort: Path, summary: dict) -> pd.DataFrame:
    """Ledger seconds per step and throughput in individuals x SNPs per second of step time."""
    from genosynth.formats.dataset import Dataset

    source = Dataset.open(str(cohort))
    train = Dataset.open(str(run / "prep" / "train"))
    n_traits = len(json.loads((run / "config.json").read_text())["traits"]) or len(train.traits)
    cells = {
        "prep": source.n_samples * source.n_variants,
        "train": train.n_samples * train.n_variants,
        "generate": train.n_samples * train.n_variants,
        "assemble": train.n_samples * train.n_variants,
        "gwas-real": train.n_samples * train.n_variants * n_traits,
        "gwas-synthetic": train.n_samples * train.n_variants * n_traits,
        "compare": train.n_samples * train.n_variants,
    }
    out = []
    for step, row in summary["by_step"].items():
        seconds = float(row["seconds"])
        work = cells.get(step)
        out.append({"step": step, "attempts": row["attempts"], "seconds": seconds,
                    "cells": work, "cells_per_s": work / seconds if work and seconds > 0 else None})
    return pd.DataFrame(out)


def _per_batch(run: Path, scratch: Path) -> pd.DataFrame:
    """Train and generate of the first, middle and last batch, each in a fresh process."""
    batches = BatchPlan.read(str(run)).batches
    picks = sorted({0, len(batches) // 2, len(batches) - 1})
    # A scratch run that shares the committed config and prep outputs, so nothing of the run is rewritten.
    scratch.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "prep"):
        link = scratch / name
        if not link.exists():
            link.symlink_to(run / name)
    rows = []
    for batch in picks:
        entry = batches[batch]
        for step in ("train", "generate"):
            m = measure(_python(
                f"import genosynth.{step}.step as s; s.run({str(scratch)!r}, {batch})"
            ), env={"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                    "GENOSYNTH_DEVICE": "cpu"})
            rows.append({"step": step, "batch": batch, "snps": entry.n_snps,
                         "context_snps": entry.context_stop - entry.context_start, **m})
    baseline = measure(_python("import torch, genosynth.train.step, genosynth.generate.step"))
    for row in rows:
        row["above_import_mb"] = row["peak_rss_mb"] - baseline["peak_rss_mb"]
        # What a pod running a group of batches pays per batch: the imports are paid once per group.
        row["cpu_above_import_s"] = max(row["cpu_s"] - baseline["cpu_s"], 0.01)
    return pd.DataFrame(rows)


def _gwas(cohort: Path, rows: list[dict]) -> dict[str, float]:
    from threadpoolctl import threadpool_limits

    from genosynth.formats.dataset import Dataset
    from genosynth.gwas import run_gwas

    dataset = Dataset.open(str(cohort))
    out = {}
    with threadpool_limits(2):
        for label, kwargs in (
            ("LOCO LMM, abBMD + SW16", {"traits": ["abBMD"], "covariates": ["SW16"], "model": "lmm",
                                        "loco": True}),
            ("LOCO LMM, 20 traits (all observed)", {"traits": dataset.traits[:20], "model": "lmm",
                                                   "loco": True, "missing": "any"}),
            ("linear model, abBMD + SW16", {"traits": ["abBMD"], "covariates": ["SW16"], "model": "lm"}),
            ("LOCO LMM, abBMD + SW16, device='cpu'", {"traits": ["abBMD"], "covariates": ["SW16"],
                                                     "model": "lmm", "loco": True, "device": "cpu"}),
        ):
            cpu0, started = time.process_time(), time.perf_counter()
            result = run_gwas(dataset, **kwargs)
            wall, cpu = time.perf_counter() - started, time.process_time() - cpu0
            n = next(iter(result.log["traits"].values()))["individuals_analysed"]
            rows.append({"what": f"GWAS {label} ({n} x {dataset.n_variants})", "wall_s": wall, "cpu_s": cpu})
            out[label] = wall
            out[f"{label} cpu"] = cpu
            out[f"{label} cells"] = n * dataset.n_variants * len(kwargs["traits"])
    return out


def _autoregressive(run: Path, rows: list[dict]) -> dict[str, float]:
    """Autoregressive training (the torch model family) of the first batch on device="cpu"."""
    import torch

    from genosynth.formats.dataset import Dataset
    from genosynth.models.autoregressive import AutoregressiveModel
    from genosynth.run_state import BatchPlan

    batches = BatchPlan.read(str(run)).batches
    entry = batches[0]
    train = Dataset.open(str(run / "prep" / "train"))
    dosages = train.dosages(entry.context_start, entry.context_stop)
    torch.set_num_threads(2)
    cpu0, started = time.process_time(), time.perf_counter()
    model = AutoregressiveModel.fit(dosages, batch=entry, plan={}, seed=0, options={},
                                    device=torch.device("cpu"))
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu0
    cpu1, started = time.process_time(), time.perf_counter()
    model.sample(train.n_samples, batch=entry, plan={}, seed=0, device=torch.device("cpu"))
    sample_wall, sample_cpu = time.perf_counter() - started, time.process_time() - cpu1
    snps = entry.stop - entry.context_start
    rows.append({"what": f"autoregressive fit, batch 0 ({train.n_samples} x {snps}), device=cpu, 2 threads",
                 "wall_s": wall, "cpu_s": cpu})
    rows.append({"what": f"autoregressive sample, batch 0 ({train.n_samples} x {snps}), device=cpu",
                 "wall_s": sample_wall, "cpu_s": sample_cpu})
    return {"fit_wall_s": wall, "fit_cpu_s": cpu, "fit_cells": train.n_samples * snps,
            "sample_wall_s": sample_wall, "n_batches": len(batches), "snps_total": train.n_variants,
            "n_train": train.n_samples}


def _storage(cohort: Path, run: Path) -> dict[str, float]:
    """Bytes per individual x SNP of the stored genotype chunks (compressed int8 calls + dosage fixes)."""
    from genosynth.formats.dataset import Dataset

    def size(folder: Path) -> int:
        return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())

    out = {}
    for label, folder in (("source", cohort), ("prep/train", run / "prep" / "train"),
                          ("synthetic", run / "synthetic")):
        if not (folder / "dataset.json").exists():
            continue
        ds = Dataset.open(str(folder))
        out[label] = size(folder / "genotypes") / (ds.n_samples * ds.n_variants)
    train = Dataset.open(str(run / "prep" / "train"))
    out["train/ (mosaic panels)"] = size(run / "train") / (train.n_samples * train.n_variants)
    return out


# --- the projection ---------------------------------------------------------------------------------
def projection(steps: pd.DataFrame, per_batch: pd.DataFrame, gwas: dict[str, float],
               autoregressive: dict[str, float], storage_bytes: dict[str, float]) -> pd.DataFrame:
    """Plan and cost of 500,000 x 800,000 on Argo from the measured throughput (see docs/scaling.md)."""
    n_train = round(0.8 * TARGET_N)
    rows: list[dict] = []

    def add(item: str, value: float | str, how: str) -> None:
        rows.append({"item": item, "value": value, "derivation": how})

    # Batch width: a batch's memory above the imports grows with n x snps; size it to POD_BATCH_BYTES.
    gen = per_batch[per_batch["step"] == "generate"]
    bytes_per_cell = float((gen["above_import_mb"] * 1e6 / (autoregressive["n_train"] * gen["snps"])).max())
    batch_snps = max(16, int(POD_BATCH_BYTES / (bytes_per_cell * n_train)) // 16 * 16)
    n_batches = math.ceil(TARGET_M / batch_snps)
    group = max(BATCH_GROUP_SIZE, math.ceil(n_batches / MAX_GROUPS))
    n_groups = math.ceil(n_batches / group)
    add("bytes of RSS per individual x SNP in generate", round(bytes_per_cell, 1),
        "max over measured batches of (peak RSS - import RSS) / (n_train x batch SNPs)")
    add("batch width (SNPs)", batch_snps, f"{POD_BATCH_BYTES / 2**30:.0f} GiB / (bytes per cell x {n_train})")
    add("batches", n_batches, f"{TARGET_M} / batch width")
    add("pods per fan-out step (groups)", n_groups, f"groups of {group} batches (max {MAX_GROUPS} groups)")

    # Mosaic train + generate: ledger seconds per cell (wall seconds in a warm worker on a shared
    # machine, so an upper bound on CPU seconds; a fresh process's imports cost more than the batch).
    cells = n_train * TARGET_M
    for step in ("train", "generate"):
        rate = steps.loc[steps["step"] == step, "cells_per_s"]
        if len(rate):
            hours = cells / float(rate.iloc[0]) / 3600
            add(f"{step} (mosaic), core-hours", round(hours, 1),
                f"{n_train} x {TARGET_M} cells / {float(rate.iloc[0]):.3g} cells per s (ledger)")
    # Mosaic generation also scales with the donor panel: sample() gathers from n_train donors, linear.

    # Autoregressive family on T4s: measured CPU seconds of one fit per cell / assumed speed-up.
    fit_per_cell = autoregressive["fit_cpu_s"] / autoregressive["fit_cells"]
    t4_hours = fit_per_cell * cells / ASSUMED_T4_SPEEDUP / 3600
    add("autoregressive training, T4 GPU-hours (assumed speed-up)", round(t4_hours, 1),
        f"{fit_per_cell:.3g} CPU s per cell x cells / {ASSUMED_T4_SPEEDUP:g} (assumption)")
    add("  dollars on demand / spot", f"{t4_hours * T4_ON_DEMAND:.0f} / {t4_hours * T4_SPOT:.0f}",
        f"x ${T4_ON_DEMAND}/h, ${T4_SPOT}/h")
    cfw_t4 = autoregressive["fit_cpu_s"] * autoregressive["n_batches"] / ASSUMED_T4_SPEEDUP
    add("CFW run, autoregressive training on T4s (s)", round(cfw_t4, 1),
        f"{autoregressive['n_batches']} batches x measured fit CPU s / {ASSUMED_T4_SPEEDUP:g} (assumption)")

    # GWAS: the exact LMM needs an n x n kinship; the replacement's scan costs what our linear scan costs.
    lm_per_cell = gwas["linear model, abBMD + SW16 cpu"] / gwas["linear model, abBMD + SW16 cells"]
    add("kinship n x n float64 at n = 400,000 (TB)", round(n_train**2 * 8 / 1e12, 2), "n^2 x 8 bytes")
    scan_hours = lm_per_cell * cells / 3600
    add("GWAS scan per trait per cohort, CPU core-hours", round(scan_hours, 1),
        f"{lm_per_cell:.3g} CPU s per cell (measured linear model) x {n_train} x {TARGET_M}")

    # Compare: pairwise metrics run on at most 4,000 individuals x 20,000 SNPs (compare/step.py), so
    # only the fingerprint pass over every genome grows with the cohort (linearly, like prep's read).
    compare = steps.loc[steps["step"] == "compare", "seconds"]
    prep = steps.loc[steps["step"] == "prep", "cells_per_s"]
    if len(compare) and len(prep):
        pairwise = float(compare.iloc[0]) * (4000 / autoregressive["n_train"]) ** 2
        linear = 2 * n_train * TARGET_M / float(prep.iloc[0])
        add("compare (capped at 4,000 x 20,000), hours", round((pairwise + linear) / 3600, 1),
            "measured compare s x (4,000 / n_train)^2 + 2 cohorts read at prep's cells/s")

    # The phenotype model in assemble rotates all genotypes by the n x n kinship eigenbasis.
    add("phenotype model as is: n x M float64 in memory (TB)", round(n_train * TARGET_M * 8 / 1e12, 1),
        "400,000 x 800,000 x 8 bytes (fit_phenotype_model loads every dosage)")

    # Storage moved: every step reads and writes compressed int8 chunks.
    per_cell_bytes = storage_bytes["prep/train"]
    add("stored genotype bytes per cell", round(per_cell_bytes, 3), "measured prep/train chunks")
    add("one cohort copy at 500k x 800k (GB)", round(per_cell_bytes * TARGET_N * TARGET_M / 1e9),
        "bytes per cell x 500,000 x 800,000")
    return pd.DataFrame(rows)


def main() -> None:
    keep = os.environ.get("GENOSYNTH_SCALE_DIR")
    holder = None if keep else tempfile.TemporaryDirectory(prefix="bench_scale_")
    folder = Path(keep or holder.name)  # type: ignore[union-attr]
    folder.mkdir(parents=True, exist_ok=True)
    parts = os.environ.get("GENOSYNTH_SCALE_PARTS", "biobank,cfw").split(",")
    if "biobank" in parts:
        from benchmarks import scale_biobank

        scale_biobank.main(folder, measure)
    if "compare" in parts:
        from benchmarks import scale_compare

        scale_compare.main()
    if "cfw" not in parts:
        if holder is not None:
            holder.cleanup()
        return
    rows: list[dict] = []
    try:
        cohort = _cohort(folder, rows)
        run = folder / "run"
        summary = _pipeline(cohort, run, rows)
        steps = _step_table(run, cohort, summary)
        per_batch = _per_batch(run, folder / "scratch-run")
        gwas = _gwas(cohort, rows)
        autoregressive = _autoregressive(run, rows)
        storage_bytes = _storage(cohort, run)
        plan = projection(steps, per_batch, gwas, autoregressive, storage_bytes)
    finally:
        if holder is not None:
            holder.cleanup()
    with pd.option_context("display.width", 220, "display.max_colwidth", 110,
                           "display.float_format", lambda v: f"{v:.4g}"):
        print(pd.DataFrame(rows).to_string(index=False))
        print("\nsteps of the cfw-sim run (ledger seconds; cells = individuals x SNPs [x traits])")
        print(steps.to_string(index=False))
        charged = summary["cpu_hours"] * 3600
        print(f"run total: {charged:.0f} core-seconds charged, ${summary['dollars_spent']:.4f}")
        print("\none batch in a fresh process (MB above a process that only imports the step)")
        print(per_batch.to_string(index=False))
        print("\nstored genotype bytes per individual x SNP:",
              ", ".join(f"{k} {v:.3f}" for k, v in storage_bytes.items()))
        print(f"\nprojection to {TARGET_N:,} x {TARGET_M:,} (80% trained on)")
        print(plan.to_string(index=False))


if __name__ == "__main__":
    main()
