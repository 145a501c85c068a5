"""``genosynth gwas``: outputs, log, plots, and bad input (exit 2, nothing written)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd

from genosynth.cli import main
from genosynth.gwas.output import read_table


def _cli(*args: str) -> int:
    try:
        main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def test_gwas_writes_tsv_log_and_plots(hs_subset, tmp_path, capsys):
    out = str(tmp_path / "res" / "hits.tsv")
    code = _cli("gwas", hs_subset.dataset_url, "--traits", "trait1,trait6", "--covariates", "trait4",
                "--model", "lmm", "--out", out, "--plot")
    assert code == 0
    table = read_table(out)
    assert {"trait", "snp", "chr", "pos", "af", "beta", "se", "p", "n", "l_remle"} <= set(table.columns)
    assert set(table["trait"]) == {"trait1", "trait6"}
    assert table["pos"].isna().any()  # SNPs without a bp position are kept, as GEMMA keeps them
    with open(out + ".log.json") as handle:
        log = json.load(handle)
    assert log["model"] == "lmm" and log["covariates"] == ["trait4"]
    assert log["traits"]["trait1"]["snps_analysed"] == int((table["trait"] == "trait1").sum())
    for trait in ("trait1", "trait6"):
        for kind in ("manhattan", "qq"):
            with open(tmp_path / "res" / f"hits.{trait}.{kind}.png", "rb") as handle:
                assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
    printed = capsys.readouterr().out
    assert "trait1:" in printed and "pve" in printed


def test_gwas_parquet_equals_tsv(hs_subset, tmp_path):
    for suffix in ("tsv", "parquet"):
        assert _cli("gwas", hs_subset.dataset_url, "--traits", "trait1", "--model", "lm",
                    "--out", str(tmp_path / f"lm.{suffix}")) == 0
    tsv, parquet = read_table(str(tmp_path / "lm.tsv")), read_table(str(tmp_path / "lm.parquet"))
    pd.testing.assert_frame_equal(tsv, parquet, check_exact=False, rtol=1e-9, check_dtype=False)


def test_unknown_trait_exits_2_with_one_line_and_writes_nothing(hs_subset, tmp_path):
    out = tmp_path / "out" / "x.tsv"
    proc = subprocess.run(
        [sys.executable, "-m", "genosynth", "gwas", hs_subset.dataset_url, "--traits", "trait1,no_such_trait",
         "--model", "lm", "--out", str(out)],
        capture_output=True, text=True,
    )
    assert proc.returncode == 2
    error_lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1
    assert "no_such_trait" in error_lines[0] and hs_subset.dataset_url in error_lines[0]
    assert not os.path.exists(tmp_path / "out")


def test_unknown_covariate_exits_2_and_writes_nothing(hs_subset, tmp_path, capsys):
    out = tmp_path / "out" / "x.parquet"
    code = _cli("gwas", hs_subset.dataset_url, "--traits", "trait1", "--covariates", "trait4,no_such_cov",
                "--out", str(out))
    assert code == 2
    assert "no_such_cov" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "out")


def test_bad_output_name_and_loco_with_lm_exit_2(hs_subset, tmp_path):
    assert _cli("gwas", hs_subset.dataset_url, "--traits", "trait1", "--out", str(tmp_path / "x.csv")) == 2
    assert _cli("gwas", hs_subset.dataset_url, "--traits", "trait1", "--model", "lm", "--loco",
                "--out", str(tmp_path / "x.tsv")) == 2
    assert os.listdir(tmp_path) == []
