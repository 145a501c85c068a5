"""Pipeline step ``report``: ``report/index.html`` plus its PNG figures, from the compare step's outputs.

Reads ``compare/metrics.json``, ``compare/details.json``, ``compare/gate.json``, the two GWAS tables and
the allele frequencies of ``prep/train`` and ``synthetic/``. Figures are written first and the page last,
so a page that exists always finds its figures.
"""

from __future__ import annotations

import io
import re
from html import escape as _escape
from typing import Any

import numpy as np
import pandas as pd

from genosynth import __version__, run_layout, storage
from genosynth.compare import association
from genosynth.compare.gate import GATE, read_release
from genosynth.compare.step import DETAILS
from genosynth.errors import InputError
from genosynth.formats.dataset import Dataset
from genosynth.genetics.relatedness import KING_FIRST_DEGREE
from genosynth.report import plots
from genosynth.report.html import Page, badge, card, figure, fmt, table
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


def _summary_cards(metrics: dict[str, Any], gate: dict[str, Any]) -> str:
    assoc = metrics.get("association", {})
    priv = metrics.get("privacy", {})
    struct = metrics.get("structure", {})
    cards = []
    for trait, entry in assoc.items():
        hits = entry["thresholds"]["1e-8"]
        cards.append(card(f"{trait}: F1 at 1e-8", fmt(hits["f1"], 3),
                          f"{hits['hits_real']} real / {hits['hits_synthetic']} synthetic hits"))
        cards.append(card(f"{trait}: top -log10 p", f"{fmt(entry['top_neglog10p_synthetic'], 3)}",
                          f"real {fmt(entry['top_neglog10p_real'], 3)}, ratio "
                          f"{fmt(entry['top_neglog10p_ratio'], 3)}"))
    cards.append(card("allele-frequency r", fmt(struct.get("allele_frequency", {}).get("correlation"), 5)))
    cards.append(card("AATS (0.5 ideal)", fmt(priv.get("aats"), 3),
                      f"privacy loss {fmt(priv.get('privacy_loss'), 2)}"))
    cards.append(card("membership AUC (0.5 ideal)", fmt(priv.get("membership_auc"), 3),
                      f"less 1.96 SE: {fmt(priv.get('membership_auc_beyond_noise'), 3)}"))
    cards.append(card("identical genomes", fmt(priv.get("identical_genomes")),
                      f"of {fmt(metrics.get('cohorts', {}).get('synthetic_samples'))} synthetic"))
    verdict = "passed" if gate.get("passed") else "failed"
    colour = "real" if gate.get("passed") else "synth"
    cards.append(card("privacy gate", f'<span class="{colour}">{verdict}</span>'))
    return f'<div class="cards">{"".join(cards)}</div>'


def _verdict(gate: dict[str, Any]) -> str:
    if gate.get("released", gate.get("passed")):
        return ('<div class="verdict pass"><div class="big">Privacy gate passed: the synthetic cohort is '
                "released</div>Every privacy check below is within its threshold.</div>")
    failures = "".join(f"<li>{_escape(f)}</li>" for f in gate.get("failures", []))
    return ('<div class="verdict fail"><div class="big">Privacy gate FAILED: the synthetic cohort is '
            f"withheld (marked unreleased)</div>Failed checks:<ul>{failures}</ul></div>")


