"""``genosynth cost RUN_URL``: the run's ledger totals against its budget."""

from __future__ import annotations

import json

import typer


def cost(
    run_url: str = typer.Argument(..., help="Run URL (local path, file://, memory://, gs://)."),
    as_json: bool = typer.Option(False, "--json", help="Print the totals as one JSON object."),
    forget_metrics: bool = typer.Option(
        False, "--forget-metrics",
        help="Delete the run's Pushgateway groups (GENOSYNTH_PUSHGATEWAY); the ledger stays.",
    ),
) -> None:
    """GPU hours, CPU core-hours and dollars spent by a run, against its budget."""
    from genosynth.cost import ledger

    summary = ledger.summary(run_url)
    if forget_metrics:
        from genosynth.cost import publish

        deleted = publish.forget(run_url)
        typer.echo(f"deleted {deleted} Pushgateway groups of {run_url}", err=True)
    if as_json:
        typer.echo(json.dumps(summary, indent=2, sort_keys=True))
        return
    _print_table(summary)


def _print_table(summary: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    total = summary["batches_total"]
    console = Console()
    console.print(f"run {summary['run']}")
    console.print(
        f"spent ${summary['dollars_spent']:.2f} of ${summary['budget_dollars']:.2f} "
        f"(remaining ${summary['remaining_dollars']:.2f}); GPU {summary['gpu_hours']:.3f} h, "
        f"CPU {summary['cpu_hours']:.3f} core-h; batches {summary['batches_done']}/"
        f"{'?' if total is None else total}; {summary['attempts']} attempts, "
        f"{summary['failed_attempts']} failed"
    )
    table = Table("step", "attempts", "failed", "seconds", "dollars")
    for step, row in summary["by_step"].items():
        table.add_row(step, str(row["attempts"]), str(row["failed"]), f"{row['seconds']:.1f}",
                      f"{row['dollars']:.4f}")
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add ``genosynth cost`` to ``app``."""
    app.command("cost")(cost)
