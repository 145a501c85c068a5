"""Where each step's outputs live under a run URL: the one place that names the keys.

Every step reads its inputs and writes its outputs under these keys, so the local runner and Argo tasks
(``genosynth step NAME --run RUN_URL [--batch K]``) run exactly the same code.
"""

from __future__ import annotations

from genosynth.storage import join

CONFIG = "config.json"
PREP = "prep"
PREP_COHORT = "prep/cohort"          # the whole QC'd cohort (train + holdout): the real side of the GWAS
PREP_TRAIN = "prep/train"            # QC'd training split (internal dataset, ~80% of individuals)
PREP_HOLDOUT = "prep/holdout"        # QC'd held-out split (internal dataset, ~20%), never trained on
PREP_QC_LOG = "prep/qc.json"         # QC counts per reason
PREP_BATCHES = "prep/batches.json"   # SNP batches and phenotype column groups
PREP_PLAN = "prep/plan.json"         # the genotype model family's cohort-wide plan (e.g. switch rate)
TRAIN = "train"                      # train/batch-NNNNN/: one fitted genotype model per batch
GENERATE = "generate"                # generate/batch-NNNNN/: synthetic genotypes of one batch
PHENOTYPE_MODEL_LOG = "generate/phenotype-model.json"  # what assemble fitted for each trait
SYNTHETIC = "synthetic"              # assembled synthetic dataset (internal dataset)
GWAS_REAL = "gwas/real.parquet"
GWAS_SYNTHETIC = "gwas/synthetic.parquet"
COMPARE_METRICS = "compare/metrics.json"
COMPARE_DETAILS = "compare/details.json"  # curves and distributions the report plots
COMPARE_GATE = "compare/gate.json"        # privacy-gate verdict: passed, failures, checks
COMPARE_RELEASE = "compare/release.json"  # release decision of synthetic/: {"released": bool, ...}
REPORT = "report"                    # report/index.html + PNGs
LEDGER = "ledger"                    # ledger/<one JSON object per step attempt>
COST_SUMMARY = "cost.json"           # ledger totals written by finalize
MARKERS = "_markers"                 # _markers/<step>[-NNNNN].json: step committed
LEASE = "_lease.json"                # held by the one `genosynth run` driving this run URL


def batch_key(prefix: str, batch: int) -> str:
    return f"{prefix}/batch-{batch:05d}"


def url(run_url: str, *keys: str) -> str:
    return join(run_url, *keys)
