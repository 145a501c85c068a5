"""The ``genosynth`` command line: one typer app; each area registers its commands."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from genosynth.errors import BudgetExceededError, InputError, PrivacyGateError

app = typer.Typer(
    name="genosynth",
    help="Synthetic genotype + phenotype cohorts that keep the cohort's GWAS.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
err_console = Console(stderr=True)


@app.callback()
def _root() -> None:
    """Synthetic genotype + phenotype cohorts that keep the cohort's GWAS."""


@app.command()
def version() -> None:
    """Print genosynth's version."""
    from genosynth import __version__

    typer.echo(__version__)


def _register() -> None:
    # Each module adds its commands to ``app``; imports stay cheap (heavy libraries load inside commands).
    from genosynth.cli import cost_commands, data_commands, gwas_commands, pipeline_commands

    for module in (data_commands, gwas_commands, pipeline_commands, cost_commands):
        module.register(app)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: maps our errors to one line on stderr and a distinct exit status.

    Usage errors (unknown option, bad value) exit 2 through typer itself; permanent storage errors
    (permission denied, not found, not a directory) exit 2 with one line too.
    """
    from genosynth.runners.lease import RunBusyError

    _register()
    try:
        app(args=argv)
    except (InputError, PrivacyGateError, BudgetExceededError, RunBusyError) as exc:
        _fail(str(exc), exc.exit_code)
    except _PERMANENT_OS_ERRORS as exc:
        # Not transient, so never retried: one line naming the path, exit 2 like any other bad input.
        where = exc.filename or "storage"
        _fail(f"{where}: {exc.strerror or exc}", InputError.exit_code)


# Storage errors that retrying cannot fix (a bad --out, a missing file, no permission).
_PERMANENT_OS_ERRORS = (PermissionError, FileNotFoundError, NotADirectoryError, IsADirectoryError,
                        FileExistsError)


def _fail(message: str, code: int) -> None:
    err_console.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    sys.exit(code)
