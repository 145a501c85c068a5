"""Render the pipeline DAG to Argo Workflows manifests with hera: a WorkflowTemplate and a CronWorkflow.

Every task runs the same command the local runner runs for a node, ``genosynth step NAME --run RUN``;
fan-out steps take a *group* of batches (``--batches 0-31``) so that thousands of batches give a few
hundred pods and a Workflow object far below etcd's 1 MB limit. The manifests are plain data:
:func:`render_manifests` returns them as dicts (the Helm chart ships the same files, written by
``genosynth workflows render --chart-dir``), :func:`write_manifests` writes the YAML.

Conventions (Argo v4): ``synchronization.semaphores`` (list form) caps concurrent GPUs from the ConfigMap
``genosynth-gpu-semaphore`` key ``gpus``; CronWorkflow ``schedules`` (list form); retries cover pods that
Failed because their node shut down (spot pre-emption) as well as Errors, with backoff, but not the exit
statuses that mean bad input (2) or a refused budget (4).

One source of truth: everything an installation may change is a workflow parameter
(:data:`INSTALLATION_PARAMETERS`) whose default the Helm chart sets; the chart edits nothing else but
metadata and the per-step resource overrides it is given. A step whose GPU depends on the model family
(``Resources.gpu_models``) becomes two tasks, the GPU one and ``<step>-cpu`` on the CPU pool, of which
prep's ``<step>-pool`` output picks one.

Identities: the pods run as ``genosynth`` (Workload Identity: the runs bucket) without a Kubernetes token;
the steps that read the input cohort (``Step.reads_input``, and ``configure``) as ``genosynth-input``
(also a reader of the input bucket); Argo's executor containers alone get the token of
``genosynth-executor``, the one account bound to the executor Role.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from hera.workflows import DAG, Container, CronWorkflow, Parameter, Task, WorkflowTemplate
from hera.workflows import models as m

from genosynth.cost import gate
from genosynth.pipeline import STEPS, Step, dag_steps, exit_steps
from genosynth.resources import Resources

WORKFLOW_TEMPLATE_NAME = "genosynth"
CRON_WORKFLOW_NAME = "genosynth-scheduled"
SERVICE_ACCOUNT = "genosynth"
GPU_SEMAPHORE_CONFIGMAP = "genosynth-gpu-semaphore"
GPU_SEMAPHORE_KEY = "gpus"
#: GKE labels GPU nodes with their accelerator under this key; its value is also the device kind the
#: ledger charges (a key of ``cost.prices``), so one parameter, ``gpu-kind``, names both.
GPU_NODE_LABEL = "cloud.google.com/gke-accelerator"
GPU_DEVICE_KIND = gate.DEFAULT_GPU_KIND
#: Set on every pod: the device kind the GPU pool bills (``-spot`` when ``spot=true``); the budget gate
#: prices GPU tasks at it, GPU pods report it as their own device.
GPU_KIND_ENV = gate.GPU_KIND_ENV
DEFAULT_IMAGE_CPU = "ghcr.io/genosynth/genosynth-cpu:0.1.0"
DEFAULT_IMAGE_GPU = "ghcr.io/genosynth/genosynth-gpu:0.1.0"
DEFAULT_BATCH_GROUP_SIZE = 32
DEFAULT_SCHEDULE = "0 3 * * 1"
FILE_NAMES = {
    "WorkflowTemplate": "genosynth-workflowtemplate.yaml",
    "CronWorkflow": "genosynth-cronworkflow.yaml",
}
CHART_SUBDIR = "files/workflows"

_SCRATCH = "/tmp"  # emptyDir: the root filesystem is read-only
_OUTPUTS = "/genosynth-outputs"  # emptyDir for files Argo reads back as output parameters
_GROUPS_FILE = f"{_OUTPUTS}/batch-groups.json"
_POOLS_DIR = f"{_OUTPUTS}/pools"  # prep writes <step> = gpu | cpu here: its `<step>-pool` outputs
_RUN = "{{workflow.parameters.run-url}}"
# Do not retry what a retry cannot fix: bad input (2) and a refused budget (4). Everything else, including
# pods Failed because a spot node was reclaimed (no usable exit code), is retried.
_RETRY_EXPRESSION = "lastRetry.status == 'Error' || !(lastRetry.exitCode in ['2', '4'])"
# Spot is optional: ``-p spot=true`` adds the GKE spot node label to the GPU pods' selector.
_SPOT_PATCH = (
    "{{=workflow.parameters.spot == 'true' ? "
    '\'{"nodeSelector": {"cloud.google.com/gke-spot": "true"} }\' : \'{}\'}}'
)
_GPU_KIND = (
    "{{=workflow.parameters.spot == 'true' ? workflow.parameters['gpu-kind'] + '-spot' : "
    "workflow.parameters['gpu-kind']}}"
)
_WORKFLOW_PARAMETERS = (
    ("dataset-url", "gs://genosynth-cohorts/cohort", "internal dataset URL to synthesise from"),
    ("run-url", "gs://genosynth-runs/run", "run URL: every output of the run goes under it"),
    ("config", "{}", "run configuration (JSON or YAML mapping; see genosynth.run_config.RunConfig)"),
    ("image-cpu", DEFAULT_IMAGE_CPU, "image for the CPU steps"),
    ("image-gpu", DEFAULT_IMAGE_GPU, "image for GPU training (CUDA torch)"),
    ("gpu-kind", GPU_DEVICE_KIND, f"GPU node pool ({GPU_NODE_LABEL} label) and the device kind it bills"),
    ("spot", "false", "true: GPU training on Spot VMs (billed at the <gpu-kind>-spot price)"),
    ("batch-group-size", str(DEFAULT_BATCH_GROUP_SIZE), "batches per training/generation pod"),
    ("pushgateway", "", "Prometheus Pushgateway URL for cost metrics (empty: none)"),
)
#: Every workflow parameter is installation-specific: the chart sets all their defaults from its values.
INSTALLATION_PARAMETERS = tuple(name for name, _, _ in _WORKFLOW_PARAMETERS)


def render_manifests(
    *,
    image_cpu: str = DEFAULT_IMAGE_CPU,
    image_gpu: str = DEFAULT_IMAGE_GPU,
    service_account: str = SERVICE_ACCOUNT,
    schedule: str = DEFAULT_SCHEDULE,
    dataset_url: str | None = None,
    run_url: str | None = None,
    steps: Sequence[Step] = STEPS,
) -> list[dict[str, Any]]:
    """The WorkflowTemplate and the CronWorkflow as dicts, ready for YAML or the Kubernetes API.

    Parameters
    ----------
    image_cpu, image_gpu : default image references of the workflow parameters of the same names.
    service_account : Kubernetes service account the pods run as (Workload Identity: no key files).
    schedule : cron schedule of the CronWorkflow.
    dataset_url, run_url : defaults of the corresponding workflow parameters.
    """
    defaults = {"image-cpu": image_cpu, "image-gpu": image_gpu}
    if dataset_url:
        defaults["dataset-url"] = dataset_url
    if run_url:
        defaults["run-url"] = run_url
    template = _workflow_template(defaults, service_account, steps)
    cron = _cron_workflow(schedule, service_account, dataset_url or _default("dataset-url"))
    return [template.to_dict(), cron.to_dict()]


def write_manifests(out_dir: str | Path, manifests: Sequence[dict[str, Any]]) -> list[Path]:
    """Write one YAML file per manifest into ``out_dir``; return the paths written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for manifest in manifests:
        path = out / FILE_NAMES[manifest["kind"]]
        path.write_text(to_yaml(manifest))
        written.append(path)
    return written


