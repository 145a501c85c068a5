"""The train step: one genotype model per SNP batch."""
