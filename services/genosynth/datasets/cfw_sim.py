"""``cfw-sim``: a simulated cohort shaped like the CFW outbred-mouse study (Parker et al. 2016).

Default size as the study: 1,220 mice x 92,734 SNPs on the 19 mouse autosomes (GRCm38 lengths,
0.5 cM/Mb), from an msprime colony of 500 breeding mice over 20 generations on an ancestral population
of 1,000, so LD is long and some mice are relatives. Genotypes are streamed chromosome by chromosome into
the dataset (memory stays well under 1 GB at full size).

- Dosages: about 2% of calls are non-integer "imputed" values, concentrated in SNPs of low imputation
  quality; the variant table carries ``quality`` (about 88% of SNPs >= 0.95, the rest below).
- Phenotype table, 164 columns as in the study: ``id``, ``discard`` (20 flagged mice), ``round``
  (categorical SW1..SW25) and its 25 one-hot columns ``SW1..SW25`` (binary covariates such as ``SW16``),
  ``cage`` (categorical), 3 other binary covariates, and 132 continuous traits in groups (bone,
  body weights, muscles, organs, blood, fear conditioning, prepulse inhibition, locomotor activity).
  Each group shares genetic and environmental factors (correlated traits); some traits have QTL;
  ``abBMD`` has two strong loci, on chromosomes 5 and 11, and a round SW16 shift. Missing values come
  per test group (a mouse not tested misses the whole group) plus a little per trait.

The planted loci are recorded in the provenance (``planted``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from genosynth import storage
from genosynth.datasets.simulate import scaled_to_variance, simulate_chromosome
from genosynth.formats.dataset import Dataset, DatasetWriter
from genosynth.genetics.dosages import standardise

# GRCm38 autosome lengths in bp.
MOUSE_AUTOSOMES = {
    "1": 195_471_971, "2": 182_113_224, "3": 160_039_680, "4": 156_508_116, "5": 151_834_684,
    "6": 149_736_546, "7": 145_441_459, "8": 129_401_213, "9": 124_595_110, "10": 130_694_993,
    "11": 122_082_543, "12": 120_129_022, "13": 120_421_639, "14": 124_902_244, "15": 104_043_685,
    "16": 98_207_768, "17": 94_987_271, "18": 90_702_639, "19": 61_431_566,
}
N_INDIVIDUALS = 1220
N_SNPS = 92_734
RECOMBINATION_RATE = 0.5e-8  # 0.5 cM/Mb
NON_INTEGER_FRACTION = 0.02
N_ROUNDS = 25
N_DISCARDED = 20
N_FACTORS = 24  # latent polygenic scores shared by trait groups


@dataclass(frozen=True)
class TraitGroup:
    """Continuous traits tested together: shared genetics, environment and missingness."""

    names: tuple[str, ...]
    heritability: tuple[float, float]  # range of per-trait h2
    genetic_correlation: float         # loading on the group's shared polygenic factor
    environment_correlation: float
    missing_rate: float                # mice not tested in this group
    n_qtl: int                         # traits of the group with one moderate QTL


def trait_groups() -> list[TraitGroup]:
    """The 132 continuous traits, in column order."""
    blood = ("glucose", "rbc", "hgb", "hct", "mcv", "mch", "mchc", "rdw", "plt", "mpv", "wbc", "lymph_pct",
             "neut_pct", "mono_pct", "eos_pct", "insulin", "cholesterol", "triglycerides", "hdl", "ldl",
             "alt_enzyme", "creatinine")
    return [
        TraitGroup(("abBMD", "bmd_femur", "bmd_tibia", "tibia_length"), (0.3, 0.5), 0.7, 0.3, 0.02, 1),
        TraitGroup(tuple(f"bw_week{k:02d}" for k in range(1, 13)), (0.35, 0.5), 0.9, 0.8, 0.01, 2),
        TraitGroup(("ta_weight", "edl_weight", "gastroc_weight", "plantaris_weight", "soleus_weight"),
                   (0.3, 0.5), 0.7, 0.4, 0.04, 2),
        TraitGroup(("heart_weight", "spleen_weight", "testis_weight"), (0.2, 0.4), 0.3, 0.2, 0.03, 2),
        TraitGroup(blood, (0.1, 0.4), 0.4, 0.3, 0.08, 3),
        TraitGroup(tuple(f"fc_freeze_{phase}{k:02d}" for phase in ("ctx", "tone") for k in range(1, 16)),
                   (0.05, 0.25), 0.8, 0.6, 0.05, 1),
        TraitGroup(tuple(f"ppi_{x}" for x in ("pp3", "pp6", "pp12", "startle", "habituation", "pp3_lat",
                                               "pp6_lat", "pp12_lat")), (0.1, 0.3), 0.6, 0.4, 0.06, 2),
        TraitGroup(tuple(f"meth_dist_d{day}_b{b}" for day in (1, 2, 3) for b in range(1, 7)),
                   (0.1, 0.3), 0.8, 0.5, 0.05, 1),
        TraitGroup(tuple(f"act_{x}{k}" for x in ("dist", "rear", "center") for k in range(1, 11)),
                   (0.1, 0.3), 0.7, 0.5, 0.04, 2),
    ]


BINARY_COVARIATES = ("ppi_box2", "fc_chamber_b", "dissection_pm")


def snp_counts(n_snps: int, chromosomes: dict[str, int]) -> dict[str, int]:
    """SNPs per chromosome, proportional to length, summing to ``n_snps``."""
    lengths = np.array(list(chromosomes.values()), dtype=np.float64)
    raw = n_snps * lengths / lengths.sum()
    counts = np.floor(raw).astype(int)
    counts[np.argsort(raw - counts)[::-1][: n_snps - counts.sum()]] += 1
    return dict(zip(chromosomes, counts.tolist(), strict=True))


def make_cfw_sim(
    out_url: str, *, seed: int = 0, n_individuals: int = N_INDIVIDUALS, n_snps: int = N_SNPS,
    length_scale: float = 1.0,
) -> Dataset:
    """Simulate the CFW-shaped cohort into ``out_url``; identical output per arguments.

    ``n_individuals``, ``n_snps`` and ``length_scale`` (chromosome lengths multiplied by it) shrink the
    cohort for tests; the phenotype table keeps all 164 columns.
    """
    rng = np.random.default_rng([seed, 1220])
    chromosomes = {c: max(1_000_000, int(length * length_scale)) for c, length in MOUSE_AUTOSOMES.items()}
    counts = snp_counts(n_snps, chromosomes)
    groups = trait_groups()
    qtl_plan = _qtl_plan(groups, rng)
    seeds = rng.integers(1, 2**31 - 1, size=len(chromosomes)).tolist()
    chrom_seeds = dict(zip(chromosomes, seeds, strict=True))
    factor_scores = np.zeros((n_individuals, N_FACTORS))
    qtl_genotypes: dict[int, np.ndarray] = {}
    planted: list[dict[str, Any]] = []
    variant_frames = []
    with storage.staged_output(out_url):
        writer = DatasetWriter(out_url, n_samples=n_individuals)
        for chrom, length in chromosomes.items():
            sim = simulate_chromosome(
                n_individuals, length=length, seed=chrom_seeds[chrom], n_snps=counts[chrom],
                colony_size=500, colony_generations=20, ancestral_size=1000,
                recombination_rate=RECOMBINATION_RATE,
            )
            chrom_rng = np.random.default_rng([seed, 1220, int(chrom)])
            calls = sim.snp_major.T.astype(np.float32)  # (n, m_c) true genotypes
            # Polygenic factors: small effects of every SNP (standardised genotypes).
            factor_scores += standardise(calls)[0] @ chrom_rng.normal(size=(calls.shape[1], N_FACTORS))
            for k, (trait, qtl_chrom, variance) in enumerate(qtl_plan):
                if qtl_chrom == chrom:
                    snp = _pick_qtl_snp(calls, chrom_rng)
                    qtl_genotypes[k] = calls[:, snp].copy()
                    planted.append({"trait": trait, "chr": chrom, "snp": f"cfw{chrom}_{sim.positions[snp]}",
                                    "pos": int(sim.positions[snp]), "variance_explained": variance,
                                    "alt_frequency": float(calls[:, snp].mean() / 2)})
            quality = _quality(calls.shape[1], chrom_rng)
            writer.add(_imputed(calls, quality, chrom_rng))
            variant_frames.append(pd.DataFrame({
                "id": [f"cfw{chrom}_{p}" for p in sim.positions], "chr": chrom, "pos": sim.positions,
                "ref": sim.ref, "alt": sim.alt, "quality": quality,
            }))
        samples, kinds, planted = _phenotype_table(n_individuals, groups, qtl_plan, qtl_genotypes,
                                                   scaled_to_variance(factor_scores, 1.0), planted, rng)
        traits = [name for group in groups for name in group.names]
        return writer.commit(
            samples, pd.concat(variant_frames, ignore_index=True), traits=traits, covariates=["SW16"],
            column_kinds=kinds,
            provenance={
                "dataset": "cfw-sim", "seed": seed,
                "simulation": {"tool": "msprime", "individuals": n_individuals, "snps": n_snps,
                               "length_scale": length_scale, "colony_size": 500, "colony_generations": 20,
                               "ancestral_size": 1000, "recombination_rate": RECOMBINATION_RATE,
                               "non_integer_fraction": NON_INTEGER_FRACTION},
                "planted": planted,
                "phenotype_groups": [list(group.names) for group in groups],
            },
        )


def _qtl_plan(groups: list[TraitGroup], rng: np.random.Generator) -> list[tuple[str, str, float]]:
    """(trait, chromosome, variance explained) of every planted QTL; abBMD's two loci come first."""
    plan = [("abBMD", "5", 0.06), ("abBMD", "11", 0.05)]
    autosomes = list(MOUSE_AUTOSOMES)
    for group in groups:
        candidates = [t for t in group.names if t != "abBMD"]
        for trait in rng.choice(candidates, size=group.n_qtl, replace=False):
            plan.append((str(trait), str(rng.choice(autosomes)), float(rng.uniform(0.015, 0.04))))
    return plan


