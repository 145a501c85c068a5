"""Bad input: exit status 2, one line naming the file, row/column, expected and found; no output."""

from __future__ import annotations

import pytest

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
