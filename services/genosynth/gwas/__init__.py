"""GWAS engine that reproduces GEMMA 0.98.5: per-SNP linear model (``-lm 1``), centred kinship
(``-gk 1``), exact univariate LMM (``-lmm 1``) and leave-one-chromosome-out (``-loco``).

``run_gwas(dataset, traits, covariates=(), model="lmm", loco=False, samples=None) -> GwasResult``.
"""

from genosynth.gwas.engine import GwasResult, run_gwas

__all__ = ["GwasResult", "run_gwas"]