def to_yaml(manifest: dict[str, Any]) -> str:
    header = "# Generated by `genosynth workflows render` from services/genosynth/pipeline.py: do not edit.\n"
    return header + yaml.safe_dump(manifest, sort_keys=False, width=110)


# --- WorkflowTemplate ----------------------------------------------------------------------------------
def _workflow_template(
    defaults: dict[str, str], service_account: str, steps: Sequence[Step]
) -> WorkflowTemplate:
    exit_handlers = exit_steps(steps)
    with WorkflowTemplate(
        name=WORKFLOW_TEMPLATE_NAME,
        labels={"app.kubernetes.io/name": "genosynth", "app.kubernetes.io/component": "pipeline"},
        annotations={
            "workflows.argoproj.io/description": "genosynth: synthetic genotype + phenotype cohort "
            "that keeps the cohort's GWAS; one task per pipeline step, fan-out over SNP batch groups"
        },
        entrypoint="pipeline",
        on_exit=exit_handlers[0].name if exit_handlers else None,
        service_account_name=service_account,
        # Step containers parse untrusted files and never call the Kubernetes API: no token for them.
        # Argo mounts the executor account's token into its own init/wait containers only.
        automount_service_account_token=False,
        executor=m.ExecutorConfig(service_account_name=executor_account(service_account)),
        arguments=[
            Parameter(name=n, value=defaults.get(n, v), description=d) for n, v, d in _WORKFLOW_PARAMETERS
        ],
        active_deadline_seconds=2 * 24 * 3600,
        pod_gc=m.PodGC(strategy="OnPodSuccess", delete_delay_duration="10m"),
        ttl_strategy=m.TTLStrategy(seconds_after_success=24 * 3600, seconds_after_failure=7 * 24 * 3600),
        security_context=m.PodSecurityContext(
            run_as_non_root=True,
            run_as_user=10001,
            run_as_group=10001,
            fs_group=10001,
            seccomp_profile=m.SeccompProfile(type="RuntimeDefault"),
        ),
        volumes=[
            m.Volume(name="scratch", empty_dir=m.EmptyDirVolumeSource()),
            m.Volume(name="outputs", empty_dir=m.EmptyDirVolumeSource()),
        ],
        pod_metadata=m.Metadata(labels={"app.kubernetes.io/name": "genosynth"}),
    ) as workflow:
        reader = input_account(service_account)
        configure = _configure_template(reader)
        variants = {s.name: _step_templates(s, steps, reader) for s in steps}
        # Task names of each step: a model-dependent step has two, of which one runs and one is Skipped
        # (Argo's `depends: "A"` accepts A Succeeded or Skipped).
        task_names = {name: [v.name for v in found] for name, found in variants.items()}
        with DAG(name="pipeline"):
            Task(name="configure", template=configure)
            for step in dag_steps(steps):
                after = [t for name in step.after for t in task_names[name]] or ["configure"]
                kwargs: dict[str, Any] = {}
                if step.per_batch:
                    kwargs["with_param"] = "{{tasks.prep.outputs.parameters.batch-groups}}"
                    kwargs["arguments"] = [Parameter(name="batches", value="{{item}}")]
                for variant in variants[step.name]:
                    when = None
                    if step.resources.model_dependent:
                        pool = "cpu" if variant.name.endswith("-cpu") else "gpu"
                        when = f"{{{{tasks.prep.outputs.parameters.{pool_output(step.name)}}}}} == {pool}"
                    Task(name=variant.name, template=variant, depends=" && ".join(after), when=when, **kwargs)
    return workflow


