"""The CFW export read the way the reference study's R code reads the Dryad files (R + data.table)."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from genosynth.formats.cfw import export_cfw, import_cfw
from genosynth.formats.dataset import Dataset, write_dataset

R_SCRIPT = r"""
suppressMessages(library(data.table))
args <- commandArgs(trailingOnly = TRUE)
geno  <- fread(file.path(args[1], "geno.txt"), sep = " ", header = TRUE, data.table = FALSE)
map   <- fread(file.path(args[1], "map.txt"), sep = " ", header = TRUE, data.table = FALSE)
pheno <- read.csv(file.path(args[1], "pheno.csv"), stringsAsFactors = FALSE, check.names = FALSE)
pheno <- subset(pheno, discard == "no")
geno  <- subset(geno, discard == "no")
dosages <- as.matrix(geno[, -(1:2)])
if (!("maf" %in% names(map))) {
  af <- colMeans(dosages, na.rm = TRUE) / 2
  map$maf <- pmin(af, 1 - af)[match(map$id, colnames(dosages))]
}
markers <- subset(map, quality > 0.95 & maf > 0.02)
cat(nrow(pheno), nrow(geno), nrow(markers), all(geno$id == pheno$id), "\n")
"""


def test_export_reads_in_r_like_the_study_and_imports_back(tmp_path):
    if shutil.which("Rscript") is None:
        pytest.skip("Rscript is not installed (Debian r-base-core)")
    rng = np.random.default_rng(5)
    n, m = 40, 30
    dosages = rng.integers(0, 3, size=(n, m)).astype(np.float32)
    dosages[:, 0] = 0  # monomorphic: maf 0, dropped by maf > 0.02
    dosages[3, 4] = 1.25  # an imputed dosage survives exactly
    import pandas as pd

    discard = np.zeros(n, dtype=int)
    discard[[2, 9, 17]] = 1
    samples = pd.DataFrame({"id": [f"m{i}" for i in range(n)], "discard": discard,
                            "bmd": rng.normal(size=n)})
    quality = np.ones(m)
    quality[[5, 6]] = 0.5  # low imputation quality: dropped by quality > 0.95
    variants = pd.DataFrame({"id": [f"rs{j}" for j in range(m)], "chr": "1", "pos": np.arange(1, m + 1) * 100,
                             "ref": "A", "alt": "G", "quality": quality})
    source = write_dataset(str(tmp_path / "ds"), samples, variants, dosages, traits=["bmd"],
                           column_kinds={"discard": "binary"})
    paths = export_cfw(source, str(tmp_path / "cfw"))
    with open(paths["geno"], encoding="utf-8") as handle:
        geno_lines = handle.read().splitlines()
    assert geno_lines[0].split()[:2] == ["id", "discard"]
    assert {line.split()[1] for line in geno_lines[1:]} == {"no", "yes"}

    script = tmp_path / "read.R"
    script.write_text(R_SCRIPT)
    done = subprocess.run(["Rscript", str(script), str(tmp_path / "cfw")], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    kept_pheno, kept_geno, kept_markers, aligned = done.stdout.split()
    assert (int(kept_pheno), int(kept_geno)) == (n - 3, n - 3)
    assert int(kept_markers) == m - 3 and aligned == "TRUE"

    back: Dataset = import_cfw(paths["geno"], paths["map"], paths["pheno"], str(tmp_path / "back"))
    assert list(back.samples["discard"]) == list(discard)
    np.testing.assert_array_equal(back.dosages(), dosages)
