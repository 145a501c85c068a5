"""The demo cohort: a small simulated mouse colony with planted QTL, built in a few seconds.

400 individuals x 3,000 SNPs on chromosomes 1-3 (msprime: 10 generations of a colony of 1,000 after an
ancestral population of 2,000, so there is long LD and some relatedness). Four numeric traits with one
or two strong QTL each (found by an LMM at p < 1e-8) on top of a polygenic background; ``body_weight``
and ``tail_length`` share a QTL, polygenic background and environment (correlated traits); ``sex``
(binary covariate) shifts both; ``cage`` (categorical) shifts ``glucose``. About 3% of each trait and
0.2% of genotype calls are missing. A few rare SNPs are there for QC to drop. The planted loci are
recorded in the provenance (``planted``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from genosynth.datasets.simulate import scaled_to_variance, simulate_chromosome
from genosynth.formats.dataset import Dataset, write_dataset
from genosynth.genetics.dosages import standardise

N_INDIVIDUALS = 400
CHROMOSOMES = ("1", "2", "3")
SNPS_PER_CHROMOSOME = 1000
CHROMOSOME_LENGTH = 30_000_000
MISSING_CALL_RATE = 0.002
MISSING_PHENOTYPE_RATE = 0.03

# trait: (mean, sd) in the trait's units.
TRAIT_UNITS = {
    "body_weight": (30.0, 3.0),
    "bone_density": (0.055, 0.004),
    "glucose": (150.0, 25.0),
    "tail_length": (90.0, 5.0),
}
# (trait, chromosome, variance explained); one entry per planted QTL. The body_weight QTL on
# chromosome 2 also acts on tail_length (pleiotropy).
QTL_PLAN = (
    ("body_weight", "2", 0.12),
    ("body_weight", "1", 0.10),
    ("bone_density", "1", 0.15),
    ("bone_density", "3", 0.13),
    ("glucose", "3", 0.15),
    ("tail_length", "2", 0.12),
)
POLYGENIC_VARIANCE = 0.25
SEX_EFFECT_SD = {"body_weight": 1.0, "tail_length": 0.5}
CAGE_EFFECT_SD = {"glucose": 0.3}


def make_demo(out_url: str, *, seed: int = 0, n_individuals: int = N_INDIVIDUALS,
              snps_per_chromosome: int = SNPS_PER_CHROMOSOME) -> Dataset:
    """Simulate the demo cohort into an internal dataset at ``out_url``; identical output per ``seed``.

    Examples
    --------
    >>> ds = make_demo("memory://demo", seed=1)  # doctest: +SKIP
    >>> [p["snp"] for p in ds.provenance["planted"]]  # doctest: +SKIP
    """
    rng = np.random.default_rng([seed, 20240])
    chrom_seeds = rng.integers(1, 2**31 - 1, size=len(CHROMOSOMES))
    blocks, variant_frames = [], []
    for chrom, chrom_seed in zip(CHROMOSOMES, chrom_seeds, strict=True):
        sim = simulate_chromosome(n_individuals, length=CHROMOSOME_LENGTH, seed=int(chrom_seed),
                                  n_snps=snps_per_chromosome)
        blocks.append(sim.snp_major.T.astype(np.float32))
        variant_frames.append(pd.DataFrame({
            "id": [f"snp{chrom}_{p}" for p in sim.positions],
            "chr": chrom, "pos": sim.positions, "ref": sim.ref, "alt": sim.alt,
        }))
    dosages = np.concatenate(blocks, axis=1)
    variants = pd.concat(variant_frames, ignore_index=True)

    samples, planted = _phenotypes(dosages, variants, rng)
    # Missing calls are drawn after the phenotypes so they do not change the genetic values.
    dosages[rng.random(dosages.shape) < MISSING_CALL_RATE] = np.nan
    provenance: dict[str, Any] = {
        "dataset": "demo",
        "seed": seed,
        "simulation": {
            "tool": "msprime", "individuals": n_individuals, "chromosomes": list(CHROMOSOMES),
            "chromosome_length_bp": CHROMOSOME_LENGTH, "colony_size": 1000, "colony_generations": 10,
            "ancestral_size": 2000,
            "missing_call_rate": MISSING_CALL_RATE, "missing_phenotype_rate": MISSING_PHENOTYPE_RATE,
            "polygenic_variance": POLYGENIC_VARIANCE,
        },
        "planted": planted,
    }
    return write_dataset(
        out_url, samples, variants, dosages, traits=list(TRAIT_UNITS), covariates=["sex"],
        column_kinds={**dict.fromkeys(TRAIT_UNITS, "numeric"), "sex": "binary", "cage": "categorical"},
        provenance=provenance,
    )


def _phenotypes(
    dosages: np.ndarray, variants: pd.DataFrame, rng: np.random.Generator
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Traits from planted QTL + polygenic background + sex/cage + correlated noise.

    All components are built on a unit-variance scale and mapped to trait units at the end; the
    recorded ``beta`` is per copy of ``alt`` in trait units.
    """
    n = dosages.shape[0]
    traits = list(TRAIT_UNITS)
    chrom = variants["chr"].to_numpy()
    freq = np.nanmean(dosages, axis=0) / 2
    maf = np.minimum(freq, 1 - freq)
    liability = {t: np.zeros(n) for t in traits}
    explained = dict.fromkeys(traits, 0.0)
    qtl_snp: dict[str, int] = {}
    planted: list[dict[str, Any]] = []
    for trait, qtl_chrom, variance in QTL_PLAN:
        key = f"{trait}:{qtl_chrom}"
        if trait == "tail_length" and qtl_chrom == "2":
            snp = qtl_snp["body_weight:2"]  # the shared (pleiotropic) locus
        else:
            # Common SNPs in the middle of the chromosome: strong, well-tagged signals.
            candidates = np.flatnonzero((chrom == qtl_chrom) & (maf >= 0.25))
            candidates = candidates[len(candidates) // 5 : 4 * len(candidates) // 5]
            taken = set(qtl_snp.values())
            snp = int(rng.choice([c for c in candidates if c not in taken]))
        qtl_snp[key] = snp
        g = dosages[:, snp]
        sign = 1.0 if rng.random() < 0.5 else -1.0
        if trait == "tail_length" and qtl_chrom == "2":
            sign = float(np.sign(planted[0]["beta"]))  # pleiotropy: same direction as body_weight
        beta_std = sign * np.sqrt(variance / g.var())  # per allele, unit-variance scale
        liability[trait] += beta_std * (g - g.mean())
        explained[trait] += variance
        planted.append({
            "trait": trait, "snp": str(variants["id"].iat[snp]), "chr": qtl_chrom,
            "pos": int(variants["pos"].iat[snp]), "variance_explained": variance,
            "beta": float(beta_std * TRAIT_UNITS[trait][1]), "alt_frequency": float(freq[snp]),
        })
    # Polygenic background: small effects on every SNP; body_weight and tail_length share 60% of it.
    z = standardise(dosages)[0]
    backgrounds = z @ rng.normal(size=(z.shape[1], 3))
    backgrounds = scaled_to_variance(backgrounds, 1.0)
    shared = backgrounds[:, 0]
    polygenic = {
        "body_weight": np.sqrt(0.6) * shared + np.sqrt(0.4) * backgrounds[:, 1],
        "tail_length": shared,
        "bone_density": backgrounds[:, 1],
        "glucose": backgrounds[:, 2],
    }
    sex = (rng.random(n) < 0.5).astype(np.int64)
    cage_index = np.arange(n) * 40 // n
    cage_effects = rng.normal(size=40)
    # Residuals of body_weight and tail_length are correlated (0.4): same environment and size.
    noise = rng.multivariate_normal(np.zeros(4), _noise_correlation(traits), size=n)
    columns: dict[str, Any] = {"id": [f"M{i + 1:04d}" for i in range(n)]}
    for j, trait in enumerate(traits):
        value = liability[trait] + scaled_to_variance(polygenic[trait], POLYGENIC_VARIANCE)
        value += SEX_EFFECT_SD.get(trait, 0.0) * (sex - sex.mean())
        value += CAGE_EFFECT_SD.get(trait, 0.0) * cage_effects[cage_index]
        residual = max(0.05, 1.0 - explained[trait] - POLYGENIC_VARIANCE)
        value += np.sqrt(residual) * noise[:, j]
        mean, sd = TRAIT_UNITS[trait]
        value = mean + sd * value
        value[rng.random(n) < MISSING_PHENOTYPE_RATE] = np.nan
        columns[trait] = value
    columns["sex"] = sex
    columns["cage"] = [f"cage{c + 1:02d}" for c in cage_index]
    return pd.DataFrame(columns), planted


def _noise_correlation(traits: list[str]) -> np.ndarray:
    corr = np.eye(len(traits))
    a, b = traits.index("body_weight"), traits.index("tail_length")
    corr[a, b] = corr[b, a] = 0.4
    return corr