def executor_account(service_account: str = SERVICE_ACCOUNT) -> str:
    """The ServiceAccount of Argo's executor containers: the only one bound to the executor Role."""
    return f"{service_account}-executor"


def input_account(service_account: str = SERVICE_ACCOUNT) -> str:
    """The ServiceAccount of the pods that read the input cohort (Workload Identity: its reader)."""
    return f"{service_account}-input"


def pool_output(step_name: str) -> str:
    """Name of prep's output parameter that says where ``step_name``'s tasks run: ``gpu`` or ``cpu``."""
    return f"{step_name}-pool"


def device_pools(model: str, steps: Sequence[Step] = STEPS) -> dict[str, str]:
    """``{step: "gpu" | "cpu"}`` for each step whose GPU depends on the model family, for ``model``."""
    return {
        s.name: "gpu" if s.resources.gpus_for(model) else "cpu" for s in steps if s.resources.model_dependent
    }


def write_device_pools(run_url: str, out_dir: str | Path, steps: Sequence[Step] = STEPS) -> None:
    """Write ``out_dir/<step>`` (``gpu`` or ``cpu``) for the run's model family: prep's Argo outputs."""
    from genosynth.run_config import RunConfig

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, pool in device_pools(RunConfig.load(run_url).model, steps).items():
        (out / name).write_text(pool)