def _association_section(metrics: dict[str, Any], real: pd.DataFrame, synth: pd.DataFrame,
                         figures: _Figures) -> str:
    parts = ['<p class="note">GWAS of the training cohort (<span class="real">real</span>) and of the '
             '<span class="synth">synthetic</span> cohort, same SNPs, same model. A SNP is a hit when p is '
             "at or below the threshold; hits within 5 Mb on a chromosome form one locus, and a synthetic "
             "locus counts as real when it lies within 5 Mb of a real locus. The effect slope is synthetic "
             "on real beta (through the origin) over the real hits; 1 means effects of the same size.</p>"]
    for trait, entry in metrics.get("association", {}).items():
        real_t, synth_t = association.align_trait(real, synth, trait)
        thresholds = {label: row["p_threshold"] for label, row in entry["thresholds"].items()}
        slug = _slug(trait)
        manhattan = figures.add(f"manhattan_{slug}.png",
                                plots.mirrored_manhattan(real_t, synth_t, thresholds, trait))
        qq = figures.add(f"qq_{slug}.png", plots.qq_plot(
            real_t["p"].to_numpy(float), synth_t["p"].to_numpy(float), entry["lambda_gc_real"],
            entry["lambda_gc_synthetic"], trait))
        rows = [[THRESHOLD_LABELS.get(label, label), row["p_threshold"], row["hits_real"],
                 row["hits_synthetic"], row["precision"], row["recall"], row["f1"], row["loci_real"],
                 row["loci_synthetic"], row["locus_precision"], row["locus_recall"], row["beta_slope"]]
                for label, row in sorted(entry["thresholds"].items(), key=lambda kv: kv[1]["p_threshold"])]
        hit_table = table(["threshold", "p", "hits real", "hits synth", "precision", "recall", "F1",
                           "loci real", "loci synth", "locus precision", "locus recall", "beta slope"], rows)
        overall = table(["measure", "real", "synthetic", "synthetic / real or r"], [
            ["top -log10 p", entry["top_neglog10p_real"], entry["top_neglog10p_synthetic"],
             entry["top_neglog10p_ratio"]],
            ["λGC (median χ² / 0.4549)", entry["lambda_gc_real"], entry["lambda_gc_synthetic"],
             entry["lambda_gc_delta"]],
            ["correlation of -log10 p", None, None, entry["neglog10p_correlation"]],
            ["effect slope at real Bonferroni hits", None, None, entry.get("effect_slope_real_hits")],
            ["effect sign kept at real Bonferroni hits", None, None,
             entry.get("effect_sign_agreement_real_hits")],
        ])
        by_chrom = table(["chromosome", "λGC real", "λGC synthetic", "Δ"], [
            [name, row["real"], row["synthetic"], row["delta"]]
            for name, row in entry.get("lambda_gc_by_chromosome", {}).items()])
        parts.append(f"<h3>{_escape(trait)} <small>({fmt(entry['n_snps'])} SNPs)</small></h3>")
        parts.append(figure(manhattan, f"{_escape(trait)}: real -log10 p above the axis, synthetic below; "
                            "lines mark 1e-8 (solid), Bonferroni (dashed) and 1e-5 (dotted).",
                            f"Mirrored Manhattan plot of {trait}"))
        qq_figure = figure(qq, "Observed against expected -log10 p under the null.", f"QQ plot of {trait}")
        parts.append(f'{hit_table}<div class="row"><div>{overall}<p class="note">The last column of the '
                     f"λGC row is the difference synthetic - real.</p></div><div>{qq_figure}</div>"
                     f"<div>{by_chrom}</div></div>")
    return "".join(parts)


