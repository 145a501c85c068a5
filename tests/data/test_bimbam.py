"""BIMBAM import/export against GEMMA's own example files and GEMMA itself."""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess

import numpy as np
import pytest

from genosynth.errors import InputError
from genosynth.formats.bimbam import export_bimbam, import_bimbam
from genosynth.formats.dataset import Dataset


def _raw_geno_lines(example_dir: str, count: int) -> list[list[str]]:
    with gzip.open(os.path.join(example_dir, "mouse_hs1940.geno.txt.gz"), "rt") as handle:
        return [next(handle).strip().split(", ") for _ in range(count)]


def test_hs1940_keeps_snps_without_position_and_gemma_coding(hs1940_dataset, gemma_example_dir):
    ds = hs1940_dataset
    assert (ds.n_samples, ds.n_variants) == (1940, 12226)
    assert ds.traits == [f"trait{k}" for k in range(1, 7)]
    variants = ds.variants
    # 1,926 SNPs have no bp position in the anno file: kept and flagged, in geno file order.
    assert int(variants["pos"].isna().sum()) == 1926
    assert variants["id"].iat[26] == "gnf01.004.225" and variants["pos"].isna().iat[26]
    assert variants["chr"].iat[26] == "1"
    raw = _raw_geno_lines(gemma_example_dir, 40)
    assert list(variants["id"][:40]) == [r[0] for r in raw]
    # alt = A1, the allele GEMMA counts; dosages stored unchanged.
    assert (variants["alt"].iat[0], variants["ref"].iat[0]) == ("A", "G")
    expected = np.array([r[3:] for r in raw], dtype=np.float32).T
    np.testing.assert_array_equal(ds.dosages(0, 40), expected)
    assert ds.descriptor["has_dosages"]  # the file has non-integer dosages such as 0.333
    assert ds.samples["id"].iat[0] == "A048005080"
    assert ds.samples["trait1"].notna().sum() == 1410


def test_import_small_trio_with_trait_names_and_missing_values(tmp_path, run_cli):
    geno = tmp_path / "x.geno.txt"
    geno.write_text("s1, A, G, 0, 1.5, NA\ns2, C, T, 2, 0.25, 1\ns3, G, A, 1,1,1\n")
    pheno = tmp_path / "x.pheno.txt"
    pheno.write_text("1.0 NA\n2.5 0\n-9 1\n")
    anno = tmp_path / "x.anno.txt"
    anno.write_text("s1 100 1 0.1\ns2 NA 2 NA\n")
    out = tmp_path / "ds"
    result = run_cli("import", "bimbam", "--geno", str(geno), "--pheno", str(pheno), "--anno", str(anno),
                     "--trait-names", "height,sick", "--out", str(out))
    assert result.code == 0, result.stderr
    ds = Dataset.open(str(out))
    assert ds.traits == ["height", "sick"]
    assert ds.column_kinds["sick"] == "binary"
    np.testing.assert_array_equal(ds.samples["height"].isna(), [False, False, True])
    np.testing.assert_allclose(ds.dosages(), [[0, 2, 1], [1.5, 0.25, 1], [np.nan, 1, 1]])
    assert list(ds.variants["chr"]) == ["1", "2", "NA"]
    assert ds.variants["pos"].isna().tolist() == [False, True, True]


@pytest.fixture(scope="module")
def small_hs1940_trio(tmp_path_factory, gemma_example_dir):
    """The first 300 SNPs of mouse_hs1940 as a plain-text BIMBAM trio."""
    folder = tmp_path_factory.mktemp("trio")
    paths = {}
    for kind in ("geno", "pheno", "anno"):
        with gzip.open(os.path.join(gemma_example_dir, f"mouse_hs1940.{kind}.txt.gz"), "rt") as handle:
            lines = handle.readlines()
        if kind != "pheno":
            lines = lines[:300]
        paths[kind] = folder / f"hs.{kind}.txt"
        paths[kind].write_text("".join(lines))
    return paths


def test_export_round_trip_is_exact_and_gemma_reads_it(tmp_path, small_hs1940_trio):
    trio = small_hs1940_trio
    ds = import_bimbam(str(trio["geno"]), str(trio["pheno"]), str(trio["anno"]), str(tmp_path / "a"))
    paths = export_bimbam(ds, str(tmp_path / "export" / "hs"))
    again = import_bimbam(paths["geno"], paths["pheno"], paths["anno"], str(tmp_path / "b"))
    np.testing.assert_array_equal(again.dosages(), ds.dosages())
    assert again.variants[["id", "chr", "ref", "alt"]].equals(ds.variants[["id", "chr", "ref", "alt"]])
    assert again.variants["pos"].equals(ds.variants["pos"])
    np.testing.assert_array_equal(again.samples[ds.traits].to_numpy(), ds.samples[ds.traits].to_numpy())

    gemma = shutil.which("gemma")
    assert gemma, "GEMMA missing: apt-get install gemma"
    done = subprocess.run(
        [gemma, "-g", paths["geno"], "-p", paths["pheno"], "-a", paths["anno"], "-gk", "1", "-o", "x",
         "-outdir", str(tmp_path / "gemma")],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    kinship = np.loadtxt(tmp_path / "gemma" / "x.cXX.txt")
    assert kinship.shape == (1940, 1940)
    log = (tmp_path / "gemma" / "x.log.txt").read_text()
    analysed = int(log.split("number of analyzed SNPs/var = ")[1].split()[0])
    assert 250 < analysed <= 300


def test_missing_example_data_names_the_install_hint(tmp_path):
    from genosynth.datasets.hs1940 import get_hs1940

    with pytest.raises(InputError, match="apt-get install gemma-doc"):
        get_hs1940(str(tmp_path / "out"), data_dir=str(tmp_path / "nowhere"))
    assert not (tmp_path / "out").exists()
