"""Commands of the orchestration area: ``run``, ``step``, ``workflows render``, ``submit``, ``status``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from genosynth.errors import InputError, PrivacyGateError

workflows_app = typer.Typer(
    help="Argo Workflows manifests rendered from the pipeline DAG.", no_args_is_help=True
)


def _split(values: str | None) -> list[str] | None:
    if values is None:
        return None
    return [v.strip() for v in values.split(",") if v.strip()]


def build_config(
    dataset_url: str, *, config_file: str | None = None, config_text: str | None = None, **overrides: Any
) -> Any:
    """A RunConfig from an optional file or inline YAML/JSON text, with command-line overrides winning."""
    import yaml

    from genosynth.run_config import RunConfig

    overrides = {k: v for k, v in overrides.items() if v is not None}
    overrides["dataset_url"] = dataset_url
    if config_file and config_text:
        raise InputError("--config", "give either --config FILE or --config-text TEXT, not both")
    if config_file:
        return RunConfig.from_file(config_file, **overrides)
    data: dict[str, Any] = {}
    if config_text and config_text.strip():
        try:
            data = yaml.safe_load(config_text) or {}
        except yaml.YAMLError as exc:
            raise InputError("--config-text", f"not valid YAML/JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise InputError(
                "--config-text", f"expected a mapping of config keys, found {type(data).__name__}"
            )
    data.update(overrides)
    return RunConfig.from_dict(data, source="--config-text" if config_text else "command line")


def run(
    dataset_url: str = typer.Argument(..., help="Internal dataset URL (see `genosynth import`)."),
    out: str = typer.Option(..., "--out", help="Run URL: every output of the run goes under it."),
    config: str | None = typer.Option(None, "--config", help="Run config file (YAML or JSON)."),
    config_text: str | None = typer.Option(None, "--config-text", help="Run config as inline YAML/JSON."),
    traits: str | None = typer.Option(None, "--traits", help="Traits to keep, comma-separated."),
    covariates: str | None = typer.Option(None, "--covariates", help="Covariates, comma-separated."),
    seed: int | None = typer.Option(None, "--seed", help="Seed of every random choice of the run."),
    model: str | None = typer.Option(None, "--model", help="Genotype model family."),
    budget: float | None = typer.Option(None, "--budget", help="Dollar budget of the run."),
    allow_privacy_failure: bool = typer.Option(
        False, "--allow-privacy-failure", help="Exit 0 even when the privacy gate fails."
    ),
    max_parallel: int | None = typer.Option(None, "--max-parallel", help="Most steps/batches at once."),
    init_only: bool = typer.Option(False, "--init-only", help="Only write (or check) RUN/config.json."),
    wait: float = typer.Option(
        0.0, "--wait", min=0.0, help="Seconds to wait for another run holding this run URL to finish."
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bars on stderr."),
) -> None:
    """Run the whole pipeline locally (resuming a stopped run with the same settings).

    The whole request is checked before anything is written: the config's types and ranges, the traits
    and covariates against the dataset, the model and its options, and the run URL (writable, not a
    dataset, not the input). One run at a time holds a run URL (``RUN/_lease.json``).

    Exit status: 0 done; 2 bad input; 3 privacy gate failed (unless --allow-privacy-failure);
    4 budget refused; 5 another run holds the run URL; 1 a step failed.
    """
    from genosynth.formats.dataset import Dataset
    from genosynth.run_config import validate_request
    from genosynth.runners import lease
    from genosynth.runners.local import StepFailedError, check_run_destination, prepare_run, run_pipeline

    settings = build_config(
        dataset_url,
        config_file=config,
        config_text=config_text,
        traits=_split(traits),
        covariates=_split(covariates),
        seed=seed,
        model=model,
        budget_dollars=budget,
        allow_privacy_failure=True if allow_privacy_failure else None,
        max_parallel=max_parallel,
    )
    source = config or ("--config-text" if config_text else "command line")
    validate_request(settings, Dataset.open(dataset_url), source=source)
    check_run_destination(out, dataset_url)
    # Everything above only read; from here on the run URL is written, by one run at a time.
    with lease.acquire(out, wait=wait) as held:
        settings = prepare_run(out, settings)
        if init_only:
            typer.echo(f"run configured: {out}")
            return
        try:
            summary = run_pipeline(
                out, max_parallel=settings.max_parallel, progress=progress, keep_going=held.alive
            )
        except StepFailedError as exc:
            typer.echo(f"error: {exc}", err=True)
            if exc.detail:
                typer.echo(exc.detail, err=True)
            raise typer.Exit(1) from exc
    typer.echo(
        f"run complete: {out} ({len(summary.ran)} tasks ran, {len(summary.skipped)} already committed, "
        f"{summary.seconds:.0f} s); report: {out.rstrip('/')}/report/index.html"
    )
    _check_privacy_gate(out, allow=settings.allow_privacy_failure)


def _check_privacy_gate(run_url: str, *, allow: bool) -> None:
    from genosynth.compare_records import read_gate

    gate = read_gate(run_url)
    if gate.passed:
        return
    failures = "; ".join(gate.failures) or "see compare/gate.json"
    if allow:
        typer.echo(
            f"warning: privacy gate failed ({failures}); accepted by --allow-privacy-failure", err=True
        )
        return
    raise PrivacyGateError(
        f"{run_url}: privacy gate failed: {failures}. The synthetic cohort is marked "
        "unreleased; rerun with --allow-privacy-failure to accept it anyway"
    )


def step(
    name: str = typer.Argument(..., help="Step name (see `genosynth.pipeline`)."),
    run_url: str = typer.Option(..., "--run", help="Run URL."),
    batch: int | None = typer.Option(None, "--batch", help="Batch number of a fan-out step."),
    batches: str | None = typer.Option(
        None, "--batches", help="Batch ranges of a fan-out step, e.g. 0-31,40."
    ),
    batch_groups_out: str | None = typer.Option(
        None, "--batch-groups-out", help="(prep) write the batch groups as a JSON list here."
    ),
    group_size: int = typer.Option(32, "--group-size", min=1, help="(prep) batches per group."),
    device_pools_out: str | None = typer.Option(
        None, "--device-pools-out", help="(prep) write DIR/<step>: gpu or cpu, where the run's model trains."
    ),
) -> None:
    """Run one step of a run (what an Argo task runs); a committed step or batch is skipped."""
    from genosynth import pipeline
    from genosynth.runners.step import execute_step

    if batch is not None and batches is not None:
        raise InputError("--batches", "give either --batch K or --batches RANGES, not both")
    numbers = pipeline.parse_ranges(batches) if batches is not None else [batch]
    for number in numbers:
        outcome = execute_step(run_url, name, number)
        what = pipeline.node_id(name, number)
        typer.echo(
            f"{what}: done in {outcome.seconds:.1f} s" if outcome.ran else f"{what}: already committed"
        )
    if batch_groups_out:
        groups = pipeline.group_batches(pipeline.read_batches(run_url), group_size)
        path = Path(batch_groups_out)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(groups))
    if device_pools_out:
        from genosynth.runners.argo import write_device_pools

        write_device_pools(run_url, device_pools_out)


@workflows_app.command("render")
def render(
    out: Path = typer.Option(..., "--out", help="Folder for the rendered YAML (the repo's workflows/)."),
    chart_dir: Path | None = typer.Option(
        None, "--chart-dir", help="Also write the Helm chart's copy under CHART/files/workflows."
    ),
    image_cpu: str | None = typer.Option(None, "--image-cpu", help="Default CPU image."),
    image_gpu: str | None = typer.Option(None, "--image-gpu", help="Default GPU image."),
    service_account: str | None = typer.Option(
        None, "--service-account", help="Service account of the pods."
    ),
    schedule: str | None = typer.Option(None, "--schedule", help="Cron schedule of the CronWorkflow."),
) -> None:
    """Render the Argo WorkflowTemplate and CronWorkflow from the pipeline DAG."""
    from genosynth.runners import argo

    options = {
        k: v
        for k, v in dict(
            image_cpu=image_cpu, image_gpu=image_gpu, service_account=service_account, schedule=schedule
        ).items()
        if v
    }
    manifests = argo.render_manifests(**options)
    targets = [out] + ([chart_dir / argo.CHART_SUBDIR] if chart_dir else [])
    for target in targets:
        for path in argo.write_manifests(target, manifests):
            typer.echo(str(path))


def submit(
    dataset_url: str = typer.Option(..., "--dataset-url", help="Internal dataset URL (gs://...)."),
    run_url: str = typer.Option(..., "--run-url", help="Run URL (gs://...)."),
    config: str | None = typer.Option(
        None, "--config", help="Run config file, passed as the config parameter."
    ),
    namespace: str = typer.Option(
        "genosynth", "--namespace", "-n", help="Namespace of the WorkflowTemplate."
    ),
    param: list[str] = typer.Option(
        [], "--param", "-p", help="Extra workflow parameter NAME=VALUE (repeatable)."
    ),
    kube_context: str | None = typer.Option(None, "--context", help="kubeconfig context."),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Print the Workflow object instead of creating it."
    ),
) -> None:
    """Create a Workflow from the genosynth WorkflowTemplate through the Kubernetes API."""
    from genosynth import storage
    from genosynth.runners import submit as submitter

    parameters = {"dataset-url": dataset_url, "run-url": run_url}
    if config:
        parameters["config"] = storage.read_text(config)
    for item in param:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InputError("--param", f"expected NAME=VALUE, found {item!r}")
        parameters[key] = value
    workflow = submitter.workflow_object(parameters, namespace=namespace)
    if dry_run:
        typer.echo(json.dumps(workflow, indent=2))
        return
    created = submitter.create_workflow(workflow, namespace=namespace, context=kube_context)
    typer.echo(f"submitted workflow {created['metadata']['name']} in namespace {namespace}")


def status(
    run_url: str = typer.Argument(..., help="Run URL."),
    namespace: str = typer.Option("genosynth", "--namespace", "-n", help="Namespace of the run's workflow."),
    kube_context: str | None = typer.Option(None, "--context", help="kubeconfig context."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show a run's progress: steps and batches committed, its Argo workflow (when one exists), its ledger."""
    from genosynth.runners import submit as submitter

    report = submitter.run_status(run_url, namespace=namespace, context=kube_context)
    if as_json:
        typer.echo(json.dumps(report, indent=2, default=str))
        return
    typer.echo(submitter.format_status(report))


def register(app: typer.Typer) -> None:
    """Add this area's commands to app."""
    app.command()(run)
    app.command()(step)
    app.command()(submit)
    app.command()(status)
    app.add_typer(workflows_app, name="workflows")