def _structure_section(metrics: dict[str, Any], details: dict[str, Any], af_real: np.ndarray,
                       af_synth: np.ndarray, figures: _Figures) -> str:
    struct = metrics.get("structure", {})
    af = struct.get("allele_frequency", {})
    ld = struct.get("ld_decay", {})
    pca = struct.get("pca", {})
    king, grm = struct.get("kinship_king", {}), struct.get("kinship_centred", {})
    af_png = figures.add("allele_frequency.png", plots.allele_frequency_scatter(af_real, af_synth,
                                                                                af.get("correlation")))
    ld_png = figures.add("ld_decay.png", plots.ld_decay_plot(ld["real"], ld["synthetic"]))
    pca_details = details.get("pca", {})
    pca_png = figures.add("pca.png", plots.pca_overlay(np.asarray(pca_details["real"], float),
                                                       np.asarray(pca_details["synthetic"], float),
                                                       pca_details.get("variance_explained", [])))
    kin = details.get("kinship", {})
    kin_png = figures.add("kinship.png", plots.kinship_histograms(
        kin["bins"], {"real (KING)": kin["king_real"], "synthetic (KING)": kin["king_synthetic"]},
        "Pairwise KING-robust kinship within each cohort"))
    summary = table(["measure", "value", "meaning"], [
        ["allele-frequency correlation", af.get("correlation"), "Pearson r over all SNPs (1 ideal)"],
        ["allele-frequency mean |difference|", af.get("mean_abs_difference"), "0 ideal"],
        ["LD decay mean |Δ r²|", ld.get("mean_abs_difference"), "over distance bins (0 ideal)"],
        ["LD decay max |Δ r²|", ld.get("max_abs_difference"), ""],
        ["KING kinship quantiles mean |Δ|", king.get("mean_abs_difference"), "0 ideal"],
        ["centred kinship quantiles mean |Δ|", grm.get("mean_abs_difference"), "GEMMA -gk 1 style (0 ideal)"],
        ["PCA centroid distance", pca.get("centroid_distance_sd"),
         f"over {pca.get('components')} PCs, real-sd units"],
        ["PCA mean Wasserstein distance", pca.get("mean_wasserstein_sd"), "per PC, real-sd units (0 ideal)"],
    ])
    quantile_rows = [[f"q{q:g}", kr, ks, gr, gs] for q, kr, ks, gr, gs in
                     zip(king.get("quantiles", []), king.get("real", []), king.get("synthetic", []),
                         grm.get("real", []), grm.get("synthetic", []), strict=False)]
    quantiles = table(["quantile", "KING real", "KING synthetic", "centred real", "centred synthetic"],
                      quantile_rows)
    spectrum = struct.get("kinship_spectrum", {})
    spectrum_rows = [[f"λ{i + 1}", r, s] for i, (r, s) in enumerate(zip(
        spectrum.get("real", []), spectrum.get("synthetic", []), strict=False))]
    quantiles += table(["kinship eigenvalue (share of trace)", "real", "synthetic"], spectrum_rows)
    pc_rows = [[f"PC{i + 1}", v, r, w] for i, (v, r, w) in enumerate(zip(
        pca.get("variance_explained", []), pca.get("score_sd_ratio", []), pca.get("wasserstein_sd", []),
        strict=False))]
    pcs = table(["component", "variance explained (real)", "sd ratio synth/real", "Wasserstein (sd)"],
                pc_rows)
    af_figure = figure(af_png, "Per-SNP alternate allele frequency.", "Allele frequency scatter")
    ld_figure = figure(ld_png, "Mean r² of SNP pairs within chromosomes, by distance.", "LD decay")
    pca_figure = figure(pca_png, "Synthetic genomes projected onto the principal components of the real "
                        "cohort (standardised with the real allele frequencies).", "PCA overlay")
    kin_figure = figure(kin_png, "Kinship of every pair of genomes within a cohort; dotted lines mark the "
                        "KING cut-offs for 2nd-degree, 1st-degree relatives and duplicates.", "Kinship")
    snps = fmt(metrics.get("cohorts", {}).get("snps_subsampled"))
    return (
        '<p class="note">Training cohort against synthetic cohort on the same SNPs. Pairwise measures use '
        f"an evenly spaced subsample of {snps} SNPs.</p>{summary}"
        f'<div class="row">{af_figure}{ld_figure}</div>{pca_figure}'
        f'<div class="row"><div>{pcs}</div><div>{quantiles}</div></div>{kin_figure}'
    )


def _phenotype_section(metrics: dict[str, Any], details: dict[str, Any], figures: _Figures) -> str:
    pheno = metrics.get("phenotypes", {})
    pd_details = details.get("phenotypes", {})
    parts = []
    if len(pd_details.get("columns", [])) >= 2:
        png = figures.add("phenotype_correlations.png", plots.correlation_heatmaps(
            pd_details["columns"], pd_details["correlation_real"], pd_details["correlation_synthetic"]))
        parts.append(figure(png, "Pairwise-complete Pearson correlations of the numeric and binary columns "
                            f"(mean |Δr| {fmt(pheno.get('correlation_mean_abs_difference'), 3)}, max "
                            f"{fmt(pheno.get('correlation_max_abs_difference'), 3)}); white cells: no "
                            "individual has both columns observed.",
                            "Phenotype correlation matrices"))
    rows = []
    for column, entry in pheno.get("columns", {}).items():
        rows.append([column, entry.get("kind"), entry.get("missing_real"), entry.get("missing_synthetic"),
                     entry.get("mean_real"), entry.get("mean_synthetic"), entry.get("sd_real"),
                     entry.get("sd_synthetic"), entry.get("total_variation")])
    parts.append(table(["column", "kind", "missing real", "missing synth", "mean real", "mean synth",
                        "sd real", "sd synth", "TV distance"], rows))
    return "".join(parts)


