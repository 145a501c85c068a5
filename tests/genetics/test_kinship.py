"""GEMMA's centred kinship and its LOCO parts against ``gemma -gk 1`` on a small BIMBAM file."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from genosynth.genetics.kinship import (
    centred_genotypes,
    centred_kinship,
    centred_kinship_blocked,
    chromosome_kinship_sums,
    double_centre,
    kinship_sum,
    loco_kinship,
)

N, M = 24, 60


@pytest.fixture(scope="module")
def dosages() -> np.ndarray:
    """(24, 60) dosages with fractional values and about 4% missing calls (at most one per SNP)."""
    rng = np.random.default_rng(13)
    x = rng.binomial(2, rng.uniform(0.1, 0.9, M), size=(N, M)).astype(np.float64)
    x[:, ::7] = np.round(np.clip(x[:, ::7] + rng.normal(0, 0.3, (N, len(range(0, M, 7)))), 0, 2), 3)
    x[rng.integers(0, N, M // 2), np.arange(0, M, 2)] = np.nan
    return x


def _gemma_kinship(gemma_bin: str, folder, dosages: np.ndarray, name: str) -> np.ndarray:
    """Run ``gemma -gk 1`` on ``dosages`` (written as BIMBAM) without SNP filters; its (n, n) matrix."""
    geno, pheno = folder / f"{name}.geno.txt", folder / f"{name}.pheno.txt"
    with open(geno, "w") as handle:
        for j in range(dosages.shape[1]):
            values = ", ".join("NA" if np.isnan(v) else f"{v:g}" for v in dosages[:, j])
            handle.write(f"rs{j}, A, G, {values}\n")
    pheno.write_text("".join(f"{i * 0.1:.1f}\n" for i in range(dosages.shape[0])))
    subprocess.run([gemma_bin, "-g", str(geno), "-p", str(pheno), "-gk", "1", "-miss", "1", "-maf", "0",
                    "-o", name, "-outdir", str(folder)], check=True, capture_output=True, cwd=folder)
    return np.loadtxt(folder / f"{name}.cXX.txt")


def test_centred_kinship_matches_gemma_gk_1(dosages, gemma_bin, tmp_path):
    reference = _gemma_kinship(gemma_bin, tmp_path, dosages, "all")
    np.testing.assert_allclose(centred_kinship(dosages), reference, rtol=0, atol=2e-9)  # GEMMA: 10 digits


def test_loco_kinship_from_one_pass_matches_gemma_on_the_other_chromosomes(dosages, gemma_bin, tmp_path):
    chromosome = np.repeat([0, 1, 2], M // 3)
    sums = chromosome_kinship_sums(centred_genotypes(dosages), chromosome)
    assert list(sums) == [0, 1, 2]
    total = kinship_sum(dosages)
    np.testing.assert_allclose(sum(sums.values()), total, rtol=1e-12, atol=1e-12)
    reference = _gemma_kinship(gemma_bin, tmp_path, dosages[:, chromosome != 1], "loco1")
    ours = loco_kinship(total, M, sums[1], int((chromosome == 1).sum()))
    np.testing.assert_allclose(ours, reference, rtol=0, atol=2e-9)


def test_a_block_holds_only_the_chromosomes_present(dosages):
    sums = chromosome_kinship_sums(centred_genotypes(dosages[:, :5]), np.array([3, 3, 7, 7, 7]))
    assert list(sums) == [3, 7]
    np.testing.assert_allclose(sums[7], kinship_sum(dosages[:, 2:5]), rtol=1e-12)


def test_leaving_out_every_snp_is_an_error(dosages):
    with pytest.raises(ValueError, match="no SNP"):
        loco_kinship(kinship_sum(dosages), M, kinship_sum(dosages), M)
    with pytest.raises(ValueError, match="at least one SNP"):
        centred_kinship(dosages[:, :0])


def test_blocked_kinship_of_centred_float32_genotypes_equals_the_one_product(dosages):
    centred = centred_genotypes(dosages)
    np.testing.assert_allclose(centred_kinship_blocked(centred.astype(np.float32), block=7),
                               centred_kinship(dosages), rtol=0, atol=1e-6)


def test_two_opposite_homozygotes_are_perfectly_anti_related():
    np.testing.assert_array_equal(centred_kinship(np.array([[0.0, 2.0], [2.0, 0.0]])),
                                  [[1.0, -1.0], [-1.0, 1.0]])


def test_double_centring_zeroes_row_and_column_sums():
    k = np.array([[2.0, 1.0, 0.0], [1.0, 3.0, 1.0], [0.0, 1.0, 1.0]])
    centred = double_centre(k)
    np.testing.assert_allclose(centred.sum(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(centred.sum(axis=1), 0.0, atol=1e-12)
    j = np.eye(3) - np.ones((3, 3)) / 3
    np.testing.assert_allclose(centred, j @ k @ j, atol=1e-12)