def _pick_qtl_snp(calls: np.ndarray, rng: np.random.Generator) -> int:
    freq = calls.mean(axis=0) / 2
    candidates = np.flatnonzero(np.minimum(freq, 1 - freq) >= 0.2)
    middle = candidates[len(candidates) // 10 : 9 * len(candidates) // 10]
    return int(rng.choice(middle if len(middle) else np.arange(calls.shape[1])))


def _quality(m: int, rng: np.random.Generator) -> np.ndarray:
    """Imputation quality: most SNPs in [0.95, 1], about 12% below 0.95."""
    low = rng.random(m) < 0.12
    return np.round(np.where(low, rng.uniform(0.3, 0.95, size=m), rng.uniform(0.95, 1.0, size=m)), 4)


def _imputed(calls: np.ndarray, quality: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Replace about 2% of calls by non-integer dosages, more often where quality is low."""
    rate = (1.0 - quality) * (NON_INTEGER_FRACTION / 0.067)  # mean (1 - quality) is about 0.067
    mask = rng.random(calls.shape) < rate[None, :]
    noisy = np.clip(calls[mask] + rng.normal(0.0, 0.35, size=int(mask.sum())), 0.0, 2.0)
    noisy = np.round(noisy, 3)
    # Keep them non-integer (an imputed dosage that lands on 0/1/2 is moved off by 0.001).
    on_integer = noisy == np.rint(noisy)
    noisy[on_integer] += np.where(noisy[on_integer] >= 1.0, -0.001, 0.001)
    out = calls.copy()
    out[mask] = noisy
    return out


def _phenotype_table(
    n: int, groups: list[TraitGroup], qtl_plan: list[tuple[str, str, float]],
    qtl_genotypes: dict[int, np.ndarray], factors: np.ndarray, planted: list[dict[str, Any]],
    rng: np.random.Generator,
) -> tuple[pd.DataFrame, dict[str, str], list[dict[str, Any]]]:
    """The 164-column table; returns it, the column kinds, and ``planted`` with per-allele betas."""
    round_index = np.sort(np.arange(n) % N_ROUNDS)  # ~49 mice per round, in id order
    round_names = np.array([f"SW{r + 1}" for r in range(N_ROUNDS)])
    cage_index = np.arange(n) // 4
    columns: dict[str, Any] = {"id": [f"cfw{i + 1:05d}" for i in range(n)]}
    discard = np.zeros(n, dtype=np.int64)
    discard[rng.choice(n, size=min(N_DISCARDED, n // 10), replace=False)] = 1
    columns["discard"] = discard
    columns["round"] = round_names[round_index]
    for r, name in enumerate(round_names):
        columns[name] = (round_index == r).astype(np.int64)
    columns["cage"] = [f"C{c + 1:03d}" for c in cage_index]
    for name in BINARY_COVARIATES:
        columns[name] = (rng.random(n) < rng.uniform(0.3, 0.6)).astype(np.int64)
    round_effects = rng.normal(0.0, 0.25, size=N_ROUNDS)
    cage_effects = rng.normal(0.0, 0.15, size=cage_index.max() + 1)
    by_trait: dict[str, list[int]] = {}
    for k, (trait, _, _) in enumerate(qtl_plan):
        by_trait.setdefault(trait, []).append(k)
    planted_at = {(p["trait"], p["chr"]): p for p in planted}
    for g, group in enumerate(groups):
        shared_genetic = factors[:, g % N_FACTORS]
        shared_environment = rng.normal(size=n)
        untested = rng.random(n) < group.missing_rate
        for j, trait in enumerate(group.names):
            h2 = rng.uniform(*group.heritability)
            own = factors[:, (len(groups) + g * 7 + j) % N_FACTORS]
            genetic = np.sqrt(group.genetic_correlation) * shared_genetic + \
                np.sqrt(1 - group.genetic_correlation) * own
            value = scaled_to_variance(genetic, h2)
            explained = h2
            for k in by_trait.get(trait, []):
                qtl_trait, qtl_chrom, variance = qtl_plan[k]
                g_qtl = qtl_genotypes[k]
                beta = rng.choice([-1.0, 1.0]) * np.sqrt(variance / g_qtl.var())
                value += beta * (g_qtl - g_qtl.mean())
                explained += variance
                planted_at[(qtl_trait, qtl_chrom)]["beta_sd_units"] = float(beta)
            environment = np.sqrt(group.environment_correlation) * shared_environment + \
                np.sqrt(1 - group.environment_correlation) * rng.normal(size=n)
            value += np.sqrt(max(0.05, 1.0 - explained)) * environment
            value += round_effects[round_index] + cage_effects[cage_index]
            if group.names[0] == "abBMD":
                value += 0.8 * columns["SW16"]  # the study's covariate for abBMD
            mean = 10 ** rng.uniform(-1, 2)
            sd = mean * rng.uniform(0.05, 0.2)
            value = mean + sd * value
            for k in by_trait.get(trait, []):
                planted_at[(qtl_plan[k][0], qtl_plan[k][1])]["beta"] = \
                    planted_at[(qtl_plan[k][0], qtl_plan[k][1])]["beta_sd_units"] * sd
            value[untested | (rng.random(n) < 0.01)] = np.nan
            columns[trait] = value
    kinds = {"discard": "binary", "round": "categorical", "cage": "categorical",
             **{name: "binary" for name in round_names}, **dict.fromkeys(BINARY_COVARIATES, "binary")}
    kinds.update({trait: "numeric" for group in groups for trait in group.names})
    return pd.DataFrame(columns), kinds, planted
