"""genosynth: synthetic genotype + phenotype cohorts that keep the cohort's GWAS."""

__version__ = "0.1.0"
