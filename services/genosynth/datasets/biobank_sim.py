"""``biobank-sim``: a human cohort shaped like a biobank array study, simulated chromosome by chromosome.

``genosynth datasets get biobank-sim --samples N --snps M --out URL [--seed S] [--plink PREFIX]``

- Ancestry: msprime, the European history of Tennessen et al. (2012): ancestral size 7,310, growth to
  14,474 at 5,920 generations ago, the out-of-Africa bottleneck (1,861 from 2,040 generations), then
  1,032 at 920 generations growing 0.307% a generation to 9,279 at 205 generations and 1.95% a
  generation since (about 512,000 today). Human-like LD and a rare-variant excess.
- Genome: the 22 GRCh38 autosomes, lengths scaled together so the SNP density is that of a UK Biobank
  array (800,000 SNPs over 2.88 Gb: one SNP per 3.6 kb); ``M`` SNPs with minor allele frequency >= 1%
  ascertained from the simulated sites.
- Recombination: a HapMap-like map, piecewise constant over 20 kb windows with gamma-distributed rates
  (shape 0.25: most crossovers in a few hot windows) of mean 1.2 cM/Mb; the ``.bim`` carries the cM
  positions of that map (what BOLT-LMM needs as its genetic map).
- PLINK (``--plink PREFIX``): ``.bed/.bim/.fam`` and ``PREFIX.pheno`` holding the traits and the
  covariates (PLINK 2's ``--pheno`` and ``--covar`` both read it); ``import plink --bfile PREFIX --pheno
  PREFIX.pheno`` gives back the dataset's genotypes and columns.
- Traits: ``quant`` (polygenic, h2 0.4 over 1% causal SNPs, plus 5 planted loci of 2% variance each;
  shifted by age and sex), ``disease`` (binary, liability threshold at prevalence 0.1, liability h2 0.3
  polygenic plus 5 planted loci of 2% liability variance each), and two null traits for calibration,
  ``null_quant`` and ``null_binary`` (prevalence 0.1), with no genetic effect. Covariates ``sex``
  (binary) and ``age`` (years). The planted loci are in the provenance (``planted``).

Memory is one chromosome's genotypes (``n x M / 22``) plus ``n``-vectors: the dataset (and the PLINK
files) are written chromosome by chromosome.
"""

from __future__ import annotations

import contextlib
from typing import Any

import msprime
import numpy as np
import pandas as pd

from genosynth import storage
from genosynth.datasets.simulate import scaled_to_variance
from genosynth.formats.bed import BedWriter
from genosynth.formats.dataset import Dataset, DatasetWriter
from genosynth.genetics.dosages import standardise

# GRCh38 autosome lengths in bp.
HUMAN_AUTOSOMES = {
    "1": 248_956_422, "2": 242_193_529, "3": 198_295_559, "4": 190_214_555, "5": 181_538_259,
    "6": 170_805_979, "7": 159_345_973, "8": 145_138_636, "9": 138_394_717, "10": 133_797_422,
    "11": 135_086_622, "12": 133_275_309, "13": 114_364_328, "14": 107_043_718, "15": 101_991_189,
    "16": 90_338_345, "17": 83_257_441, "18": 80_373_285, "19": 58_617_616, "20": 64_444_167,
    "21": 46_709_983, "22": 50_818_468,
}
GENOME_BP = sum(HUMAN_AUTOSOMES.values())
BP_PER_SNP = GENOME_BP / 800_000  # UK Biobank array density
MEAN_RECOMBINATION_RATE = 1.2e-8  # 1.2 cM/Mb, HapMap's genome-wide average
RATE_WINDOW_BP = 20_000
RATE_GAMMA_SHAPE = 0.25
MUTATION_RATE = 1.25e-8
MIN_MAF = 0.01
N_LOCI = 5
LOCUS_VARIANCE = 0.02
QUANT_H2, DISEASE_H2, CAUSAL_FRACTION, PREVALENCE = 0.4, 0.3, 0.01, 0.1
TRAITS = ["quant", "disease", "null_quant", "null_binary"]
COVARIATES = ["sex", "age"]


def tennessen_europe() -> msprime.Demography:
    """One-population European history of Tennessen et al. (2012), sizes in diploids, time in generations."""
    demography = msprime.Demography()
    demography.add_population(name="EUR", initial_size=512_000, growth_rate=0.0195)
    demography.add_population_parameters_change(205, initial_size=9_279, growth_rate=0.00307)
    demography.add_population_parameters_change(920, initial_size=1_861, growth_rate=0.0)
    demography.add_population_parameters_change(2_040, initial_size=14_474)
    demography.add_population_parameters_change(5_920, initial_size=7_310)
    return demography


def recombination_map(length: int, rng: np.random.Generator) -> msprime.RateMap:
    """HapMap-like map: gamma rates (shape 0.25) over 20 kb windows, mean 1.2e-8 per bp per generation."""
    edges = np.unique(np.r_[np.arange(0, length, RATE_WINDOW_BP), length]).astype(np.float64)
    rates = rng.gamma(RATE_GAMMA_SHAPE, MEAN_RECOMBINATION_RATE / RATE_GAMMA_SHAPE, size=len(edges) - 1)
    return msprime.RateMap(position=edges, rate=rates)


