"""Submit runs to Argo through the Kubernetes API, and report a run's status.

``genosynth submit`` creates a Workflow that references the ``genosynth`` WorkflowTemplate
(``workflowTemplateRef``) with the run's parameters, using the official ``kubernetes`` client with the
kubeconfig (or the in-cluster service account). Workflows carry the label ``genosynth.io/run`` (a hash
of the run URL) so that ``genosynth status RUN_URL`` finds the run's workflow again.

``status`` combines what the run's storage says (steps and batches committed: the truth, available
without a cluster), the workflow's phase and per-batch-group node states when a cluster is reachable,
and the cost ledger's totals.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

from genosynth import pipeline, run_layout, storage
from genosynth.errors import InputError
from genosynth.runners.argo import WORKFLOW_TEMPLATE_NAME

GROUP, VERSION, PLURAL = "argoproj.io", "v1alpha1", "workflows"
RUN_LABEL = "genosynth.io/run"
RUN_ANNOTATION = "genosynth.io/run-url"


def run_label(run_url: str) -> str:
    """Label value identifying a run (label values cannot hold URLs)."""
    return hashlib.sha256(run_url.rstrip("/").encode()).hexdigest()[:40]


def workflow_object(parameters: dict[str, str], *, namespace: str) -> dict[str, Any]:
    """The Workflow to create: a reference to the WorkflowTemplate plus the run's parameters."""
    if not parameters.get("run-url") or not parameters.get("dataset-url"):
        raise InputError("submit", "dataset-url and run-url parameters are required")
    run_url = parameters["run-url"]
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Workflow",
        "metadata": {
            "generateName": f"{WORKFLOW_TEMPLATE_NAME}-",
            "namespace": namespace,
            "labels": {RUN_LABEL: run_label(run_url), "app.kubernetes.io/name": "genosynth"},
            "annotations": {RUN_ANNOTATION: run_url},
        },
        "spec": {
            "workflowTemplateRef": {"name": WORKFLOW_TEMPLATE_NAME},
            "arguments": {"parameters": [{"name": k, "value": str(v)} for k, v in parameters.items()]},
        },
    }


def cluster_configured() -> bool:
    """True when a kubeconfig or an in-cluster service account is available."""
    kubeconfig = os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
    in_cluster = os.environ.get("KUBERNETES_SERVICE_HOST")
    return bool(in_cluster) or any(os.path.exists(p) for p in kubeconfig.split(os.pathsep) if p)


def _api(context: str | None = None) -> Any:
    from kubernetes import client, config

    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config()
    else:
        config.load_kube_config(context=context)
    return client.CustomObjectsApi()


def create_workflow(
    workflow: dict[str, Any], *, namespace: str, context: str | None = None
) -> dict[str, Any]:
    """Create ``workflow`` in ``namespace``; return the created object (with its generated name)."""
    if not cluster_configured():
        raise InputError("KUBECONFIG", "no kubeconfig and not in a cluster: cannot reach the Kubernetes API")
    return _api(context).create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, workflow)


def find_workflow(run_url: str, *, namespace: str, context: str | None = None) -> dict[str, Any] | None:
    """The newest workflow of the run, or None."""
    listed = _api(context).list_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, label_selector=f"{RUN_LABEL}={run_label(run_url)}"
    )
    items = sorted(listed.get("items", []), key=lambda w: w["metadata"].get("creationTimestamp", ""))
    return items[-1] if items else None


def storage_status(run_url: str) -> dict[str, Any]:
    """Steps and batches committed according to the run's markers."""
    markers = set(storage.list_keys(run_layout.url(run_url, run_layout.MARKERS)))
    batches_url = run_layout.url(run_url, run_layout.PREP_BATCHES)
    batches = pipeline.read_batches(run_url) if storage.exists(batches_url) else None
    steps: dict[str, Any] = {}
    for step in pipeline.STEPS:
        if step.per_batch:
            done = [b for b in batches or [] if f"{pipeline.node_id(step.name, b)}.json" in markers]
            steps[step.name] = {
                "batches_done": len(done),
                "batches_total": None if batches is None else len(batches),
            }
        else:
            steps[step.name] = {"committed": f"{step.name}.json" in markers}
    return steps


