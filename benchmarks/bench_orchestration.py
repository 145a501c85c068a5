"""Orchestration benchmark: Argo fan-out size by cohort scale, and the local runner on the demo cohort.

Prints two tables:

1. for 1k / 10k / 100k SNP batches: batch groups, pods, and the size of the ``batch-groups`` parameter
   that the Workflow object stores (etcd's object limit is 1 MB);
2. ``genosynth run`` on the demo cohort (400 x 3,000) with 1 and 2 parallel workers, and the rerun of a
   finished run (every node skipped): wall seconds.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from genosynth import pipeline
from genosynth.runners import argo


def fan_out_table() -> None:
    print(f"{'batches':>9} {'groups':>7} {'pods':>6} {'batch-groups bytes':>19}")
    for n in (1_000, 10_000, 100_000):
        groups = pipeline.group_batches(range(n), argo.DEFAULT_BATCH_GROUP_SIZE)
        whole_run = [s for s in pipeline.STEPS if not s.per_batch]
        pods = 2 * len(groups) + len(whole_run) + 1  # train + generate groups, other steps, configure
        print(f"{n:>9,} {len(groups):>7,} {pods:>6,} {len(json.dumps(groups)):>19,}")


def _run(dataset: str, out: Path, *extra: str) -> float:
    started = time.perf_counter()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "genosynth",
            "run",
            dataset,
            "--out",
            str(out),
            "--no-progress",
            "--allow-privacy-failure",
            *extra,
        ],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-2000:])
    return time.perf_counter() - started


def runner_table() -> None:
    from genosynth.datasets.demo import make_demo

    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        dataset = make_demo(str(root / "demo"), seed=0).url
        rows = []
        for parallel in (1, 2):
            out = root / f"run-{parallel}"
            rows.append(
                (f"demo run, max_parallel={parallel}", _run(dataset, out, "--max-parallel", str(parallel)))
            )
        rows.append(
            ("rerun of a finished run (all skipped)", _run(dataset, root / "run-2", "--max-parallel", "2"))
        )
        batches = len(pipeline.read_batches(str(root / "run-2")))
        print(f"{'local runner (' + str(batches) + ' batches)':<40} {'wall s':>8}")
        for label, seconds in rows:
            print(f"{label:<40} {seconds:>8.1f}")


def main() -> None:
    fan_out_table()
    print()
    runner_table()


if __name__ == "__main__":
    main()