def chromosome_lengths(n_snps: int) -> dict[str, int]:
    """Autosome lengths scaled so ``n_snps`` SNPs sit at array density (1 Mb at least each)."""
    scale = n_snps * BP_PER_SNP / GENOME_BP
    return {c: max(1_000_000, int(length * scale)) for c, length in HUMAN_AUTOSOMES.items()}


def snps_per_chromosome(n_snps: int, lengths: dict[str, int]) -> dict[str, int]:
    """SNPs per chromosome, proportional to length, summing to ``n_snps``."""
    raw = n_snps * np.array(list(lengths.values()), dtype=np.float64) / sum(lengths.values())
    counts = np.floor(raw).astype(int)
    counts[np.argsort(raw - counts)[::-1][: n_snps - counts.sum()]] += 1
    return dict(zip(lengths, counts.tolist(), strict=True))


def simulate_human_chromosome(n: int, length: int, n_snps: int, seed: int) -> dict[str, np.ndarray]:
    """``n_snps`` SNPs (MAF >= 1%) of one chromosome of ``n`` diploid people.

    Returns
    -------
    dict with ``positions`` (m,) int64 bp, ``cm`` (m,) float64, ``calls`` (m, n) int8 derived-allele counts
    """
    rng = np.random.default_rng(seed)
    rate_map = recombination_map(length, rng)
    ts = msprime.sim_ancestry(samples=n, demography=tennessen_europe(), recombination_rate=rate_map,
                              sequence_length=length, random_seed=int(rng.integers(1, 2**31 - 1)))
    rate = MUTATION_RATE
    for _ in range(6):
        mutated = msprime.sim_mutations(ts, rate=rate, random_seed=int(rng.integers(1, 2**31 - 1)),
                                        model=msprime.BinaryMutationModel())
        site_ids, counts = [], []
        for tree in mutated.trees():
            for site in tree.sites():
                if len(site.mutations) == 1:
                    site_ids.append(site.id)
                    counts.append(tree.num_samples(site.mutations[0].node))
        freq = np.asarray(counts, dtype=np.float64) / (2 * n)
        common = np.asarray(site_ids, dtype=np.int64)[np.minimum(freq, 1 - freq) >= MIN_MAF]
        if len(common) >= n_snps:
            break
        rate *= 2.0 * n_snps / max(len(common), 1)  # short of SNPs: more mutations (array ascertainment)
    else:
        raise RuntimeError(f"simulated only {len(common)} SNPs with MAF >= {MIN_MAF}, {n_snps} needed")
    keep = np.sort(rng.choice(common, size=n_snps, replace=False))
    positions = mutated.tables.sites.position[keep]
    # 1-based bp; msprime's discrete genome already gives one site per position, kept strictly increasing.
    steps = np.arange(len(positions))
    bp = np.maximum.accumulate(positions.astype(np.int64) + 1 - steps) + steps
    drop = np.setdiff1d(np.arange(mutated.num_sites), keep)
    haplotypes = mutated.delete_sites(drop).genotype_matrix()  # (m, 2n)
    calls = (haplotypes[:, 0::2] + haplotypes[:, 1::2]).astype(np.int8)
    cm = rate_map.get_cumulative_mass(positions) * 100.0
    return {"positions": bp, "cm": cm, "calls": calls}


