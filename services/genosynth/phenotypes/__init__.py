"""Phenotype synthesis: a mixed model per trait plus a Gaussian copula for the other columns."""