def _configure_template(service_account: str) -> Container:
    # Writes RUN/config.json (or checks it against an existing run's): the Argo counterpart of what
    # `genosynth run` does before running the DAG locally.
    return _container(
        "configure",
        [
            "run",
            "{{workflow.parameters.dataset-url}}",
            "--out",
            _RUN,
            "--config-text",
            "{{workflow.parameters.config}}",
            "--init-only",
        ],
        cpu="250m",
        memory="512Mi",
        service_account=service_account,
    )


def _step_templates(step: Step, steps: Sequence[Step], reader: str) -> list[Container]:
    """The cluster template(s) of ``step``: its own, and for a model-dependent GPU step a CPU twin."""
    account = reader if step.reads_input else None
    found = [_step_template(step, step.name, step.resources.gpu, steps, account)]
    if step.resources.model_dependent:
        found.append(_step_template(step, f"{step.name}-cpu", 0, steps, account))
    return found


def _step_template(
    step: Step, name: str, gpu: int, steps: Sequence[Step], service_account: str | None
) -> Container:
    args = ["step", step.name, "--run", _RUN]
    inputs = None
    outputs = None
    if step.per_batch:
        args += ["--batches", "{{inputs.parameters.batches}}"]
        inputs = [Parameter(name="batches", description="batch numbers as ranges, e.g. 0-31")]
    if step.name == "prep":
        args += [
            "--batch-groups-out",
            _GROUPS_FILE,
            "--group-size",
            "{{workflow.parameters.batch-group-size}}",
        ]
        outputs = [Parameter(name="batch-groups", value_from=m.ValueFrom(path=_GROUPS_FILE))]
        dependent = [s.name for s in steps if s.resources.model_dependent]
        if dependent:
            args += ["--device-pools-out", _POOLS_DIR]
            outputs += [
                Parameter(name=pool_output(n), value_from=m.ValueFrom(path=f"{_POOLS_DIR}/{n}"))
                for n in dependent
            ]
    return _container(
        name,
        args,
        cpu=step.resources.cpu,
        memory=step.resources.memory,
        gpu=gpu,
        inputs=inputs,
        outputs=outputs,
        service_account=service_account,
    )


