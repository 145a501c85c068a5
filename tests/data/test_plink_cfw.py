"""PLINK 1 and CFW import/export: round trips, GEMMA reading our PLINK export, sample alignment."""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from genosynth.errors import InputError
from genosynth.formats.cfw import export_cfw, import_cfw
from genosynth.formats.plink import export_plink, import_plink
from genosynth.formats.subset import subset_dataset
from genosynth.formats.text_tables import SampleAlignmentWarning


@pytest.fixture(scope="module")
def hs1940_bfile(tmp_path_factory, gemma_example_dir):
    """mouse_hs1940 in PLINK 1 format (its .fam carries 6 phenotype columns after the standard ones)."""
    folder = tmp_path_factory.mktemp("plink")
    for ext in ("bed", "bim", "fam"):
        with gzip.open(os.path.join(gemma_example_dir, f"mouse_hs1940.{ext}.gz"), "rb") as src, \
                open(folder / f"hs.{ext}", "wb") as dst:
            shutil.copyfileobj(src, dst)
    return str(folder / "hs")


def test_hs1940_plink_import_matches_bimbam_import(tmp_path, hs1940_bfile, hs1940_dataset):
    ds = import_plink(hs1940_bfile, str(tmp_path / "ds"))
    assert (ds.n_samples, ds.n_variants) == (1940, 12226)
    assert ds.traits == [f"trait{k}" for k in range(1, 7)]
    # Same individuals, SNPs, alleles (alt = A1) and phenotypes as GEMMA's BIMBAM files.
    assert list(ds.sample_ids) == list(hs1940_dataset.sample_ids)
    cols = ["id", "chr", "ref", "alt"]
    assert ds.variants[cols].equals(hs1940_dataset.variants[cols])
    assert int(ds.variants["pos"].isna().sum()) == 1926  # bp -9 in the .bim
    np.testing.assert_array_equal(ds.samples[ds.traits].to_numpy(),
                                  hs1940_dataset.samples[ds.traits].to_numpy())
    # Hard calls agree with the BIMBAM mean genotypes wherever those are integers.
    plink, bimbam = ds.dosages(0, 500), hs1940_dataset.dosages(0, 500)
    integral = bimbam == np.rint(bimbam)
    assert integral.mean() > 0.95
    assert (plink[integral] == bimbam[integral]).mean() > 0.99


def test_plink_round_trip_and_gemma_reads_export(tmp_path, demo_dataset):
    small = subset_dataset(demo_dataset, str(tmp_path / "small"), np.arange(0, 400, 2),
                           np.arange(demo_dataset.n_variants) < 1200)
    paths = export_plink(small, str(tmp_path / "export" / "demo"))
    again = import_plink(str(tmp_path / "export" / "demo"), str(tmp_path / "again"), pheno=paths["pheno"])
    np.testing.assert_array_equal(again.dosages(), small.dosages())  # demo dosages are hard calls
    assert again.traits == small.traits
    assert list(again.sample_ids) == list(small.sample_ids)
    cols = ["id", "chr", "pos", "ref", "alt"]
    assert again.variants[cols].equals(small.variants[cols])
    np.testing.assert_array_equal(again.samples[small.traits].to_numpy(),
                                  small.samples[small.traits].to_numpy())

    done = subprocess.run(
        ["gemma", "-bfile", str(tmp_path / "export" / "demo"), "-gk", "1", "-o", "k", "-outdir",
         str(tmp_path / "gemma")], capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    kinship = np.loadtxt(tmp_path / "gemma" / "k.cXX.txt")
    assert kinship.shape == (small.n_samples, small.n_samples)
    # GEMMA's -gk 1 matrix (centred dosages, mean-imputed) of our export agrees with the same matrix
    # computed from the dataset itself.
    dosages = small.dosages().astype(np.float64)
    dosages = dosages[:, np.minimum(small.variants["af"], 1 - small.variants["af"]) >= 0.01]
    centred = np.nan_to_num(dosages - np.nanmean(dosages, axis=0))
    ours = centred @ centred.T / centred.shape[1]
    upper = np.triu_indices_from(ours, 1)
    assert np.corrcoef(ours[upper], kinship[upper])[0, 1] > 0.99
    assert np.mean(np.diag(kinship)) == pytest.approx(np.mean(np.diag(ours)), rel=0.05)


def _write_cfw(folder, geno_rows, map_rows, pheno_text):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "geno.txt").write_text("\n".join(geno_rows) + "\n")
    (folder / "map.txt").write_text("id chr pos ref alt quality\n" + "\n".join(map_rows) + "\n")
    (folder / "pheno.csv").write_text(pheno_text)
    return [str(folder / f) for f in ("geno.txt", "map.txt", "pheno.csv")]


