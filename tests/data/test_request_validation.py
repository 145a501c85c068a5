"""Bad requests, as a user makes them, on real files: exit 2, one line naming what is wrong, nothing written.

One row per failure mode found by trying the command line on GEMMA's HLC and mouse_hs1940 PLINK files and
the demo cohort: a .fam one row short, unknown traits/covariates, wrong config types, an unknown model,
``traits: glucose`` as a string, ``--out`` under a regular file, imports over a dataset or into a run, a
run into its own dataset, non-ASCII digits as dosages and a zero-width space inside a SNP ID.
"""

from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path

import pytest

from genosynth.formats.dataset import Dataset

N_SNPS = 300  # a 300-SNP slice of HLC keeps the test fast and shows the padding signal


def _lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


def _rejected(result, *fragments: str) -> str:
    assert result.code == 2, (result.stdout, result.stderr[-2000:])
    lines = _lines(result)
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def _tree(path: Path) -> list[str]:
    """Every file under ``path`` (relative), to show that nothing was written."""
    if not path.exists():
        return []
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


@pytest.fixture(scope="module")
def hlc_slice(tmp_path_factory, gemma_example_dir) -> Path:
    """The first 300 SNPs of GEMMA's HLC PLINK files (427 humans), uncompressed."""
    folder = tmp_path_factory.mktemp("hlc")
    with gzip.open(os.path.join(gemma_example_dir, "HLC.bed.gz"), "rb") as handle:
        bed = handle.read(3 + N_SNPS * ((427 + 3) // 4))
    (folder / "hlc.bed").write_bytes(bed)
    with gzip.open(os.path.join(gemma_example_dir, "HLC.bim.gz"), "rt") as handle:
        (folder / "hlc.bim").write_text("".join(next(handle) for _ in range(N_SNPS)))
    with gzip.open(os.path.join(gemma_example_dir, "HLC.fam.gz"), "rt") as handle:
        (folder / "hlc.fam").write_text(handle.read())
    return folder / "hlc"


def _copy_bfile(prefix: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for ext in ("bed", "bim", "fam"):
        shutil.copy(f"{prefix}.{ext}", folder / f"hlc.{ext}")
    return folder / "hlc"


def test_the_hlc_slice_imports(hlc_slice, tmp_path, run_cli):
    result = run_cli("import", "plink", "--bfile", str(hlc_slice), "--out", str(tmp_path / "ds"))
    assert result.code == 0, result.stderr
    assert Dataset.open(str(tmp_path / "ds")).n_samples == 427


def test_a_fam_one_row_short_is_caught_by_the_bed_padding_bits(hlc_slice, tmp_path, run_cli):
    prefix = _copy_bfile(hlc_slice, tmp_path / "in")
    fam = Path(f"{prefix}.fam")
    fam.write_text("".join(fam.read_text().splitlines(keepends=True)[:-1]))  # 426 of 427
    out = tmp_path / "out"
    result = run_cli("import", "plink", "--bfile", str(prefix), "--out", str(out))
    line = _rejected(result, "hlc.bed", "padding bits are set in", f"of {N_SNPS} SNPs", "426 rows", "hlc.fam")
    assert int(line.split("set in ")[1].split()[0]) > N_SNPS // 2  # the signal is strong
    assert _tree(out) == []


def test_a_bed_of_the_wrong_size_names_the_bed(hlc_slice, tmp_path, run_cli):
    prefix = _copy_bfile(hlc_slice, tmp_path / "in")
    bim = Path(f"{prefix}.bim")
    bim.write_text("".join(bim.read_text().splitlines(keepends=True)[:-1]))
    out = tmp_path / "out"
    _rejected(run_cli("import", "plink", "--bfile", str(prefix), "--out", str(out)),
              "hlc.bed", "too long", f"{N_SNPS - 1} SNPs")
    assert _tree(out) == []


# --- run: the whole request is checked before anything is written --------------------------------------
@pytest.fixture(scope="module")
def demo(tmp_path_factory, run_cli) -> str:
    url = str(tmp_path_factory.mktemp("demo") / "dataset")
    result = run_cli("datasets", "get", "demo", "--out", url)
    assert result.code == 0, result.stderr
    return url


RUN_CASES = [
    (["--traits", "nosuch"], None, ["command line, column 'traits'", "'nosuch' is not a sample column"]),
    (["--covariates", "nosuch"], None, ["column 'covariates'", "'nosuch' is not a sample column"]),
    (["--model", "nosuchmodel"], None, ["column 'model'", "unknown model 'nosuchmodel'", "mosaic"]),
    ([], "seed: abc", ["column 'seed'", "expected an integer, found 'abc'"]),
    ([], "batch_snps: lots", ["column 'batch_snps'", "expected an integer, found 'lots'"]),
    ([], "holdout_fraction: 5", ["column 'holdout_fraction'", "less than 1", "found 5"]),
    ([], "qc: 7", ["column 'qc'", "expected a mapping", "found 7"]),
    ([], "qc: {maf: lots}", ["column 'qc'", "QC option 'maf': expected a number"]),
    ([], "model_options: {nosuch: 1}", ["column 'model_options.nosuch'", "unknown option 'nosuch'"]),
    ([], "traits: nosuch", ["column 'traits'", "'nosuch' is not a sample column"]),
    ([], "gwas_model: lmmm", ["column 'gwas_model'", "'lmmm'"]),
    ([], "nosuchkey: 1", ["unknown config key 'nosuchkey'"]),
]


@pytest.mark.parametrize(("args", "config_text", "fragments"), RUN_CASES,
                         ids=["trait", "covariate", "model", "seed", "batch_snps", "holdout_fraction", "qc",
                              "qc-key-type", "model-option", "traits-as-string", "gwas-model", "unknown-key"])
def test_a_bad_run_request_writes_nothing(demo, tmp_path, run_cli, args, config_text, fragments):
    out = tmp_path / "run"
    extra = ["--config-text", config_text] if config_text else []
    result = run_cli("run", demo, "--out", str(out), *args, *extra, "--init-only")
    _rejected(result, *fragments)
    assert _tree(out) == []


def test_a_config_file_error_names_the_file(demo, tmp_path, run_cli):
    config = tmp_path / "settings.yaml"
    config.write_text("seed: abc\n")
    out = tmp_path / "run"
    _rejected(run_cli("run", demo, "--out", str(out), "--config", str(config)),
              "settings.yaml, column 'seed'", "expected an integer")
    assert _tree(out) == []


def test_a_corrected_rerun_after_a_refused_one_is_accepted(demo, tmp_path, run_cli):
    out = tmp_path / "run"
    _rejected(run_cli("run", demo, "--out", str(out), "--traits", "nosuch", "--init-only"))
    traits = Dataset.open(demo).traits[:1]
    result = run_cli("run", demo, "--out", str(out), "--traits", traits[0], "--init-only")
    assert result.code == 0, result.stderr
    assert "run configured" in result.stdout
    # A trait given as one string in a config file is one name, not its letters.
    out2 = tmp_path / "run2"
    result = run_cli("run", demo, "--out", str(out2), "--config-text", f"traits: {traits[0]}",
                            "--init-only")
    assert result.code == 0, result.stderr


@pytest.mark.parametrize("where", ["under-a-file", "is-a-file"])
def test_out_under_a_regular_file_fails_at_once(demo, tmp_path, run_cli, where):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    out = blocker / "run" if where == "under-a-file" else blocker
    result = run_cli("run", demo, "--out", str(out), "--init-only")
    _rejected(result, str(out), "file")
    assert blocker.read_text() == "x"
    assert "Traceback" not in result.stderr


def test_an_import_under_a_regular_file_fails_at_once(hlc_slice, tmp_path, run_cli):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    _rejected(run_cli("import", "plink", "--bfile", str(hlc_slice), "--out", str(blocker / "ds")),
              "which is a file, not a folder")


def test_a_run_into_its_own_dataset_or_into_another_dataset_is_refused(demo, tmp_path, run_cli):
    before = _tree(Path(demo))
    _rejected(run_cli("run", demo, "--out", demo, "--init-only"), "--out is the input dataset")
    _rejected(run_cli("run", demo, "--out", str(Path(demo) / "run"), "--init-only"),
              "--out is the input dataset")
    other = tmp_path / "other"
    shutil.copytree(demo, other)
    _rejected(run_cli("run", demo, "--out", str(other), "--init-only"), "is a genosynth dataset")
    assert _tree(Path(demo)) == before


def test_an_import_onto_a_dataset_needs_force_and_then_replaces_it_whole(hlc_slice, demo, tmp_path,
                                                                         run_cli):
    out = tmp_path / "ds"
    shutil.copytree(demo, out)
    before = {p: (out / p).read_bytes() for p in _tree(out) if (out / p).is_file()}
    _rejected(run_cli("import", "plink", "--bfile", str(hlc_slice), "--out", str(out)),
              "a dataset already exists here", "--force")
    assert {p: (out / p).read_bytes() for p in _tree(out) if (out / p).is_file()} == before
    result = run_cli("import", "plink", "--bfile", str(hlc_slice), "--out", str(out), "--force")
    assert result.code == 0, result.stderr
    replaced = Dataset.open(str(out))
    assert replaced.n_samples == 427 and replaced.n_variants == N_SNPS
    # The demo's genotype chunks are gone: only the new dataset's own remain.
    assert sorted(os.listdir(out / "genotypes")) == sorted(
        k.split("/")[1] for k in replaced.descriptor["checksums"] if k.startswith("genotypes/"))


def test_an_import_into_a_run_folder_is_refused_even_with_force(hlc_slice, demo, tmp_path, run_cli):
    run = tmp_path / "run"
    assert run_cli("run", demo, "--out", str(run), "--init-only").code == 0
    before = _tree(run)
    for force in ([], ["--force"]):
        _rejected(run_cli("import", "plink", "--bfile", str(hlc_slice), "--out", str(run), *force),
                  "is a genosynth run")
    assert _tree(run) == before


# --- text formats: ASCII numbers only, printable IDs --------------------------------------------------
CFW_MAP = "id chr pos ref alt quality\nrs1 1 10 A G 1\nrs2 1 20 A G 1\n"


@pytest.mark.parametrize(
    ("geno", "fragments"),
    [
        ("id discard rs1 rs2\nm1 no 1 \uff12\n", ["geno.txt, row 2, column 'rs2'", "ASCII digits", "'２'"]),
        ("id discard rs1 rs2\nm1 no 1 \u0661\n", ["geno.txt, row 2, column 'rs2'", "ASCII digits", "'١'"]),
        ("id discard rs1 r\u200bs2\nm1 no 1 2\n",
         ["geno.txt, row 1", "SNP ID", "U+200B", "ZERO WIDTH SPACE"]),
    ],
    ids=["fullwidth-digit", "arabic-indic-digit", "zero-width-space-in-snp-id"],
)
def test_cfw_text_is_ascii_numbers_and_printable_ids(tmp_path, run_cli, geno, fragments):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "map.txt").write_text(CFW_MAP)
    (folder / "pheno.csv").write_text("id,bmd\nm1,1\n")
    (folder / "geno.txt").write_text(geno, encoding="utf-8")
    out = tmp_path / "out"
    result = run_cli("import", "cfw", "--geno", str(folder / "geno.txt"), "--map", str(folder / "map.txt"),
                     "--pheno", str(folder / "pheno.csv"), "--out", str(out))
    _rejected(result, *fragments)
    assert _tree(out) == []


def test_bim_snp_id_with_a_zero_width_space_is_refused(hlc_slice, tmp_path, run_cli):
    prefix = _copy_bfile(hlc_slice, tmp_path / "in")
    bim = Path(f"{prefix}.bim")
    rows = bim.read_text().splitlines(keepends=True)
    fields = rows[4].split("\t")
    fields[1] = fields[1][:2] + "\u200b" + fields[1][2:]
    rows[4] = "\t".join(fields)
    bim.write_text("".join(rows), encoding="utf-8")
    out = tmp_path / "out"
    _rejected(run_cli("import", "plink", "--bfile", str(prefix), "--out", str(out)),
              "hlc.bim, row 5", "U+200B")
    assert _tree(out) == []


def test_every_documented_mosaic_option_is_accepted(demo, tmp_path, run_cli):
    options = ("{pedigree_generations: 3, pedigree_clans: 4, pedigree_founders: 12, donor_pools: 0, "
               "pool_fraction: 0.125, max_membership_auc: 0.52, max_ld_loss: 0.05}")
    out = tmp_path / "run"
    result = run_cli("run", demo, "--out", str(out), "--config-text", f"model_options: {options}",
                     "--init-only")
    assert result.code == 0, result.stderr
    assert (out / "config.json").exists()
