"""Data benchmark: cfw-sim generation, imports/exports and QC at the CFW study's size.

Each task runs in its own Python process so its peak resident memory is its own. Prints one table:
task, wall seconds, CPU seconds, peak RSS, and what was produced. Run with ``python -m benchmarks data``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap

_PRELUDE = """
import json, resource, time
started = time.perf_counter()
def done(**extra):
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"seconds": time.perf_counter() - started, "cpu_s": usage.ru_utime + usage.ru_stime,
                      "peak_mb": usage.ru_maxrss / 1024, **extra}))
"""


def _task(code: str, **paths: str) -> dict:
    script = _PRELUDE + textwrap.dedent(code).format(**paths)
    env = {**os.environ, "OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                          check=False)
    if done.returncode != 0:
        error = (done.stderr.strip().splitlines() or ["failed"])[-1]
        return {"seconds": float("nan"), "cpu_s": float("nan"), "peak_mb": float("nan"), "note": error}
    return json.loads(done.stdout.strip().splitlines()[-1])


TASKS = [
    ("cfw-sim generate (1,220 x 92,734)", """
        from genosynth.datasets.cfw_sim import make_cfw_sim
        ds = make_cfw_sim("{work}/cfw", seed=0)
        done(note=f"{{ds.n_samples}} x {{ds.n_variants}}, {{ds.samples.shape[1]}} phenotype columns")
    """),
    ("QC cfw-sim (maf 0.02, quality 0.95)", """
        from genosynth.formats.dataset import Dataset
        from genosynth.prep.qc import run_qc
        log = run_qc(Dataset.open("{work}/cfw"), maf=0.02).log
        done(note=f"kept {{log['snps']['kept']}} SNPs, {{log['samples']['kept']}} mice; dropped "
                  f"{{log['snps']['dropped']}}")
    """),
    ("abBMD planted loci (least squares + SW16)", """
        import numpy as np
        from scipy import stats
        from genosynth.formats.dataset import Dataset
        ds = Dataset.open("{work}/cfw")
        ids = list(ds.variants["id"])
        out = []
        for locus in [p for p in ds.provenance["planted"] if p["trait"] == "abBMD"]:
            j = ids.index(locus["snp"])
            g = ds.dosages(j, j + 1)[:, 0]
            y = ds.samples["abBMD"].to_numpy()
            ok = ~np.isnan(y)
            x = np.column_stack([np.ones(len(y)), ds.samples["SW16"], g])[ok]
            coef, *_ = np.linalg.lstsq(x, y[ok], rcond=None)
            r = y[ok] - x @ coef
            se = np.sqrt(r @ r / (ok.sum() - 3) * np.linalg.inv(x.T @ x)[2, 2])
            out.append(f"chr{{locus['chr']}} p={{2 * stats.t.sf(abs(coef[2] / se), ok.sum() - 3):.1e}}")
        done(note=", ".join(out))
    """),
    ("export cfw-sim -> CFW text", """
        from genosynth.formats.cfw import export_cfw
        from genosynth.formats.dataset import Dataset
        paths = export_cfw(Dataset.open("{work}/cfw"), "{work}/cfw-text")
        import os
        done(note=f"geno.txt {{os.path.getsize(paths['geno']) / 1e6:.0f}} MB")
    """),
    ("import CFW text", """
        from genosynth.formats.cfw import import_cfw
        ds = import_cfw("{work}/cfw-text/geno.txt", "{work}/cfw-text/map.txt", "{work}/cfw-text/pheno.csv",
                        "{work}/cfw-again")
        done(note=f"{{ds.n_samples}} x {{ds.n_variants}}, {{len(ds.traits)}} traits")
    """),
    ("export cfw-sim -> PLINK 1", """
        from genosynth.formats.dataset import Dataset
        from genosynth.formats.plink import export_plink
        export_plink(Dataset.open("{work}/cfw"), "{work}/plink/cfw")
        done(note="hard calls")
    """),
    ("import PLINK 1", """
        from genosynth.formats.plink import import_plink
        ds = import_plink("{work}/plink/cfw", "{work}/plink-again", pheno="{work}/plink/cfw.pheno")
        done(note=f"{{ds.n_samples}} x {{ds.n_variants}}")
    """),
    ("datasets get hs1940 (BIMBAM, 1,940 x 12,226)", """
        from genosynth.datasets.hs1940 import get_hs1940
        ds = get_hs1940("{work}/hs1940")
        done(note=f"{{int(ds.variants['pos'].isna().sum())}} SNPs without position kept")
    """),
    ("datasets get demo (400 x 3,000)", """
        from genosynth.datasets.demo import make_demo
        ds = make_demo("{work}/demo", seed=0)
        done(note=f"{{len(ds.provenance['planted'])}} planted QTL")
    """),
]


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="genosynth-bench-data-") as work:
        rows = []
        for name, code in TASKS:
            result = _task(code, work=work)
            rows.append((name, result))
            print(f"  {name}: {result['seconds']:.1f} s", flush=True)
    print()
    print(f"{'task':<46} {'wall s':>7} {'CPU s':>7} {'peak MB':>8}  result")
    for name, result in rows:
        print(f"{name:<46} {result['seconds']:>7.1f} {result['cpu_s']:>7.1f} {result['peak_mb']:>8.0f}  "
              f"{result.get('note', '')}")
    # CPU seconds include interpreter start-up and imports; wall seconds depend on other load.
    print("targets: cfw-sim about 60 s, memory well under 4 GB (4,096 MB)")


if __name__ == "__main__":
    main()
