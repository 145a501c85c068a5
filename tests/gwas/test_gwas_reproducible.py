"""Two runs of the same GWAS give the same bytes, whatever thread counts BLAS and torch were given.

The eigendecomposition is the one step whose low bits depend on the thread count (LAPACK's threaded
reduction); it always runs on one thread. The matrix products split their output, not their sums, over
threads, so they give the same bits on one or two threads; this test holds all of that to account.
"""

from __future__ import annotations

import pytest
import torch
from threadpoolctl import threadpool_limits

from genosynth.gwas import run_gwas
from genosynth.gwas.output import table_bytes


def _bytes(hs_subset, model: str, loco: bool, threads: int) -> bytes:
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with threadpool_limits(limits=threads):
            result = run_gwas(hs_subset.dataset_url, ["trait1", "trait6"], covariates=["trait4"], model=model,
                              loco=loco)
    finally:
        torch.set_num_threads(before)
    return table_bytes(result.table, ".parquet")


@pytest.mark.parametrize(("model", "loco"), [("lm", False), ("lmm", False), ("lmm", True)])
def test_same_bytes_on_one_and_two_threads(hs_subset, model, loco):
    one = _bytes(hs_subset, model, loco, threads=1)
    assert _bytes(hs_subset, model, loco, threads=2) == one
    assert _bytes(hs_subset, model, loco, threads=1) == one
