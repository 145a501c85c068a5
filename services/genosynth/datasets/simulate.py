"""Genotypes and phenotypes of simulated cohorts (msprime ancestry + planted genetic architecture).

The colony model is a recent small Wright-Fisher population (so some individuals are relatives and LD
is long, as in outbred laboratory colonies) on top of a standard coalescent past. Every random draw
comes from an explicit seed, so a cohort is identical for identical arguments.
"""

from __future__ import annotations

from dataclasses import dataclass

import msprime
import numpy as np


@dataclass
class ChromosomeGenotypes:
    """Diploid genotypes of one simulated chromosome.

    Attributes
    ----------
    positions : (m,) int64 base-pair positions (1-based, strictly increasing).
    ref, alt : (m,) str; ancestral and derived allele.
    snp_major : (m, n) int8 count of ``alt`` per individual.
    """

    positions: np.ndarray
    ref: np.ndarray
    alt: np.ndarray
    snp_major: np.ndarray


def simulate_chromosome(
    n_individuals: int,
    *,
    length: float,
    seed: int,
    n_snps: int,
    colony_size: int = 1000,
    colony_generations: int = 10,
    ancestral_size: int = 2000,
    recombination_rate: float = 1e-8,
    rare_fraction: float = 0.03,
    min_common_maf: float = 0.05,
) -> ChromosomeGenotypes:
    """Simulate one chromosome and keep ``n_snps`` biallelic SNPs.

    About ``1 - rare_fraction`` of the kept SNPs have minor allele frequency >= ``min_common_maf``
    (array-like ascertainment); the rest are rare (below 1%) so QC has something to remove.

    Parameters
    ----------
    n_individuals : number of diploid individuals n.
    length : chromosome length in bp.
    colony_size, colony_generations : the recent Wright-Fisher colony (diploid size, generations).
    ancestral_size : effective size of the coalescent before the colony.
    """
    rng = np.random.default_rng(seed)
    ancestry_seed, mutation_seed = (int(x) for x in rng.integers(1, 2**31 - 1, size=2))
    demography = msprime.Demography()
    demography.add_population(name="colony", initial_size=colony_size)
    demography.add_population_parameters_change(colony_generations, initial_size=ancestral_size)
    ts = msprime.sim_ancestry(
        samples={"colony": n_individuals},
        demography=demography,
        sequence_length=length,
        recombination_rate=recombination_rate,
        model=[msprime.DiscreteTimeWrightFisher(duration=colony_generations), msprime.StandardCoalescent()],
        random_seed=ancestry_seed,
    )
    # Aim for about three times as many segregating sites as needed, then ascertain.
    expected_per_rate = ts.segregating_sites(mode="branch") * length
    rate = 3.0 * n_snps / max(expected_per_rate, 1e-12)
    ts = msprime.sim_mutations(ts, rate=rate, random_seed=mutation_seed, model=msprime.BinaryMutationModel())
    haplotypes = ts.genotype_matrix()  # (sites, 2n) int8 derived-allele indicators
    positions = ts.tables.sites.position.astype(np.int64)
    biallelic = np.bincount(ts.tables.mutations.site, minlength=ts.num_sites) == 1
    freq = haplotypes.mean(axis=1, dtype=np.float64)
    maf = np.minimum(freq, 1 - freq)
    # One SNP per bp position, as genotyping arrays report them.
    unique_pos = np.r_[True, positions[1:] != positions[:-1]] & np.r_[positions[:-1] != positions[1:], True]
    usable = biallelic & unique_pos & (positions > 0)
    common = np.flatnonzero(usable & (maf >= min_common_maf))
    rare = np.flatnonzero(usable & (maf > 0) & (maf < 0.01))
    n_rare = min(len(rare), round(rare_fraction * n_snps))
    n_common = n_snps - n_rare
    if len(common) < n_common:
        raise RuntimeError(f"simulated only {len(common)} common SNPs, {n_common} needed; raise the rate")
    keep = np.sort(np.concatenate([
        rng.choice(common, size=n_common, replace=False),
        rng.choice(rare, size=n_rare, replace=False),
    ]))
    kept = haplotypes[keep]
    snp_major = (kept[:, 0::2] + kept[:, 1::2]).astype(np.int8)
    bases = np.array(["A", "C", "G", "T"])
    ref_code = rng.integers(0, 4, size=len(keep))
    alt_code = (ref_code + rng.integers(1, 4, size=len(keep))) % 4
    return ChromosomeGenotypes(
        positions=positions[keep], ref=bases[ref_code], alt=bases[alt_code], snp_major=snp_major,
    )


def scaled_to_variance(values: np.ndarray, variance: float) -> np.ndarray:
    """``values`` (n,) or (n, t) centred and rescaled so each column has the given variance."""
    centred = values - values.mean(axis=0)
    sd = centred.std(axis=0)
    return centred / np.where(sd > 0, sd, np.inf) * np.sqrt(variance)