def _privacy_section(metrics: dict[str, Any], details: dict[str, Any], gate: dict[str, Any],
                     figures: _Figures) -> str:
    priv = metrics.get("privacy", {})
    pdet = details.get("privacy", {})
    checks = table(["check", "value", "required", "verdict"], [
        [_escape(c["name"]), fmt(c["value"]), f"{_escape(c['op'])} {fmt(c['threshold'])}", badge(c["passed"])]
        for c in gate.get("checks", [])], raw=True)
    dcr_png = figures.add("privacy_distances.png", plots.distance_histograms(
        {"synthetic → nearest training": pdet.get("nn_synthetic_to_train", []),
         "holdout → nearest training": pdet.get("nn_holdout_to_train", []),
         "training → nearest other training": pdet.get("nn_train_to_train", [])},
        priv.get("dcr_real_p1"), "distance to closest training genome (mean |Δ genotype| per SNP)",
        "Distance to closest record", "real 1st percentile"))
    king_png = figures.add("privacy_kinship.png", plots.distance_histograms(
        {"synthetic → training": pdet.get("max_king_synthetic_to_train", []),
         "holdout → training": pdet.get("max_king_holdout_to_train", [])},
        KING_FIRST_DEGREE, "largest KING kinship to any training genome",
        "Closest relative among training genomes", "1st-degree cut-off"))
    rows = [
        ["identical genomes (all SNPs)", priv.get("identical_genomes"),
         priv.get("identical_genomes_holdout")],
        ["median distance to closest training genome", priv.get("dcr_synthetic_to_train", {}).get("q0.5"),
         priv.get("dcr_holdout_to_train", {}).get("q0.5")],
        ["1st percentile of that distance", priv.get("dcr_synthetic_to_train", {}).get("q0.01"),
         priv.get("dcr_holdout_to_train", {}).get("q0.01")],
        ["share closer than the real 1st percentile", priv.get("fraction_closer_than_real_p1"),
         priv.get("fraction_holdout_closer_than_real_p1")],
        ["AATS against training genomes (same size as holdout)", priv.get("aats_train_matched"),
         priv.get("aats_holdout")],
        ["largest KING kinship to a training genome", priv.get("max_king_kinship"),
         priv.get("max_king_kinship_holdout")],
    ]
    degrees = (("second_degree", "a 2nd-degree or closer"), ("first_degree", "a 1st-degree or closer"),
               ("duplicate", "a duplicate-level"))
    for label, text in degrees:
        rows.append([f"share with {text} training relative",
                     priv.get(f"fraction_synthetic_{label}_or_closer"),
                     priv.get(f"fraction_holdout_{label}_or_closer")])
    overview = table(["measure", "synthetic", "holdout (real, unseen)"], rows)
    return (
        _verdict(gate)
        + '<p class="note">Synthetic genomes against the training genomes they were learned from, with the '
        "held-out real genomes (never trained on) as the yardstick of what a fresh genome of this cohort "
        "looks like. AATS is the nearest-neighbour adversarial accuracy (0.5: synthetic and real genomes are "
        "indistinguishable to a nearest-neighbour classifier; near 0: synthetic genomes copy training ones). "
        f"Overall AATS {fmt(priv.get('aats'), 3)}, privacy loss (AATS holdout - AATS train) "
        f"{fmt(priv.get('privacy_loss'), 3)}, membership-inference AUC {fmt(priv.get('membership_auc'), 3)} "
        "(distance-to-closest-synthetic attack; 0.5: membership cannot be guessed).</p>"
        + checks + overview
        + f'<div class="row">{figure(dcr_png, "Nearest-neighbour distances to the training cohort.", "DCR")}'
        f'{figure(king_png, "Each genome’s closest relative among the training genomes.", "Kinship")}</div>'
    )


