"""A small real cohort for the GEMMA comparisons, and GEMMA itself run on it.

``hs_subset``: the first 800 mice of mouse_hs1940 and the SNPs of chromosomes 1-3 (about 2,850, with the
SNPs that have no bp position), written as a BIMBAM trio plus a GEMMA covariate file, and imported with
our BIMBAM importer. ``gemma`` runs the real GEMMA 0.98.5 on those files and caches its outputs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pytest

N_MICE = 800
CHROMOSOMES = ("1", "2", "3")
COVARIATES = ("trait4", "trait6")  # phenotype columns 4 (binary) and 6 (continuous) used as covariates


@dataclass
class Subset:
    folder: str
    geno: str
    pheno: str
    anno: str
    covariates: str
    dataset_url: str


@pytest.fixture(scope="session")
def hs_subset(tmp_path_factory, write_hs1940_subset) -> Subset:
    from genosynth.formats.bimbam import import_bimbam

    folder = tmp_path_factory.mktemp("hs_subset")
    rows = write_hs1940_subset(folder, CHROMOSOMES, N_MICE)
    with open(folder / "hs.cov.txt", "w") as dst:
        dst.writelines("\t".join(["1", row[3], row[5]]) + "\n" for row in rows)
    url = str(folder / "dataset")
    import_bimbam(str(folder / "hs.geno.txt"), str(folder / "hs.pheno.txt"), str(folder / "hs.anno.txt"), url)
    return Subset(folder=str(folder), geno="hs.geno.txt", pheno="hs.pheno.txt", anno="hs.anno.txt",
                  covariates="hs.cov.txt", dataset_url=url)


@dataclass
class Gemma:
    """Runs GEMMA in the subset's folder; results are cached by arguments."""

    subset: Subset
    cache: dict[tuple, tuple[pd.DataFrame, str]] = field(default_factory=dict)

    def _run(self, *args: str) -> None:
        env = {**os.environ, "OPENBLAS_NUM_THREADS": "2"}
        subprocess.run(["gemma", *args], cwd=self.subset.folder, check=True, capture_output=True, env=env)

    def _base(self, column: int, covariates: bool) -> list[str]:
        args = ["-g", self.subset.geno, "-p", self.subset.pheno, "-a", self.subset.anno, "-n", str(column)]
        return [*args, "-c", self.subset.covariates] if covariates else args

    def _read(self, name: str) -> tuple[pd.DataFrame, str]:
        out = os.path.join(self.subset.folder, "output")
        table = pd.read_csv(os.path.join(out, f"{name}.assoc.txt"), sep="\t")
        with open(os.path.join(out, f"{name}.log.txt")) as handle:
            return table, handle.read()

    def kinship(self, column: int, covariates: bool = False, loco: str | None = None) -> np.ndarray:
        name = f"kin_{column}_{int(covariates)}_{loco or 'all'}"
        path = os.path.join(self.subset.folder, "output", f"{name}.cXX.txt")
        if not os.path.exists(path):
            extra = ["-loco", loco] if loco else []
            self._run(*self._base(column, covariates), "-gk", "1", *extra, "-o", name)
        return np.loadtxt(path)

    def lm(self, column: int, covariates: bool = False) -> tuple[pd.DataFrame, str]:
        key = ("lm", column, covariates)
        if key not in self.cache:
            name = f"lm_{column}_{int(covariates)}"
            self._run(*self._base(column, covariates), "-lm", "1", "-o", name)
            self.cache[key] = self._read(name)
        return self.cache[key]

    def lmm(self, column: int, covariates: bool = False) -> tuple[pd.DataFrame, str]:
        key = ("lmm", column, covariates)
        if key not in self.cache:
            self.kinship(column, covariates)
            kin = f"output/kin_{column}_{int(covariates)}_all.cXX.txt"
            name = f"lmm_{column}_{int(covariates)}"
            self._run(*self._base(column, covariates), "-k", kin, "-lmm", "1", "-o", name)
            self.cache[key] = self._read(name)
        return self.cache[key]

    def loco(self, column: int, covariates: bool = False) -> tuple[pd.DataFrame, str]:
        """GEMMA -loco for every chromosome in turn, tables concatenated in chromosome order."""
        key = ("loco", column, covariates)
        if key not in self.cache:
            tables, logs = [], []
            for chrom in CHROMOSOMES:
                self.kinship(column, covariates, loco=chrom)
                kin = f"output/kin_{column}_{int(covariates)}_{chrom}.cXX.txt"
                name = f"loco_{column}_{int(covariates)}_{chrom}"
                self._run(*self._base(column, covariates), "-k", kin, "-lmm", "1", "-loco", chrom, "-o", name)
                table, log = self._read(name)
                tables.append(table)
                logs.append(log)
            self.cache[key] = (pd.concat(tables, ignore_index=True), "\n".join(logs))
        return self.cache[key]


@pytest.fixture(scope="session")
def gemma(hs_subset) -> Gemma:
    if shutil.which("gemma") is None:
        pytest.fail("GEMMA not installed: apt-get install gemma")
    return Gemma(hs_subset)
