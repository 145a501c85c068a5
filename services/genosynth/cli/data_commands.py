"""Data commands: ``datasets get``, ``import {bimbam|plink|cfw}`` and ``export``.

Importers check ``--out`` (writable; not a run; not an existing dataset unless ``--force``, which
replaces it whole), then parse and validate every input file, and only then write: bad input exits 2
with one line and leaves ``--out`` untouched. Sample-alignment warnings (partial ID overlap) are printed
as ``warning: ...`` lines.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from enum import StrEnum
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from genosynth.formats.dataset import Dataset

datasets_app = typer.Typer(help="Ready-made cohorts (demo, hs1940, cfw-sim, biobank-sim).",
                           no_args_is_help=True)
import_app = typer.Typer(help="Import PLINK 1, BIMBAM or CFW files into an internal dataset.",
                         no_args_is_help=True)


class DatasetName(StrEnum):
    demo = "demo"
    hs1940 = "hs1940"
    cfw_sim = "cfw-sim"
    biobank_sim = "biobank-sim"


class ExportFormat(StrEnum):
    plink = "plink"
    bimbam = "bimbam"
    cfw = "cfw"


@contextlib.contextmanager
def _report_warnings() -> Iterator[None]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for item in caught:
        typer.echo(f"warning: {item.message}", err=True)


def _force_option() -> bool:
    return typer.Option(False, "--force", help="Replace an existing dataset at --out (old files removed).")


def _check_out(out: str, force: bool) -> None:
    from genosynth.formats.dataset import check_destination

    check_destination(out, force=force)


def _summary(dataset: Dataset) -> None:
    typer.echo(
        f"wrote {dataset.url}: {dataset.n_samples} samples x {dataset.n_variants} SNPs; "
        f"traits: {', '.join(dataset.traits) or '-'}; covariates: {', '.join(dataset.covariates) or '-'}"
    )


@datasets_app.command("get")
def datasets_get(
    name: DatasetName = typer.Argument(..., help="demo | hs1940 | cfw-sim | biobank-sim"),
    out: str = typer.Option(..., "--out", help="Dataset URL to write (local path or fsspec URL)."),
    seed: int = typer.Option(0, "--seed", help="Random seed of the simulated cohorts."),
    samples: int = typer.Option(None, "--samples", min=50, help="biobank-sim: people (default 10,000)."),
    snps: int = typer.Option(None, "--snps", min=440, help="biobank-sim: SNPs (default 50,000)."),
    plink: str = typer.Option(None, "--plink", help="biobank-sim: also write PLINK 1 files at this prefix."),
    force: bool = _force_option(),
) -> None:
    """Fetch or simulate a ready-made cohort into an internal dataset."""
    from genosynth.datasets import get_dataset
    from genosynth.errors import InputError

    if name is not DatasetName.biobank_sim and (samples or snps or plink):
        raise InputError("datasets get",
                         f"--samples, --snps and --plink apply to biobank-sim only, not {name}")
    _check_out(out, force)
    with _report_warnings():
        dataset = get_dataset(name.value, out, seed=seed, samples=samples, snps=snps, plink=plink)
    _summary(dataset)
    if plink:
        typer.echo(f"wrote {plink}.bed, {plink}.bim, {plink}.fam, {plink}.pheno")


@import_app.command("bimbam")
def import_bimbam_command(
    geno: str = typer.Option(..., "--geno", help="BIMBAM mean genotypes: rs, A1, A0, d1, d2, ..."),
    pheno: str = typer.Option(..., "--pheno", help="BIMBAM phenotypes: one row per individual, NA missing."),
    anno: str = typer.Option(None, "--anno", help="SNP annotation: rs pos chr cM (cM optional)."),
    trait_names: str = typer.Option(None, "--trait-names", help="Comma-separated trait names (file order)."),
    out: str = typer.Option(..., "--out", help="Dataset URL to write."),
    force: bool = _force_option(),
) -> None:
    """Import GEMMA's BIMBAM trio (dosages count allele A1, as in GEMMA)."""
    from genosynth.formats.bimbam import import_bimbam

    _check_out(out, force)

    names = [n.strip() for n in trait_names.split(",")] if trait_names else None
    with _report_warnings():
        dataset = import_bimbam(geno, pheno, anno, out, trait_names=names)
    _summary(dataset)


@import_app.command("plink")
def import_plink_command(
    bfile: str = typer.Option(..., "--bfile", help="PLINK 1 prefix: PREFIX.bed, PREFIX.bim, PREFIX.fam."),
    pheno: str = typer.Option(None, "--pheno", help="Phenotype file: FID IID v1 v2 ... (-9/NA missing)."),
    out: str = typer.Option(..., "--out", help="Dataset URL to write."),
    force: bool = _force_option(),
) -> None:
    """Import PLINK 1 binary files (dosage counts allele A1, the .bim's 5th column)."""
    from genosynth.formats.plink import import_plink

    _check_out(out, force)
    with _report_warnings():
        dataset = import_plink(bfile, out, pheno=pheno)
    _summary(dataset)


@import_app.command("cfw")
def import_cfw_command(
    geno: str = typer.Option(..., "--geno", help="geno.txt: header 'id discard <snp ids>', a row per mouse."),
    map_file: str = typer.Option(..., "--map", help="map.txt: header 'id chr pos ref alt quality'."),
    pheno: str = typer.Option(..., "--pheno", help="pheno.csv: 'id' then phenotype/covariate columns."),
    out: str = typer.Option(..., "--out", help="Dataset URL to write."),
    force: bool = _force_option(),
) -> None:
    """Import the CFW/Dryad layout (non-integer dosages kept exactly)."""
    from genosynth.formats.cfw import import_cfw

    _check_out(out, force)
    with _report_warnings():
        dataset = import_cfw(geno, map_file, pheno, out)
    _summary(dataset)


def export_command(
    url: str = typer.Argument(..., help="Dataset URL."),
    format: ExportFormat = typer.Option(..., "--format", help="plink | bimbam | cfw"),
    out: str = typer.Option(..., "--out", help="PLINK/BIMBAM file prefix, or CFW folder."),
) -> None:
    """Export an internal dataset to PLINK 1, BIMBAM or the CFW layout."""
    from genosynth.formats.dataset import Dataset

    dataset = Dataset.open(url)
    if format is ExportFormat.plink:
        from genosynth.formats.plink import export_plink

        paths = export_plink(dataset, out)
    elif format is ExportFormat.bimbam:
        from genosynth.formats.bimbam import export_bimbam

        paths = export_bimbam(dataset, out)
    else:
        from genosynth.formats.cfw import export_cfw

        paths = export_cfw(dataset, out)
    typer.echo("wrote " + ", ".join(paths.values()))


def register(app: typer.Typer) -> None:
    """Add this area's commands to app."""
    app.add_typer(datasets_app, name="datasets")
    app.add_typer(import_app, name="import")
    app.command("export")(export_command)