DEFINITIONS = """
<dl class="defs">
<dt>SNP-level precision, recall, F1</dt><dd>Real hits: SNPs at or below the threshold in the real GWAS;
synthetic hits likewise. Precision = shared hits / synthetic hits; recall = shared hits / real hits.</dd>
<dt>Locus precision and recall</dt><dd>Hits less than 5 Mb apart on a chromosome merge into a locus; a
synthetic locus is real when it lies within 5 Mb of a real locus (and conversely for recall).</dd>
<dt>λGC</dt><dd>Median of the 1-df χ² statistics implied by the p-values, divided by 0.4549.</dd>
<dt>Distance between genomes</dt><dd>Mean absolute difference of hard genotype calls over jointly observed
SNPs (0 to 2).</dd>
<dt>KING-robust kinship</dt><dd>(N<sub>Aa,Aa</sub> − 2 N<sub>AA,aa</sub>) /
(N<sub>Aa</sub>(i) + N<sub>Aa</sub>(j)); 0.5 duplicates, ≈0.25 first degree, ≈0.125 second degree.</dd>
<dt>AATS</dt><dd>½ [P(real genome's closest synthetic is farther than its closest other real genome) +
P(synthetic genome's closest real is farther than its closest other synthetic)] (Yelmen et al. 2021).</dd>
<dt>Membership-inference AUC</dt><dd>AUC of calling a real genome a training member the closer it lies to a
synthetic genome; training genomes are members, holdout genomes are not.</dd>
</dl>
"""


def build(run_url: str) -> tuple[str, dict[str, bytes]]:
    """Render the report: the page's HTML and every figure it links, keyed by file name (not written)."""
    metrics = _read_json(run_url, run_layout.COMPARE_METRICS)
    details = _read_json(run_url, DETAILS)
    gate = {**_read_json(run_url, GATE), "released": bool(read_release(run_url))}
    config = RunConfig.load(run_url)
    real = _read_gwas(run_url, run_layout.GWAS_REAL)
    synth = _read_gwas(run_url, run_layout.GWAS_SYNTHETIC)
    train_ds = Dataset.open(run_layout.url(run_url, run_layout.PREP_TRAIN))
    synth_ds = Dataset.open(run_layout.url(run_url, run_layout.SYNTHETIC))

    figures = _Figures()
    cohorts = metrics.get("cohorts", {})
    subtitle = (f"dataset <code>{_escape(config.dataset_url)}</code> · "
                f"model <code>{_escape(config.model)}</code>"
                f" · seed {config.seed} · {fmt(cohorts.get('train_samples'))} training, "
                f"{fmt(cohorts.get('holdout_samples'))} holdout and {fmt(cohorts.get('synthetic_samples'))} "
                f"synthetic genomes · {fmt(cohorts.get('snps'))} SNPs")
    page = Page(title="genosynth: synthetic cohort report", subtitle=subtitle)
    page.preamble = _verdict(gate) + _summary_cards(metrics, gate)
    page.add("association", "Association: does the synthetic cohort reproduce the GWAS?",
             _association_section(metrics, real, synth, figures))
    page.add("structure", "Genetic structure", _structure_section(
        metrics, details, train_ds.variants["af"].to_numpy(float), synth_ds.variants["af"].to_numpy(float),
        figures))
    page.add("phenotypes", "Phenotypes", _phenotype_section(metrics, details, figures))
    page.add("privacy", "Privacy", _privacy_section(metrics, details, gate, figures))
    page.add("definitions", "Definitions", DEFINITIONS)
    page.footer = f"genosynth {__version__} · figures and numbers from compare/metrics.json of this run"
    return page.render(), figures.pngs


def run(run_url: str, batch: int | None = None) -> None:
    """Write ``report/*.png`` and then ``report/index.html``. ``batch`` is unused (single task)."""
    html, pngs = build(run_url)
    base = run_layout.url(run_url, run_layout.REPORT)
    for name, png in pngs.items():
        storage.write_bytes(storage.join(base, name), png)
    storage.write_text(storage.join(base, "index.html"), html)
