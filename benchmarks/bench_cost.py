"""Cost ledger at the reference study's scale: accounting, totals and the budget gate.

The reference synthesis had about 5,000 genotype models; a run of that size writes a train and a generate
record per batch. Prints seconds per operation on local storage (object stores add a round trip per
record write and list the ledger in pages of 1,000 keys).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from genosynth.cost import gate, ledger
from genosynth.run_config import RunConfig
from genosynth.run_state import BatchPlan

BATCHES = 5000


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        run_url = str(Path(folder) / "run")
        RunConfig(dataset_url="bench", batch_snps=17).save(run_url)
        BatchPlan.build({"batch": b, "chr": "1", "start": 17 * b, "stop": 17 * (b + 1),
                         "context_start": 17 * b, "context_stop": 17 * (b + 1), "run_start": 0,
                         "positioned": True}
                        for b in range(BATCHES)).write(run_url)

        started = time.perf_counter()
        for b in range(BATCHES):
            ledger.account_step(run_url, step="train", batch=b, attempt=1, seconds=2074.0,
                                device_kind="nvidia-tesla-t4", device_count=1)
            ledger.account_step(run_url, step="generate", batch=b, attempt=1, seconds=60.0,
                                device_kind="cpu", device_count=1)
        account = (time.perf_counter() - started) / (2 * BATCHES)

        started = time.perf_counter()
        summary = ledger.summary(run_url)
        totals = time.perf_counter() - started

        started = time.perf_counter()
        decision = gate.estimate(run_url)
        estimate = time.perf_counter() - started

    rows = [
        ("account_step (one record)", f"{account * 1000:.2f} ms"),
        (f"summary of {summary['attempts']} records", f"{totals:.2f} s"),
        ("budget gate estimate", f"{estimate:.2f} s"),
        ("ledger dollars (5,000 T4 batches of 2,074 s)", f"${summary['dollars_spent']:.2f}"),
        ("ledger GPU hours", f"{summary['gpu_hours']:.0f} h"),
        ("remaining estimate after all batches", f"${decision.estimate:.2f}"),
    ]
    width = max(len(name) for name, _ in rows)
    print(f"{'operation':<{width}}  value")
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()
