"""Pipeline step ``report``: ``report/index.html`` plus its PNG figures, from the compare step's outputs.

Reads the compare step's records (``compare/metrics.json``, ``compare/gate.json``,
``compare/release.json``, through ``genosynth.compare_records``), its plot data ``compare/details.json``,
the two GWAS tables and the allele frequencies of ``prep/train`` and ``synthetic/``. The page is
``report/templates/report.html`` rendered with autoescape. Figures are written first and the page last,
so a page that exists always finds its figures.
"""

from __future__ import annotations

import io
import math
import re
from typing import Any

import numpy as np
import pandas as pd

from genosynth import __version__, compare_records, run_layout, storage
from genosynth.compare import association
from genosynth.compare_records import CompareMetrics, GateVerdict, Privacy, Structure
from genosynth.errors import InputError
from genosynth.formats.dataset import Dataset
from genosynth.genetics.relatedness import KING_FIRST_DEGREE
from genosynth.report import plots
from genosynth.report.html import render_page, render_verdict
from genosynth.run_config import RunConfig

THRESHOLD_LABELS = {"1e-8": "p ≤ 1e-8", "bonferroni": "Bonferroni 0.05/m", "1e-5": "p ≤ 1e-5"}


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "trait"


def _read_json(run_url: str, key: str) -> Any:
    url = run_layout.url(run_url, key)
    if not storage.exists(url):
        raise InputError(url, "not found: run the compare step first")
    return storage.read_json(url)


def _read_gwas(run_url: str, key: str) -> pd.DataFrame:
    url = run_layout.url(run_url, key)
    if not storage.exists(url):
        raise InputError(url, "GWAS table not found: run the gwas steps first")
    return pd.read_parquet(io.BytesIO(storage.read_bytes(url)))


class _Figures:
    """Collects the page's PNGs by file name and hands back their relative links."""

    def __init__(self) -> None:
        self.pngs: dict[str, bytes] = {}

    def add(self, name: str, png: bytes) -> str:
        self.pngs[name] = png
        return name


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _association_figures(metrics: CompareMetrics, real: pd.DataFrame, synth: pd.DataFrame,
                         figures: _Figures) -> dict[str, dict[str, str]]:
    """Per trait the mirrored Manhattan and QQ plots: ``{trait: {"manhattan": name, "qq": name}}``."""
    out = {}
    for trait, entry in metrics.association.items():
        real_t, synth_t = association.align_trait(real, synth, trait)
        thresholds = {label: row.p_threshold for label, row in entry.thresholds.items()}
        slug = _slug(trait)
        out[trait] = {
            "manhattan": figures.add(f"manhattan_{slug}.png",
                                     plots.mirrored_manhattan(real_t, synth_t, thresholds, trait)),
            "qq": figures.add(f"qq_{slug}.png", plots.qq_plot(
                real_t["p"].to_numpy(float), synth_t["p"].to_numpy(float),
                _finite_or_none(entry.lambda_gc_real), _finite_or_none(entry.lambda_gc_synthetic), trait)),
        }
    return out


def _structure_figures(structure: Structure, details: dict[str, Any], af_real: np.ndarray,
                       af_synth: np.ndarray, figures: _Figures) -> dict[str, str]:
    pca, kinship = details["pca"], details["kinship"]
    return {
        "allele_frequency": figures.add("allele_frequency.png", plots.allele_frequency_scatter(
            af_real, af_synth, _finite_or_none(structure.allele_frequency.correlation))),
        "ld_decay": figures.add("ld_decay.png", plots.ld_decay_plot(structure.ld_decay.real.model_dump(),
                                                                    structure.ld_decay.synthetic.model_dump())),
        "pca": figures.add("pca.png", plots.pca_overlay(np.asarray(pca["real"], float),
                                                        np.asarray(pca["synthetic"], float),
                                                        pca["variance_explained"])),
        "kinship": figures.add("kinship.png", plots.kinship_histograms(
            kinship["bins"],
            {"real (KING)": kinship["king_real"], "synthetic (KING)": kinship["king_synthetic"]},
            "Pairwise KING-robust kinship within each cohort")),
    }


def _phenotype_figure(details: dict[str, Any], figures: _Figures) -> str | None:
    pheno = details["phenotypes"]
    if len(pheno["columns"]) < 2:
        return None
    return figures.add("phenotype_correlations.png", plots.correlation_heatmaps(
        pheno["columns"], pheno["correlation_real"], pheno["correlation_synthetic"]))


def _privacy_figures(privacy: Privacy, details: dict[str, Any], figures: _Figures) -> dict[str, str]:
    nearest = details["privacy"]
    return {
        "privacy_distances": figures.add("privacy_distances.png", plots.distance_histograms(
            {"synthetic → nearest training": nearest["nn_synthetic_to_train"],
             "holdout → nearest training": nearest["nn_holdout_to_train"],
             "training → nearest other training": nearest["nn_train_to_train"]},
            _finite_or_none(privacy.dcr_real_p1),
            "distance to closest training genome (mean |Δ genotype| per SNP)", "Distance to closest record",
            "real 1st percentile")),
        "privacy_kinship": figures.add("privacy_kinship.png", plots.distance_histograms(
            {"synthetic → training": nearest["max_king_synthetic_to_train"],
             "holdout → training": nearest["max_king_holdout_to_train"]},
            KING_FIRST_DEGREE, "largest KING kinship to any training genome",
            "Closest relative among training genomes", "1st-degree cut-off")),
    }


def _verdict(gate: GateVerdict, released: bool) -> str:
    """The privacy verdict banner that opens the page and the privacy section."""
    return render_verdict(gate, released)


def build(run_url: str) -> tuple[str, dict[str, bytes]]:
    """Render the report: the page's HTML and every figure it links, keyed by file name (not written)."""
    metrics = compare_records.read_metrics(run_url)
    details = _read_json(run_url, run_layout.COMPARE_DETAILS)
    gate = compare_records.read_gate(run_url)
    released = compare_records.is_released(run_url) is True
    config = RunConfig.load(run_url)
    real = _read_gwas(run_url, run_layout.GWAS_REAL)
    synth = _read_gwas(run_url, run_layout.GWAS_SYNTHETIC)
    train_ds = Dataset.open(run_layout.url(run_url, run_layout.PREP_TRAIN))
    synth_ds = Dataset.open(run_layout.url(run_url, run_layout.SYNTHETIC))

    figures = _Figures()
    names: dict[str, Any] = {"traits": _association_figures(metrics, real, synth, figures)}
    names.update(_structure_figures(metrics.structure, details, train_ds.variants["af"].to_numpy(float),
                                    synth_ds.variants["af"].to_numpy(float), figures))
    names["phenotype_correlations"] = _phenotype_figure(details, figures)
    names.update(_privacy_figures(metrics.privacy, details, figures))
    page = render_page(title="genosynth: synthetic cohort report", config=config, metrics=metrics, gate=gate,
                       released=released, figures=names, threshold_labels=THRESHOLD_LABELS,
                       version=__version__)
    return page, figures.pngs


def run(run_url: str, batch: int | None = None) -> None:
    """Write ``report/*.png`` and then ``report/index.html``. ``batch`` is unused (single task)."""
    html, pngs = build(run_url)
    base = run_layout.url(run_url, run_layout.REPORT)
    for name, png in pngs.items():
        storage.write_bytes(storage.join(base, name), png)
    storage.write_text(storage.join(base, "index.html"), html)
