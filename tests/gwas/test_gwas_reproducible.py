"""Reproducibility of the GWAS tables.

* Same thread count (``run_gwas`` sets BLAS and torch threads once per run): byte-identical tables, run
  after run. The eigendecomposition always runs on one thread (LAPACK's threaded reduction changes the low
  bits with the thread count, and a count chosen from the machine's load made two runs differ).
* Different thread counts: some BLAS kernels sum in a different order, so the tables agree closely, not to
  the bit: the linear model to a relative 1e-11; the LMM, whose rotations and GLS solves amplify the
  round-off by an amount that depends on the CPU's kernels (measured 3e-13 relative on one machine, 1e-8
  standard errors on another), to 1e-6 in standard errors of beta, relative se and log10 p. docs/gwas.md
  states these tolerances.
"""

from __future__ import annotations

import numpy as np
import pytest

from genosynth.gwas import run_gwas
from genosynth.gwas.output import table_bytes


def _table(hs_subset, model: str, loco: bool, threads: int):
    return run_gwas(hs_subset.dataset_url, ["trait1", "trait6"], covariates=["trait4"], model=model,
                    loco=loco, threads=threads).table


@pytest.mark.parametrize(("model", "loco"), [("lm", False), ("lmm", False), ("lmm", True)])
def test_same_bytes_at_the_same_thread_count(hs_subset, model, loco):
    first = table_bytes(_table(hs_subset, model, loco, threads=2), ".parquet")
    assert table_bytes(_table(hs_subset, model, loco, threads=2), ".parquet") == first


@pytest.mark.parametrize(("model", "loco"), [("lm", False), ("lmm", True)])
def test_thread_count_changes_only_the_last_bits(hs_subset, model, loco):
    one, two = _table(hs_subset, model, loco, threads=1), _table(hs_subset, model, loco, threads=2)
    assert one[["trait", "snp"]].equals(two[["trait", "snp"]])
    if model == "lm":
        for column in ("beta", "se", "p"):
            np.testing.assert_allclose(two[column], one[column], rtol=1e-11, atol=0)
        return
    assert (np.abs(two["beta"] - one["beta"]) / one["se"]).max() < 1e-6
    np.testing.assert_allclose(two["se"], one["se"], rtol=1e-6, atol=0)
    np.testing.assert_allclose(np.log10(two["p"]), np.log10(one["p"]), rtol=0, atol=1e-6)