def _container(
    name: str,
    args: list[str],
    *,
    cpu: str,
    memory: str,
    gpu: int = 0,
    inputs: list[Parameter] | None = None,
    outputs: list[Parameter] | None = None,
    service_account: str | None = None,
) -> Container:
    requests = {"cpu": cpu, "memory": memory}
    limits = {"memory": memory}
    kind, count = ("cpu", str(Resources(cpu=cpu).billed_cores))
    extra: dict[str, Any] = {}
    if service_account:
        extra["service_account_name"] = service_account
    if gpu:
        requests["nvidia.com/gpu"] = limits["nvidia.com/gpu"] = str(gpu)
        kind, count = _GPU_KIND, str(gpu)
        extra |= {
            "node_selector": {GPU_NODE_LABEL: "{{workflow.parameters.gpu-kind}}"},
            "tolerations": [
                m.Toleration(key="nvidia.com/gpu", operator="Exists", effect="NoSchedule"),
                m.Toleration(
                    key="cloud.google.com/gke-spot", operator="Equal", value="true", effect="NoSchedule"
                ),
            ],
            "pod_spec_patch": _SPOT_PATCH,
            "synchronization": m.Synchronization(
                semaphores=[
                    m.SemaphoreRef(
                        config_map_key_ref=m.ConfigMapKeySelector(
                            name=GPU_SEMAPHORE_CONFIGMAP, key=GPU_SEMAPHORE_KEY
                        )
                    )
                ]
            ),
        }
    return Container(
        name=name,
        image="{{workflow.parameters.image-gpu}}" if gpu else "{{workflow.parameters.image-cpu}}",
        # Images are pinned (a version tag, or tag@sha256 digest): a node's cached copy is the same image.
        image_pull_policy="IfNotPresent",
        command=["genosynth"],
        args=args,
        inputs=inputs,
        outputs=outputs,
        env=[
            m.EnvVar(name="GENOSYNTH_DEVICE_KIND", value=kind),
            m.EnvVar(name="GENOSYNTH_DEVICE_COUNT", value=count),
            m.EnvVar(name=GPU_KIND_ENV, value=_GPU_KIND),
            m.EnvVar(name="GENOSYNTH_PUSHGATEWAY", value="{{workflow.parameters.pushgateway}}"),
            m.EnvVar(name="HOME", value=_SCRATCH),
            m.EnvVar(name="TMPDIR", value=_SCRATCH),
            m.EnvVar(name="MPLCONFIGDIR", value=_SCRATCH),
        ],
        resources=m.ResourceRequirements(requests=requests, limits=limits),
        volume_mounts=[
            m.VolumeMount(name="scratch", mount_path=_SCRATCH),
            m.VolumeMount(name="outputs", mount_path=_OUTPUTS),
        ],
        working_dir=_SCRATCH,
        security_context=m.SecurityContext(
            allow_privilege_escalation=False,
            read_only_root_filesystem=True,
            run_as_non_root=True,
            capabilities=m.Capabilities(drop=["ALL"]),
        ),
        retry_strategy=m.RetryStrategy(
            limit=6 if gpu else 3,
            retry_policy="Always",
            expression=_RETRY_EXPRESSION,
            backoff=m.Backoff(duration="30s" if gpu else "10s", factor=2, max_duration="2h", cap="10m"),
            # A retried pod goes to another node: the one it failed on may be the one being reclaimed.
            affinity=m.RetryAffinity(node_anti_affinity=m.RetryNodeAntiAffinity()),
        ),
        active_deadline_seconds=12 * 3600 if gpu else 6 * 3600,
        metrics=m.Metrics(prometheus=_metrics(name, gpu)),
        **extra,
    )


def _metrics(template: str, gpu: int) -> list[m.Prometheus]:
    labels = [m.MetricLabel(key="template", value=template), m.MetricLabel(key="status", value="{{status}}")]
    metrics = [
        m.Prometheus(
            name="genosynth_argo_template_duration_seconds",
            help="Wall-clock seconds of a genosynth template run (pod), by template and status",
            labels=labels,
            gauge=m.Gauge(value="{{duration}}", realtime=False),
        )
    ]
    if gpu:
        metrics.append(
            m.Prometheus(
                name="genosynth_argo_gpu_seconds",
                help="GPU-seconds held by genosynth GPU templates (duration x requested GPUs)",
                labels=labels,
                counter=m.Counter(value=f"{{{{=asFloat(duration) * {gpu}}}}}"),
            )
        )
    return metrics



# --- CronWorkflow ---------------------------------------------------------------------------------------
def _default(parameter: str) -> str:
    return next(value for name, value, _ in _WORKFLOW_PARAMETERS if name == parameter)


def _cron_workflow(schedule: str, service_account: str, dataset_url: str) -> CronWorkflow:
    return CronWorkflow(
        name=CRON_WORKFLOW_NAME,
        labels={"app.kubernetes.io/name": "genosynth", "app.kubernetes.io/component": "scheduled-run"},
        schedules=[schedule],
        timezone="UTC",
        concurrency_policy="Forbid",
        starting_deadline_seconds=3600,
        successful_jobs_history_limit=3,
        failed_jobs_history_limit=3,
        service_account_name=service_account,
        workflow_template_ref=m.WorkflowTemplateRef(name=WORKFLOW_TEMPLATE_NAME),
        # Each scheduled run gets its own run URL (the workflow's generated name).
        arguments=[
            Parameter(name="run-url", value="gs://genosynth-runs/scheduled/{{workflow.name}}"),
            Parameter(name="dataset-url", value=dataset_url),
        ],
    )
