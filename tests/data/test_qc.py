"""QC: counts per reason on a cohort built with known faults, streaming, and subsetting."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from genosynth.formats.dataset import write_dataset
from genosynth.formats.subset import subset_dataset
from genosynth.prep.qc import run_qc


@pytest.fixture
def faulty_cohort(tmp_path):
    """200 individuals (10 flagged discard) x 60 SNPs with planted faults, in chunks of 16 SNPs."""
    rng = np.random.default_rng(7)
    n, m = 200, 60
    dosages = rng.binomial(2, 0.4, size=(n, m)).astype(np.float32)
    dosages[:, 3] = 1.0                                    # monomorphic
    dosages[:, 17] = 0.0
    dosages[:20, 5] = np.nan                               # 10% missing
    dosages[:, 40] = 0.0
    dosages[100, 40] = 1.0                                 # maf 1/380 = 0.0026
    dosages[:, 41] = 2.0
    dosages[100:107, 41] = 1.0                             # maf 7/380 = 0.018: fails maf 0.02 only
    dosages[:30, 50] = np.nan
    dosages[:, 50][30:] = 2.0                              # missing AND monomorphic: counted as missingness
    dosages[10:, 55] = 0.0
    dosages[:10, 55] = 2.0                                 # polymorphic only among discarded individuals
    quality = np.full(m, np.nan)
    quality[20:60] = 0.99
    quality[[22, 23, 24]] = [0.9, 0.5, 0.95]               # two below 0.95; 0.95 itself is kept
    samples = pd.DataFrame({"id": [f"s{i}" for i in range(n)], "y": rng.normal(size=n),
                            "discard": (np.arange(n) < 10).astype(int)})
    variants = pd.DataFrame({"id": [f"rs{j}" for j in range(m)], "chr": "1", "pos": np.arange(m) * 100 + 1,
                             "ref": "A", "alt": "G", "quality": quality})
    return write_dataset(str(tmp_path / "faulty"), samples, variants, dosages, traits=["y"], chunk_size=16)


def test_counts_per_reason(faulty_cohort):
    result = run_qc(faulty_cohort, maf=0.02)
    log = result.log
    assert log["samples"] == {"total": 200, "kept": 190, "dropped": {"discard": 10}}
    np.testing.assert_array_equal(result.sample_mask, np.arange(200) >= 10)
    # On the 190 kept individuals column 5 is 10/190 missing; column 55 is monomorphic.
    assert log["snps"]["dropped"] == {"missingness": 2, "monomorphic": 3, "maf": 2, "quality": 2}
    dropped = set(np.flatnonzero(~result.snp_mask))
    assert dropped == {5, 50, 3, 17, 55, 40, 41, 22, 23}
    assert log["snps"]["failing"]["monomorphic"] == 4  # column 50 too
    assert log["snps"]["kept"] == 60 - 9
    assert log["snps"]["quality_known"] == 40


def test_thresholds_and_switches(faulty_cohort):
    loose = run_qc(faulty_cohort, maf=0.01, max_missing=0.2, min_quality=0.0, drop_discarded=False)
    assert loose.log["samples"]["kept"] == 200
    # Column 55 now varies (discarded individuals kept), column 41 passes maf 0.01, columns 5 and 50
    # pass 20% missingness (50 is then monomorphic).
    assert set(np.flatnonzero(~loose.snp_mask)) == {3, 17, 40, 50}
    assert loose.log["snps"]["dropped"] == {"missingness": 0, "monomorphic": 3, "maf": 1, "quality": 0}


def test_streaming_block_size_does_not_change_the_result(faulty_cohort):
    a = run_qc(faulty_cohort, batch_size=7)
    b = run_qc(faulty_cohort, batch_size=1000)
    np.testing.assert_array_equal(a.snp_mask, b.snp_mask)
    assert a.log == b.log


def test_demo_qc_drops_the_rare_snps(demo_dataset):
    result = run_qc(demo_dataset)
    maf = np.minimum(demo_dataset.variants["af"], 1 - demo_dataset.variants["af"]).to_numpy()
    assert result.log["snps"]["dropped"]["maf"] == int((maf < 0.01).sum()) > 0
    assert result.log["snps"]["dropped"]["missingness"] == 0
    assert result.sample_mask.all()


def test_subset_streams_the_chosen_rows_and_snps(tmp_path, faulty_cohort):
    result = run_qc(faulty_cohort, maf=0.02)
    rows = np.flatnonzero(result.sample_mask)[::-1][:50]
    sub = subset_dataset(faulty_cohort, str(tmp_path / "sub"), rows, result.snp_mask, batch_size=5)
    np.testing.assert_array_equal(sub.dosages(), faulty_cohort.dosages()[np.ix_(rows, result.snp_mask)])
    assert list(sub.sample_ids) == [f"s{i}" for i in rows]
    assert list(sub.variants["id"]) == [f"rs{j}" for j in np.flatnonzero(result.snp_mask)]
    expected_af = np.nanmean(sub.dosages(), axis=0) / 2
    np.testing.assert_allclose(sub.variants["af"], expected_af, rtol=1e-6)
    assert sub.traits == ["y"] and sub.provenance["subset"] == {"samples": 50, "snps": 51}
