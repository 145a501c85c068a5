"""Small runs to compare: msprime cohorts split into train / holdout, with a synthetic cohort that is either
fresh individuals of the same population (what an ideal generator would produce) or a copy of train.

The GWAS tables are per-SNP least-squares fits (the Wald test of the ``genosynth gwas`` lm model) so that
these tests depend only on the comparison code.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import msprime
import numpy as np
import pandas as pd
from scipy import stats

from genosynth import run_layout, storage
from genosynth.formats.dataset import write_dataset
from genosynth.run_config import RunConfig

N_TRAIN, N_HOLDOUT, N_FRESH = 300, 100, 300
CAUSAL = {"trait_a": [(0, 0.25), (1, 0.2)], "trait_b": [(1, 0.25)]}  # (chromosome, share of variance)


@dataclass
class Population:
    dosages: np.ndarray      # (n, m) float32
    variants: pd.DataFrame   # id chr pos ref alt
    samples: pd.DataFrame    # id trait_a trait_b sex litter


def simulate_population(seed: int = 7, n: int = N_TRAIN + N_HOLDOUT + N_FRESH) -> Population:
    """Two 3 Mb chromosomes of ``n`` diploid individuals from one population, common SNPs only, and two
    correlated traits with planted QTL (one shared) plus a binary covariate and a categorical column."""
    blocks, tables = [], []
    for chrom in (1, 2):
        ts = msprime.sim_ancestry(samples=n, ploidy=2, sequence_length=3e6, recombination_rate=1e-8,
                                  population_size=5_000, random_seed=seed * 10 + chrom)
        ts = msprime.sim_mutations(ts, rate=1e-8, random_seed=seed * 10 + chrom,
                                   model=msprime.BinaryMutationModel())
        haplotypes = ts.genotype_matrix()  # (sites, 2n)
        dosage = (haplotypes[:, 0::2] + haplotypes[:, 1::2]).astype(np.float32)
        af = dosage.mean(axis=1) / 2
        keep = (af > 0.05) & (af < 0.95)
        positions = np.array([s.position for s in ts.sites()])[keep].astype(np.int64)
        keep_idx = np.flatnonzero(keep)
        _, first = np.unique(positions, return_index=True)
        blocks.append(dosage[keep_idx[first]].T)
        tables.append(pd.DataFrame({"id": [f"c{chrom}_{p}" for p in positions[first]], "chr": str(chrom),
                                    "pos": positions[first] + 1, "ref": "A", "alt": "G"}))
    dosages = np.ascontiguousarray(np.hstack(blocks))
    variants = pd.concat(tables, ignore_index=True)
    rng = np.random.default_rng(seed)
    chrom = variants["chr"].to_numpy()
    traits = {}
    for trait, effects in CAUSAL.items():
        y = np.zeros(n)
        for c, share in effects:
            candidates = np.flatnonzero(chrom == str(c + 1))
            snp = candidates[len(candidates) // (3 if c == 0 else 2)]  # chromosome 2's QTL is shared
            g = dosages[:, snp] - dosages[:, snp].mean()
            y += np.sqrt(share) * g / g.std()
        rest = 1 - sum(share for _, share in effects)
        traits[trait] = y + rng.normal(scale=np.sqrt(rest), size=n)
    traits["trait_b"] = traits["trait_b"] + 0.3 * traits["trait_a"]
    samples = pd.DataFrame({"id": [f"m{i:04d}" for i in range(n)], **traits,
                            "sex": rng.integers(0, 2, size=n).astype(float),
                            "litter": rng.choice(["L1", "L2", "L3"], size=n)})
    samples.loc[rng.choice(n, size=n // 50, replace=False), "trait_b"] = np.nan
    return Population(dosages, variants, samples)


def ols_gwas(dosages: np.ndarray, samples: pd.DataFrame, variants: pd.DataFrame, traits: list[str],
             covariates: list[str]) -> pd.DataFrame:
    """Per-SNP least squares with an intercept and covariates; Wald p on n - c - 1 degrees of freedom."""
    rows = []
    for trait in traits:
        y = samples[trait].to_numpy(float)
        ok = np.isfinite(y)
        c = np.column_stack([np.ones(ok.sum()), *(samples.loc[ok, v].to_numpy(float) for v in covariates)])
        q, _ = np.linalg.qr(c)
        g = dosages[ok].astype(np.float64)
        g_res = g - q @ (q.T @ g)
        y_res = y[ok] - q @ (q.T @ y[ok])
        gg = np.sum(g_res**2, axis=0)
        beta = g_res.T @ y_res / gg
        dof = ok.sum() - c.shape[1] - 1
        resid = np.sum(y_res**2) - beta**2 * gg
        se = np.sqrt(resid / dof / gg)
        p = 2 * stats.t.sf(np.abs(beta / se), dof)
        rows.append(pd.DataFrame({"trait": trait, "snp": variants["id"], "chr": variants["chr"],
                                  "pos": variants["pos"], "af": g.mean(axis=0) / 2, "beta": beta, "se": se,
                                  "p": p, "n": int(ok.sum())}))
    return pd.concat(rows, ignore_index=True)


def _write(url: str, pop: Population, index: np.ndarray, *, extra: dict | None = None) -> None:
    write_dataset(url, pop.samples.iloc[index].reset_index(drop=True), pop.variants, pop.dosages[index],
                  traits=["trait_a", "trait_b"], covariates=["sex"],
                  column_kinds={"litter": "categorical", "sex": "binary"}, extra=extra, chunk_size=512)


def build_run(run_url: str, pop: Population, synthetic: str, privacy: dict | None = None) -> str:
    """Write everything the compare step reads under ``run_url``; ``synthetic`` is ``fresh`` or ``copy``."""
    train = np.arange(N_TRAIN)
    holdout = np.arange(N_TRAIN, N_TRAIN + N_HOLDOUT)
    synth = train if synthetic == "copy" else np.arange(N_TRAIN + N_HOLDOUT, N_TRAIN + N_HOLDOUT + N_FRESH)
    RunConfig(dataset_url="input", seed=3, privacy=privacy or {}).save(run_url)
    _write(run_layout.url(run_url, run_layout.PREP_TRAIN), pop, train)
    _write(run_layout.url(run_url, run_layout.PREP_HOLDOUT), pop, holdout)
    _write(run_layout.url(run_url, run_layout.SYNTHETIC), pop, synth)
    for key, index in ((run_layout.GWAS_REAL, train), (run_layout.GWAS_SYNTHETIC, synth)):
        table = ols_gwas(pop.dosages[index], pop.samples.iloc[index].reset_index(drop=True), pop.variants,
                         ["trait_a", "trait_b"], ["sex"])
        buffer = io.BytesIO()
        table.to_parquet(buffer, index=False)
        storage.write_bytes(run_layout.url(run_url, key), buffer.getvalue())
    return run_url