def workflow_status(workflow: dict[str, Any]) -> dict[str, Any]:
    """Phase of the workflow and the state of each pod node (per batch group for fan-out steps)."""
    status = workflow.get("status", {})
    nodes = []
    for node in status.get("nodes", {}).values():
        if node.get("type") != "Pod":
            continue
        parameters = {p["name"]: p.get("value") for p in node.get("inputs", {}).get("parameters", [])}
        nodes.append(
            {
                "template": node.get("templateName"),
                "batches": parameters.get("batches"),
                "phase": node.get("phase"),
                "message": node.get("message", ""),
            }
        )
    nodes.sort(key=lambda n: (str(n["template"]), str(n["batches"])))
    return {
        "name": workflow["metadata"]["name"],
        "phase": status.get("phase", "Pending"),
        "message": status.get("message", ""),
        "nodes": nodes,
    }


def run_status(run_url: str, *, namespace: str = "genosynth", context: str | None = None) -> dict[str, Any]:
    """Everything ``genosynth status`` shows, as data."""
    if not storage.exists(run_layout.url(run_url, run_layout.CONFIG)):
        raise InputError(run_url, "no config.json: not a genosynth run")
    from genosynth.compare_records import is_released

    report: dict[str, Any] = {"run": run_url, "steps": storage_status(run_url),
                              "released": is_released(run_url)}
    if cluster_configured():
        try:
            workflow = find_workflow(run_url, namespace=namespace, context=context)
            report["workflow"] = workflow_status(workflow) if workflow else None
        except Exception as exc:  # an unreachable cluster must not hide the storage view
            report["workflow_error"] = f"{type(exc).__name__}: {exc}"
    else:
        report["workflow_error"] = "no kubeconfig and not in a cluster"
    try:
        from genosynth.cost.ledger import summary
    except ImportError:
        summary = None
    if summary is not None:
        ledger = summary(run_url)
        report["ledger"] = {
            k: ledger[k]
            for k in (
                "dollars_spent",
                "gpu_hours",
                "cpu_hours",
                "budget_dollars",
                "remaining_dollars",
                "batches_done",
                "batches_total",
            )
            if k in ledger
        }
    return report


def format_status(report: dict[str, Any]) -> str:
    """Human-readable lines of :func:`run_status`."""
    lines = [f"run {report['run']}"]
    for name, state in report["steps"].items():
        if "batches_done" in state:
            total = "?" if state["batches_total"] is None else state["batches_total"]
            lines.append(f"  {name:<15} {state['batches_done']}/{total} batches committed")
        else:
            lines.append(f"  {name:<15} {'committed' if state['committed'] else 'pending'}")
    released = report.get("released")
    lines.append("synthetic cohort: " + {None: "not judged yet", True: "released (privacy gate passed)",
                                         False: "withheld (privacy gate failed)"}[released])
    workflow = report.get("workflow")
    if workflow:
        lines.append(f"workflow {workflow['name']}: {workflow['phase']} {workflow['message']}".rstrip())
        for node in workflow["nodes"]:
            batches = f" batches {node['batches']}" if node["batches"] else ""
            lines.append(f"  {node['template']}{batches}: {node['phase']} {node['message']}".rstrip())
    elif "workflow_error" in report:
        lines.append(f"workflow: unavailable ({report['workflow_error']})")
    else:
        lines.append("workflow: none submitted for this run")
    ledger = report.get("ledger")
    if ledger:
        lines.append(
            f"ledger: ${ledger['dollars_spent']:.4f} of ${ledger['budget_dollars']:.2f} "
            f"(GPU {ledger['gpu_hours']:.4f} h, CPU {ledger['cpu_hours']:.4f} core-h)"
        )
    return "\n".join(lines)
