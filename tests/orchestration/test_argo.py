"""Argo manifests: fresh, valid under Argo v4.1's CRD schemas made strict, and carrying the conventions
the cluster relies on (GPU pool, semaphore, retries, metrics, exit handler, schedules)."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import pytest
import yaml

from genosynth import pipeline
from genosynth.runners import argo

from .conftest import REPO_ROOT


@pytest.fixture(scope="module")
def manifests() -> dict[str, dict]:
    return {m["kind"]: m for m in argo.render_manifests()}


def _templates(manifest: dict) -> dict[str, dict]:
    return {t["name"]: t for t in manifest["spec"]["templates"]}


def test_committed_workflows_are_fresh(tmp_path):
    """`genosynth workflows render` output equals the committed workflows/ (CI fails when stale)."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "genosynth",
            "workflows",
            "render",
            "--out",
            str(tmp_path / "out"),
            "--chart-dir",
            str(tmp_path / "chart"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    rendered = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert rendered == sorted(argo.FILE_NAMES.values()), result.stdout
    for name in rendered:
        committed = REPO_ROOT / "workflows" / name
        assert committed.exists(), f"workflows/{name} is not committed: run `make workflows`"
        assert (tmp_path / "out" / name).read_text() == committed.read_text(), (
            f"workflows/{name} is stale: run `make workflows`"
        )
        # The chart's copy comes from the same renderer, byte for byte.
        assert (tmp_path / "chart" / argo.CHART_SUBDIR / name).read_text() == committed.read_text()


def test_rendered_manifests_are_valid_under_the_strict_schema(manifests, strict_errors):
    for kind, manifest in manifests.items():
        assert strict_errors(manifest) == [], kind


def test_a_misspelled_field_fails_the_strict_schema(manifests, strict_errors):
    template = copy.deepcopy(manifests["WorkflowTemplate"])
    train = _templates(template)["train"]
    train["retryStrategy"]["retryPolcy"] = train["retryStrategy"].pop("retryPolicy")
    errors = strict_errors(template)
    assert any("retryPolcy" in e for e in errors), errors

    cron = copy.deepcopy(manifests["CronWorkflow"])
    cron["spec"]["schedule"] = cron["spec"]["schedules"][0]  # the pre-v3.6 singular form
    assert any("'schedule' was unexpected" in e for e in strict_errors(cron))


def test_dry_run_workflow_object_is_valid(strict_errors):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "genosynth",
            "submit",
            "--dataset-url",
            "gs://bucket/cohort",
            "--run-url",
            "gs://bucket/runs/r1",
            "-p",
            "spot=true",
            "--namespace",
            "science",
            "--dry-run",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    workflow = json.loads(result.stdout)
    assert workflow["spec"]["workflowTemplateRef"] == {"name": argo.WORKFLOW_TEMPLATE_NAME}
    parameters = {p["name"]: p["value"] for p in workflow["spec"]["arguments"]["parameters"]}
    assert parameters == {
        "dataset-url": "gs://bucket/cohort",
        "run-url": "gs://bucket/runs/r1",
        "spot": "true",
    }
    assert workflow["metadata"]["namespace"] == "science"
    assert strict_errors(workflow) == []
    broken = copy.deepcopy(workflow)
    broken["spec"]["workflowTemplateRef"]["nmae"] = "genosynth"
    assert strict_errors(broken)


def test_dag_mirrors_the_pipeline_and_fans_out_over_batch_groups(manifests):
    spec = manifests["WorkflowTemplate"]["spec"]
    templates = _templates(manifests["WorkflowTemplate"])
    tasks = {t["name"]: t for t in templates[spec["entrypoint"]]["dag"]["tasks"]}
    # A step whose GPU depends on the model family has a CPU twin task: train and train-cpu.
    twins = {s.name: [s.name, f"{s.name}-cpu"] if s.resources.model_dependent else [s.name]
             for s in pipeline.STEPS}
    assert twins["train"] == ["train", "train-cpu"]
    assert set(tasks) == {"configure"} | {t for s in pipeline.dag_steps() for t in twins[s.name]}
    for step in pipeline.dag_steps():
        expected = " && ".join(t for name in step.after for t in twins[name]) or "configure"
        assert tasks[step.name]["depends"] == expected
        args = templates[step.name]["container"]["args"]
        assert args[:4] == ["step", step.name, "--run", "{{workflow.parameters.run-url}}"]
        if step.per_batch:
            assert tasks[step.name]["withParam"] == "{{tasks.prep.outputs.parameters.batch-groups}}"
            assert "--batches" in args
    assert spec["onExit"] == "finalize"
    assert templates["finalize"]["container"]["args"][:2] == ["step", "finalize"]
    assert templates["prep"]["outputs"]["parameters"][0]["name"] == "batch-groups"


def test_training_template_asks_for_one_t4_behind_the_gpu_semaphore(manifests):
    train = _templates(manifests["WorkflowTemplate"])["train"]
    resources = train["container"]["resources"]
    assert resources["requests"]["nvidia.com/gpu"] == "1" == resources["limits"]["nvidia.com/gpu"]
    # The GPU pool is the `gpu-kind` parameter (GKE's accelerator label value), T4 by default.
    assert train["nodeSelector"] == {"cloud.google.com/gke-accelerator": "{{workflow.parameters.gpu-kind}}"}
    arguments = manifests["WorkflowTemplate"]["spec"]["arguments"]["parameters"]
    parameters = {p["name"]: p["value"] for p in arguments}
    assert parameters["gpu-kind"] == "nvidia-tesla-t4" and parameters["spot"] == "false"
    assert train["container"]["image"] == "{{workflow.parameters.image-gpu}}"
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in train["tolerations"]
    assert train["synchronization"]["semaphores"] == [
        {"configMapKeyRef": {"name": "genosynth-gpu-semaphore", "key": "gpus"}}
    ]
    assert "gke-spot" in train["podSpecPatch"] and "}}'" not in train["podSpecPatch"].replace("'{}'}}", "")
    retry = train["retryStrategy"]
    assert retry["retryPolicy"] == "Always" and int(retry["limit"]) >= 3 and retry["backoff"]["duration"]
    env = {e["name"]: e["value"] for e in train["container"]["env"]}
    assert env["GENOSYNTH_DEVICE_KIND"] == (
        "{{=workflow.parameters.spot == 'true' ? workflow.parameters['gpu-kind'] + '-spot' : "
        "workflow.parameters['gpu-kind']}}"
    )
    names = [m["name"] for m in train["metrics"]["prometheus"]]
    assert names == ["genosynth_argo_template_duration_seconds", "genosynth_argo_gpu_seconds"]
    # CPU steps take no GPU and no GPU semaphore slot.
    prep = _templates(manifests["WorkflowTemplate"])["prep"]
    assert (
        "nvidia.com/gpu" not in prep["container"]["resources"]["requests"] and "synchronization" not in prep
    )


def test_workflow_level_conventions(manifests):
    spec = manifests["WorkflowTemplate"]["spec"]
    assert spec["serviceAccountName"] == "genosynth"
    assert spec["activeDeadlineSeconds"] > 0 and spec["podGC"]["strategy"] and spec["ttlStrategy"]
    parameters = {p["name"] for p in spec["arguments"]["parameters"]}
    assert {"dataset-url", "run-url", "config", "image-cpu", "image-gpu"} <= parameters
    assert spec["securityContext"]["runAsNonRoot"] is True
    for template in spec["templates"]:
        if "container" in template:
            assert template["container"]["securityContext"]["readOnlyRootFilesystem"] is True
            assert template["metrics"]["prometheus"][0]["name"] == "genosynth_argo_template_duration_seconds"
    cron = manifests["CronWorkflow"]["spec"]
    assert cron["concurrencyPolicy"] == "Forbid" and cron["schedules"] == [argo.DEFAULT_SCHEDULE]
    assert cron["workflowSpec"]["workflowTemplateRef"] == {"name": "genosynth"}


def test_batch_groups_keep_the_workflow_small():
    """10,000 batches give 313 groups whose JSON (stored in the Workflow object) is a few kilobytes."""
    groups = pipeline.group_batches(range(10_000), argo.DEFAULT_BATCH_GROUP_SIZE)
    assert len(groups) == 313 and groups[0] == "0-31" and groups[-1] == "9984-9999"
    assert len(json.dumps(groups)) < 5_000
    assert [b for g in groups for b in pipeline.parse_ranges(g)] == list(range(10_000))
    assert pipeline.format_ranges([0, 1, 2, 5, 7, 8]) == "0-2,5,7-8"
    # Beyond 500 groups, groups grow instead: 100,000 batches still make at most 500 pods per fan-out step.
    huge = pipeline.group_batches(range(100_000), argo.DEFAULT_BATCH_GROUP_SIZE)
    assert len(huge) == 500 and huge[0] == "0-199" and len(json.dumps(huge)) < 10_000


def test_step_command_writes_batch_groups_for_withparam(tmp_path):
    """What prep's Argo task runs: the step, then the batch groups as JSON for `withParam`."""
    from genosynth import storage
    from genosynth.run_config import RunConfig
    from genosynth.run_state import BatchPlan

    run_url = str(tmp_path / "run")
    RunConfig(dataset_url="unused://dataset").save(run_url)
    BatchPlan.build({"batch": b, "chr": "1", "start": b, "stop": b + 1, "context_start": b,
                     "context_stop": b + 1, "run_start": 0, "positioned": True}
                    for b in range(70)).write(run_url)
    storage.commit(pipeline.marker_url(run_url, "prep"), {"step": "prep"})  # prep already committed
    out = tmp_path / "outputs" / "groups.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "genosynth",
            "step",
            "prep",
            "--run",
            run_url,
            "--batch-groups-out",
            str(out),
            "--group-size",
            "32",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "prep: already committed" in result.stdout
    assert json.loads(out.read_text()) == ["0-31", "32-63", "64-69"]


def test_committed_yaml_parses_to_the_rendered_dicts(manifests):
    for kind, name in argo.FILE_NAMES.items():
        assert yaml.safe_load((REPO_ROOT / "workflows" / name).read_text()) == manifests[kind]


def test_manifests_name_only_container_paths(manifests):
    """Absolute paths in the manifests are the pods' own mounts, never a path of the rendering machine."""

    def strings(value):
        if isinstance(value, dict):
            for item in value.values():
                yield from strings(item)
        elif isinstance(value, list):
            for item in value:
                yield from strings(item)
        elif isinstance(value, str):
            yield value

    paths = {s for m in manifests.values() for s in strings(m) if s.startswith("/")}
    assert paths == {"/tmp", "/genosynth-outputs", "/genosynth-outputs/batch-groups.json",
                     "/genosynth-outputs/pools", "/genosynth-outputs/pools/train"}


def test_mosaic_trains_on_the_cpu_pool_and_autoregressive_on_a_gpu(manifests):
    """Rendered output: train-cpu requests no GPU, takes no semaphore slot, runs the CPU image on the CPU
    pool and is billed as CPU cores; prep's train-pool output (from the run's model) picks the task."""
    templates = _templates(manifests["WorkflowTemplate"])
    cpu_train = templates["train-cpu"]
    assert cpu_train["container"]["args"][:2] == ["step", "train"]
    assert all("nvidia.com/gpu" not in cpu_train["container"]["resources"][k] for k in ("requests", "limits"))
    assert not {"nodeSelector", "tolerations", "synchronization", "podSpecPatch"} & set(cpu_train)
    assert cpu_train["container"]["image"] == "{{workflow.parameters.image-cpu}}"
    env = {e["name"]: e["value"] for e in cpu_train["container"]["env"]}
    assert (env["GENOSYNTH_DEVICE_KIND"], env["GENOSYNTH_DEVICE_COUNT"]) == ("cpu", "2")
    tasks = {t["name"]: t for t in templates["pipeline"]["dag"]["tasks"]}
    assert tasks["train"]["when"] == "{{tasks.prep.outputs.parameters.train-pool}} == gpu"
    assert tasks["train-cpu"]["when"] == "{{tasks.prep.outputs.parameters.train-pool}} == cpu"
    outputs = {p["name"]: p["valueFrom"]["path"] for p in templates["prep"]["outputs"]["parameters"]}
    assert outputs["train-pool"] == "/genosynth-outputs/pools/train"
    assert templates["prep"]["container"]["args"][-2:] == ["--device-pools-out", "/genosynth-outputs/pools"]
    assert argo.device_pools("mosaic") == {"train": "cpu"}
    assert argo.device_pools("autoregressive") == {"train": "gpu"}


@pytest.mark.parametrize(("model", "pool"), [("mosaic", "cpu"), ("autoregressive", "gpu")])
def test_prep_command_writes_the_pool_the_run_trains_on(tmp_path, model, pool):
    """What prep's Argo task runs writes the file its `train-pool` output reads."""
    from genosynth import storage
    from genosynth.run_config import RunConfig
    from genosynth.run_state import BatchPlan

    run_url = str(tmp_path / "run")
    RunConfig(dataset_url="unused://dataset", model=model).save(run_url)
    BatchPlan.build({"batch": b, "chr": "1", "start": b, "stop": b + 1, "context_start": b,
                     "context_stop": b + 1, "run_start": 0, "positioned": True}
                    for b in range(3)).write(run_url)
    storage.write_json(pipeline.marker_url(run_url, "prep"), {"step": "prep"})
    out = tmp_path / "outputs"
    result = subprocess.run(
        [sys.executable, "-m", "genosynth", "step", "prep", "--run", run_url, "--batch-groups-out",
         str(out / "groups.json"), "--device-pools-out", str(out / "pools")],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr
    assert (out / "pools" / "train").read_text() == pool


def test_step_pods_carry_no_kubernetes_token(manifests):
    spec = manifests["WorkflowTemplate"]["spec"]
    assert spec["automountServiceAccountToken"] is False
    assert spec["executor"] == {"serviceAccountName": "genosynth-executor"}
    readers = {t["name"] for t in spec["templates"] if t.get("serviceAccountName") == "genosynth-input"}
    declared = {s.name for s in pipeline.STEPS if s.reads_input}
    assert readers == {"configure"} | declared == {"configure", "prep"}