def make_biobank_sim(out_url: str, *, n_samples: int = 10_000, n_snps: int = 50_000, seed: int = 0,
                     plink: str | None = None) -> Dataset:
    """Simulate the cohort into the dataset ``out_url`` (and ``PLINK.{bed,bim,fam,pheno}`` when given).

    Identical output for identical arguments.

    >>> make_biobank_sim("data/bb", n_samples=2_000, n_snps=20_000, plink="data/bb")  # doctest: +SKIP
    """
    if n_samples < 50 or n_snps < 22 * 20:
        raise ValueError("biobank-sim needs at least 50 samples and 440 SNPs (20 per chromosome)")
    rng = np.random.default_rng([seed, 14])
    lengths = chromosome_lengths(n_snps)
    counts = snps_per_chromosome(n_snps, lengths)
    chrom_seeds = dict(zip(lengths, rng.integers(1, 2**31 - 1, size=len(lengths)).tolist(), strict=True))
    chromosomes = list(lengths)
    locus_chromosomes = {"quant": chromosomes[0:10:2], "disease": chromosomes[1:10:2]}
    polygenic = np.zeros((n_samples, 2))  # quant, disease liability
    loci: dict[str, list[np.ndarray]] = {"quant": [], "disease": []}
    planted: list[dict[str, Any]] = []
    variant_frames = []
    with storage.staged_output(out_url):
        writer = DatasetWriter(out_url, n_samples=n_samples)
        with contextlib.ExitStack() as stack:
            bed = stack.enter_context(BedWriter(f"{plink}.bed", n_samples)) if plink else None
            for chrom in chromosomes:
                sim = simulate_human_chromosome(n_samples, lengths[chrom], counts[chrom], chrom_seeds[chrom])
                chrom_rng = np.random.default_rng([seed, 14, int(chrom)])
                calls = sim["calls"]
                ids = [f"bb{chrom}_{p}" for p in sim["positions"]]
                dosages = calls.T.astype(np.float32)
                causal = chrom_rng.random((calls.shape[0], 2)) < CAUSAL_FRACTION
                effects = np.where(causal, chrom_rng.normal(size=causal.shape), 0.0)
                polygenic += standardise(dosages)[0] @ effects
                freq = calls.mean(axis=1) / 2
                for trait, where in locus_chromosomes.items():
                    if chrom in where:
                        candidates = np.flatnonzero(np.minimum(freq, 1 - freq) >= 0.1)
                        middle = candidates[len(candidates) // 5 : 4 * len(candidates) // 5]
                        snp = int(chrom_rng.choice(middle if len(middle) else np.arange(len(freq))))
                        loci[trait].append(dosages[:, snp].astype(np.float64))
                        planted.append({"trait": trait, "chr": chrom, "snp": ids[snp],
                                        "pos": int(sim["positions"][snp]), "alt_frequency": float(freq[snp]),
                                        "variance_explained": LOCUS_VARIANCE})
                writer.add(dosages)
                if bed is not None:
                    bed.add(calls)
                variant_frames.append(pd.DataFrame({
                    "id": ids, "chr": chrom, "pos": sim["positions"], "ref": "A", "alt": "G",
                    "quality": 1.0, "cm": sim["cm"],
                }))
        samples, planted = _phenotypes(n_samples, polygenic, loci, planted, rng)
        variants = pd.concat(variant_frames, ignore_index=True)
        kinds = {"quant": "numeric", "disease": "binary", "null_quant": "numeric", "null_binary": "binary",
                 "sex": "binary", "age": "numeric"}
        dataset = writer.commit(
            samples, variants, traits=TRAITS, covariates=COVARIATES, column_kinds=kinds,
            provenance={
                "dataset": "biobank-sim", "seed": seed,
                "simulation": {
                    "tool": "msprime", "demography": "Tennessen et al. 2012, European", "samples": n_samples,
                    "snps": n_snps, "min_maf": MIN_MAF, "bp_per_snp": BP_PER_SNP,
                    "genome_bp": int(sum(lengths.values())), "recombination": {
                        "mean_rate": MEAN_RECOMBINATION_RATE, "window_bp": RATE_WINDOW_BP,
                        "gamma_shape": RATE_GAMMA_SHAPE},
                    "quant_h2": QUANT_H2, "disease_liability_h2": DISEASE_H2,
                    "causal_fraction": CAUSAL_FRACTION,
                    "prevalence": PREVALENCE},
                "planted": planted,
            },
        )
    if plink:
        from genosynth.formats.plink import write_plink_tables

        write_plink_tables(plink, dataset.samples, TRAITS, variants, COVARIATES)
    return dataset


def _phenotypes(n: int, polygenic: np.ndarray, loci: dict[str, list[np.ndarray]], planted: list[dict],
                rng: np.random.Generator) -> tuple[pd.DataFrame, list[dict]]:
    """The samples table and the planted loci with their per-allele effects."""
    sex = (rng.random(n) < 0.5).astype(np.int64)
    age = np.round(rng.uniform(40, 70, size=n), 1)
    covariate_shift = 0.3 * sex + 0.02 * (age - 55)
    values: dict[str, np.ndarray] = {}
    by_trait = {trait: [p for p in planted if p["trait"] == trait] for trait in loci}
    for column, trait, h2 in ((0, "quant", QUANT_H2), (1, "disease", DISEASE_H2)):
        genetic = scaled_to_variance(polygenic[:, column], h2)
        for g, record in zip(loci[trait], by_trait[trait], strict=True):
            beta = float(rng.choice([-1.0, 1.0]) * np.sqrt(LOCUS_VARIANCE / g.var()))
            genetic = genetic + beta * (g - g.mean())
            record["beta_sd_units"] = beta
        residual = np.sqrt(max(0.05, 1.0 - h2 - LOCUS_VARIANCE * len(loci[trait])))
        values[trait] = genetic + residual * rng.normal(size=n) + covariate_shift
    liability = values["disease"]
    values["disease"] = (liability > np.quantile(liability, 1 - PREVALENCE)).astype(np.int64)
    values["null_quant"] = rng.normal(size=n) + covariate_shift
    values["null_binary"] = (rng.random(n) < PREVALENCE).astype(np.int64)
    samples = pd.DataFrame({"id": [f"bb{i + 1:07d}" for i in range(n)], **values, "sex": sex, "age": age})
    return samples, planted
