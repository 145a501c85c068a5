"""Bad input: exit status 2, one line naming the file, row/column, expected and found; no output."""

from __future__ import annotations

import numpy as np
import pytest

from genosynth.formats.dataset import Dataset

GOOD_GENO = "s1, A, G, 0, 1, 2\ns2, C, T, 2, 0.5, 1\n"
GOOD_PHENO = "1.0\n2.0\n3.0\n"


def _bimbam(tmp_path, geno=GOOD_GENO, pheno=GOOD_PHENO):
    (tmp_path / "g.txt").write_text(geno)
    (tmp_path / "p.txt").write_text(pheno)
    return ["import", "bimbam", "--geno", str(tmp_path / "g.txt"), "--pheno", str(tmp_path / "p.txt")]


def _assert_rejected(result, out, *fragments: str) -> None:
    assert result.code == 2, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert not out.exists()


@pytest.mark.parametrize(
    ("geno", "fragments"),
    [
        ("s1, A, G, 0, x1, 2\n", ["g.txt, row 1, column 'field 5'", "expected a dosage", "'x1'"]),
        ("s1, A, G, 0, 1, 2\ns2, C, T, 2, 2.5, 1\n",
         ["g.txt, row 2, column 'field 5'", "[0.0, 2.0]", "'2.5'"]),
        ("s1, A, G, 0, 1, 2\ns2, C, T, 2, 1\n", ["g.txt, row 2", "expected 6 fields", "found 5"]),
        ("s1, A, G, 0, 1, 2\ns1, C, T, 2, 1, 1\n", ["g.txt, row 2", "duplicate SNP ID 's1'", "row 1"]),
    ],
    ids=["non-numeric-dosage", "dosage-out-of-range", "wrong-column-count", "duplicate-snp-id"],
)
def test_bimbam_geno_errors(tmp_path, run_cli, geno, fragments):
    out = tmp_path / "out"
    result = run_cli(*_bimbam(tmp_path, geno=geno), "--out", str(out))
    _assert_rejected(result, out, *fragments)


def test_trait_name_count_mismatch(tmp_path, run_cli):
    out = tmp_path / "out"
    result = run_cli(*_bimbam(tmp_path), "--trait-names", "a,b", "--out", str(out))
    _assert_rejected(result, out, "p.txt", "--trait-names gives 2 names", "1 phenotype columns")


def test_phenotype_rows_must_match_genotyped_individuals(tmp_path, run_cli):
    out = tmp_path / "out"
    result = run_cli(*_bimbam(tmp_path, pheno="1\n2\n"), "--out", str(out))
    _assert_rejected(result, out, "p.txt", "expected 3 phenotype rows", "found 2")


def test_missing_file(tmp_path, run_cli):
    out = tmp_path / "out"
    args = _bimbam(tmp_path)
    args[3] = str(tmp_path / "absent.txt")
    _assert_rejected(run_cli(*args, "--out", str(out)), out, "absent.txt", "file not found")


def _tiny_bfile(folder, n_samples=5, n_snps=3):
    from bed_reader import to_bed

    folder.mkdir(parents=True, exist_ok=True)
    calls = np.arange(n_samples * n_snps).reshape(n_samples, n_snps) % 3
    iids = [f"i{k}" for k in range(n_samples)]
    to_bed(folder / "t.bed", calls.astype(np.float32), properties={"iid": iids})
    return folder / "t"


def test_truncated_bed(tmp_path, run_cli):
    prefix = _tiny_bfile(tmp_path / "in")
    bed = prefix.with_suffix(".bed")
    bed.write_bytes(bed.read_bytes()[:-2])
    out = tmp_path / "out"
    result = run_cli("import", "plink", "--bfile", str(prefix), "--out", str(out))
    _assert_rejected(result, out, "t.bed", "truncated: expected 9 bytes for 5 samples x 3 SNPs, found 7")


def test_plink_pheno_without_shared_ids(tmp_path, run_cli):
    prefix = _tiny_bfile(tmp_path / "in")
    pheno = tmp_path / "in" / "p.txt"
    pheno.write_text("FID IID weight\nx z1 1.0\nx z2 -9\n")
    out = tmp_path / "out"
    result = run_cli("import", "plink", "--bfile", str(prefix), "--pheno", str(pheno), "--out", str(out))
    _assert_rejected(result, out, "p.txt", "no sample ID in common with", "'z1'", "'i0'")


def test_plink_partial_overlap_warns(tmp_path, run_cli):
    prefix = _tiny_bfile(tmp_path / "in")
    pheno = tmp_path / "in" / "p.txt"
    pheno.write_text("FID IID weight\nx i1 1.0\nx i3 -9\nx q7 2\n")
    out = tmp_path / "out"
    result = run_cli("import", "plink", "--bfile", str(prefix), "--pheno", str(pheno), "--out", str(out))
    assert result.code == 0, result.stderr
    assert "warning:" in result.stderr and "2 samples kept of 5 genotyped and 3 phenotyped" in result.stderr
    ds = Dataset.open(str(out))
    assert list(ds.sample_ids) == ["i1", "i3"] and ds.traits == ["weight"]
    assert ds.samples["weight"].isna().tolist() == [False, True]


def test_cfw_duplicate_snp_and_bad_dosage(tmp_path, run_cli):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "map.txt").write_text("id chr pos ref alt quality\nrs1 1 10 A G 1\nrs2 1 20 A G 1\n")
    (folder / "pheno.csv").write_text("id,bmd\nm1,1\n")
    args = ["import", "cfw", "--geno", str(folder / "geno.txt"), "--map", str(folder / "map.txt"),
            "--pheno", str(folder / "pheno.csv"), "--out", str(tmp_path / "out")]
    (folder / "geno.txt").write_text("id discard rs1 rs1\nm1 0 1 2\n")
    _assert_rejected(run_cli(*args), tmp_path / "out", "geno.txt, row 1", "duplicate SNP ID 'rs1'")
    (folder / "geno.txt").write_text("id discard rs1 rs2\nm1 0 1 -0.5\n")
    _assert_rejected(run_cli(*args), tmp_path / "out", "geno.txt, row 2, column 'rs2'", "'-0.5'")
