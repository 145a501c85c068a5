"""Pipeline steps ``gwas-real`` and ``gwas-synthetic``: GWAS of ``prep/cohort`` and of ``synthetic/``.

The real side is the whole QC'd cohort (training and held-out individuals), not the training split: the
synthetic cohort has the real cohort's size by default, so both p-value scales are the real study's.

Both use the run config's traits (empty: the dataset's traits), covariates (empty: the dataset's),
``gwas_model`` (``lm``, ``lmm``, ``wgr`` or ``auto``, see :mod:`genosynth.gwas.models`) and ``loco``, and
write ``gwas/real.parquet`` / ``gwas/synthetic.parquet`` with the log
beside them (``.log.json``). A cohort with a single chromosome cannot leave it out; LOCO is then skipped
and the log says so. The result is a pure function of the inputs, so a rerun writes identical bytes.
"""

from __future__ import annotations

from genosynth import run_layout
from genosynth.formats.dataset import Dataset
from genosynth.gwas.models import resolve, run_model
from genosynth.gwas.output import write_result
from genosynth.run_config import RunConfig


def _run(run_url: str, dataset_key: str, output_key: str) -> None:
    config = RunConfig.load(run_url)
    dataset = Dataset.open(run_layout.url(run_url, dataset_key))
    traits = list(config.traits) or dataset.traits
    covariates = list(config.covariates) or dataset.covariates
    model = resolve(config.gwas_model, dataset.n_samples)
    loco = bool(config.loco) and model == "lmm"
    single_chromosome = dataset.variants["chr"].astype(str).nunique() < 2
    result = run_model(dataset, traits, covariates=covariates, model=model,
                       loco=loco and not single_chromosome)
    if loco and single_chromosome:
        result.log["loco_skipped"] = "one chromosome only: the full kinship was used"
    write_result(result, run_layout.url(run_url, output_key))


def run_real(run_url: str, batch: int | None = None) -> None:
    """GWAS of the whole QC'd real cohort (``prep/cohort``) -> ``gwas/real.parquet``."""
    _run(run_url, run_layout.PREP_COHORT, run_layout.GWAS_REAL)


def run_synthetic(run_url: str, batch: int | None = None) -> None:
    """GWAS of the synthetic cohort (``synthetic/``) -> ``gwas/synthetic.parquet``."""
    _run(run_url, run_layout.SYNTHETIC, run_layout.GWAS_SYNTHETIC)
