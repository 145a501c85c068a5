"""The generate and assemble steps: synthetic genotypes per batch, then the synthetic cohort."""
