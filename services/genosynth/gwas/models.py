"""Which GWAS runs: ``lm`` and ``lmm`` (the exact GEMMA-compatible engine), ``wgr`` (REGENIE-style,
:mod:`genosynth.gwas.wgr`) and ``auto`` (the exact LMM below :data:`AUTO_WGR_FROM` individuals, WGR
from there on; the threshold's measurements are in docs/scaling.md)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from genosynth.formats.dataset import Dataset
from genosynth.gwas.engine import GwasResult, run_gwas
from genosynth.gwas.wgr import AUTO_WGR_FROM, run_wgr

MODELS = ("lm", "lmm", "wgr", "auto")


def resolve(model: str, n_samples: int) -> str:
    """The model ``auto`` stands for at ``n_samples`` individuals (other names unchanged)."""
    if model == "auto":
        return "wgr" if n_samples >= AUTO_WGR_FROM else "lmm"
    return model


def run_model(dataset: Dataset | str, traits: Sequence[str], *, covariates: Sequence[str] = (),
              model: str = "lmm", loco: bool = False,
              progress: Callable[[str], None] | None = None) -> GwasResult:
    """Run GWAS ``model`` (``wgr`` is always LOCO; ``loco`` applies to ``lmm``)."""
    ds = dataset if isinstance(dataset, Dataset) else Dataset.open(dataset)
    chosen = resolve(model, ds.n_samples)
    if chosen == "wgr":
        result = run_wgr(ds, traits, covariates, progress=progress)
    else:
        result = run_gwas(ds, traits, covariates=covariates, model=chosen, loco=loco, progress=progress)
    if model == "auto":
        result.log["model_requested"] = f"auto (wgr from {AUTO_WGR_FROM} individuals)"
    return result