CFW_GENO = ["id discard rs1 rs2 rs3", "m1 0 0 1.25 2", "m2 1 2 0.333 NA", "m3 0 1 1 0.987654321"]
CFW_MAP = ["rs1 1 100 A G 0.99", "rs2 1 250 C T 0.91", "rs3 2 NA G A 1"]
CFW_PHENO = "id,abBMD,SW16,round,cage\nm1,0.21,1,SW16,c1\nm2,NA,0,SW3,\nm3,0.25,0,SW3,c2\n"


def test_cfw_import_keeps_dosages_quality_discard_and_kinds(tmp_path):
    geno, map_file, pheno = _write_cfw(tmp_path / "in", CFW_GENO, CFW_MAP, CFW_PHENO)
    ds = import_cfw(geno, map_file, pheno, str(tmp_path / "ds"))
    np.testing.assert_array_equal(ds.dosages(), np.array(
        [[0, 1.25, 2], [2, 0.333, np.nan], [1, 1, 0.987654321]], dtype=np.float32))
    assert list(ds.samples["discard"]) == [0, 1, 0]
    np.testing.assert_allclose(ds.variants["quality"], [0.99, 0.91, 1.0])
    assert ds.variants["pos"].isna().tolist() == [False, False, True]
    assert ds.traits == ["abBMD"]
    assert ds.column_kinds == {"discard": "binary", "abBMD": "numeric", "SW16": "binary",
                               "round": "categorical", "cage": "categorical"}

    out = export_cfw(ds, str(tmp_path / "export"))
    again = import_cfw(out["geno"], out["map"], out["pheno"], str(tmp_path / "again"))
    np.testing.assert_array_equal(again.dosages(), ds.dosages())
    pd.testing.assert_frame_equal(again.samples, ds.samples, check_dtype=False)
    pd.testing.assert_frame_equal(again.variants, ds.variants)


def test_cfw_round_trip_of_a_simulated_cohort(tmp_path, demo_dataset):
    out = export_cfw(demo_dataset, str(tmp_path / "cfw"))
    again = import_cfw(out["geno"], out["map"], out["pheno"], str(tmp_path / "again"))
    np.testing.assert_array_equal(again.dosages(), demo_dataset.dosages())
    assert again.traits == demo_dataset.traits
    cols = ["id", "chr", "pos", "ref", "alt"]
    assert again.variants[cols].equals(demo_dataset.variants[cols])


def test_partial_sample_overlap_warns_and_keeps_the_intersection(tmp_path):
    pheno = "id,abBMD\nm3,0.3\nm1,0.1\nx9,0.5\n"
    geno, map_file, pheno_path = _write_cfw(tmp_path / "in", CFW_GENO, CFW_MAP, pheno)
    with pytest.warns(SampleAlignmentWarning, match=r"2 samples kept of 3 genotyped and 3 phenotyped.*'m2'"):
        ds = import_cfw(geno, map_file, pheno_path, str(tmp_path / "ds"))
    assert list(ds.sample_ids) == ["m1", "m3"]  # genotype order
    np.testing.assert_allclose(ds.samples["abBMD"], [0.1, 0.3])
    np.testing.assert_array_equal(ds.dosages()[:, 0], [0, 1])


def test_no_sample_overlap_is_an_error(tmp_path):
    geno, map_file, pheno = _write_cfw(tmp_path / "in", CFW_GENO, CFW_MAP, "id,abBMD\nz1,1\nz2,2\n")
    with pytest.raises(InputError, match="no sample ID in common"):
        import_cfw(geno, map_file, pheno, str(tmp_path / "ds"))
    assert not (tmp_path / "ds").exists()


@pytest.mark.parametrize("where", ["local", "memory"])
def test_a_bed_write_that_fails_part_way_publishes_nothing(tmp_path, where):
    from genosynth import storage
    from genosynth.formats.bed import BedReader, BedWriter

    url = str(tmp_path / "torn.bed") if where == "local" else f"memory://torn-{tmp_path.name}/torn.bed"
    calls = np.array([[0, 1, 2, -1, 2], [2, 2, 1, 0, 0]], dtype=np.int8)
    with pytest.raises(RuntimeError, match="storage lost"), BedWriter(url, n_samples=5) as writer:
        writer.add(calls)
        raise RuntimeError("storage lost")
    assert not storage.exists(url)
    if where == "local":
        assert os.listdir(tmp_path) == []  # no temporary file left beside it either

    with BedWriter(url, n_samples=5) as writer:
        writer.add(calls)
    with BedReader(url, 5, 2) as reader:
        assert np.array_equal(reader.read(0, 2), calls)
