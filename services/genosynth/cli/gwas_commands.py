"""``genosynth gwas URL --traits T[,..] [--covariates C[,..]] --model {lm|lmm|wgr|auto} [--loco] --out FILE``.

``wgr`` is the REGENIE-style whole-genome regression (always leave-one-chromosome-out; memory
independent of the number of SNPs, no n x n matrix); ``auto`` is ``lmm`` below 5,000 individuals and
``wgr`` from there on (docs/scaling.md).

Writes one row per (trait, analysed SNP) to ``FILE`` (``.tsv`` or ``.parquet``), its log to
``FILE.log.json`` and, with ``--plot``, Manhattan and QQ PNGs beside it. Bad input (unknown trait or
covariate, wrong output name) exits 2 before anything is written.
"""

from __future__ import annotations

from enum import StrEnum

import typer


class Model(StrEnum):
    lm = "lm"
    lmm = "lmm"
    wgr = "wgr"
    auto = "auto"


def _names(text: str | None) -> list[str]:
    return [name.strip() for name in (text or "").split(",") if name.strip()]


def gwas(
    url: str = typer.Argument(..., help="Internal dataset URL."),
    traits: str = typer.Option(..., "--traits", help="Comma-separated trait columns."),
    covariates: str = typer.Option("", "--covariates", help="Comma-separated covariate columns."),
    model: Model = typer.Option(Model.lmm, "--model", help="lm (per-SNP linear model), lmm (exact LMM), "
                              "wgr (REGENIE-style, scalable) or auto (lmm below 5,000 people, wgr above)."),
    loco: bool = typer.Option(False, "--loco", help="Leave the tested chromosome out of the kinship."),
    out: str = typer.Option(..., "--out", help="Output table: FILE.tsv or FILE.parquet."),
    plot: bool = typer.Option(False, "--plot", help="Also write Manhattan and QQ plots (PNG) beside FILE."),
) -> None:
    """GWAS of an internal dataset, reproducing GEMMA 0.98.5 (-lm 1, -gk 1 + -lmm 1, -loco)."""
    from genosynth.gwas.models import run_model
    from genosynth.gwas.output import log_url, table_format, write_result

    table_format(out)  # a wrong output name fails before any work
    result = run_model(url, _names(traits), covariates=_names(covariates), model=model.value, loco=loco,
                       progress=lambda message: typer.echo(message, err=True))
    write_result(result, out)
    for name, entry in result.log["traits"].items():
        dropped = ", ".join(f"{k} {v}" for k, v in entry["snps_dropped"].items() if v) or "none"
        line = (f"{name}: {entry['individuals_analysed']} individuals, {entry['snps_analysed']} SNPs "
                f"analysed (dropped: {dropped})")
        if "pve" in entry:
            line += f"; pve {entry['pve']:.6f}, null lambda {entry['lambda_null']:.6g}"
        typer.echo(line)
    written = [out, log_url(out)]
    if plot:
        from genosynth.gwas.plots import write_plots

        stem = out.rsplit(".", 1)[0]
        written += write_plots(result.table, stem)
    typer.echo("wrote " + ", ".join(written))


def register(app: typer.Typer) -> None:
    """Add ``gwas`` to the app."""
    app.command("gwas")(gwas)
