"""The Helm chart: values against their schema, templates against values and files, and the shipped
Argo manifests against the pipeline DAG and Argo's object model. With ``helm`` on PATH, the chart is also
linted and rendered, and the rendered objects are checked the same way."""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from hera.workflows import models as argo_models

from genosynth.runners import argo

CHART = Path(__file__).resolve().parents[2] / "charts" / "genosynth"
TEMPLATES = CHART / "templates"
HELM = shutil.which("helm") or shutil.which("helm", path=str(Path(sys.executable).parent))
ARGO_SCHEMAS = CHART.parents[2] / "shared" / "schemas" / "argo-v4.1"
#: Kubernetes release whose OpenAPI schemas the rendered core objects are checked against (kubectl v1.35
#: comes with helm from .ci/install-helm.sh).
KUBERNETES_VERSION = "1.35.0"


@pytest.fixture(scope="module")
def helm() -> str:
    # Never skipped: CI installs helm with .ci/install-helm.sh, and so can anyone.
    if HELM is None:
        pytest.fail("helm is not on PATH: run `bash .ci/install-helm.sh /usr/local/bin` (docs/deploy.md)")
    return HELM


def _values() -> dict[str, Any]:
    return yaml.safe_load((CHART / "values.yaml").read_text())


def _validator() -> jsonschema.Draft7Validator:
    schema = json.loads((CHART / "values.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def _errors(values: dict[str, Any]) -> list[str]:
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in _validator().iter_errors(values)]


def _with(path: str, value: Any) -> dict[str, Any]:
    values = copy.deepcopy(_values())
    *parents, last = path.split(".")
    node = values
    for key in parents:
        node = node[key]
    node[last] = value
    return values


# --- values and schema ---------------------------------------------------------------------------------
def test_default_values_validate_against_the_schema():
    assert _errors(_values()) == []


def _schema_objects(node: Any = None, where: str = "$") -> list[tuple[str, dict]]:
    """Every JSON object of values.schema.json with its path, parents first."""
    if node is None:
        node = json.loads((CHART / "values.schema.json").read_text())
    found: list[tuple[str, dict]] = []
    if isinstance(node, dict):
        found.append((where, node))
        for key, child in node.items():
            found.extend(_schema_objects(child, f"{where}.{key}"))
    elif isinstance(node, list):
        for i, child in enumerate(node):
            found.extend(_schema_objects(child, f"{where}[{i}]"))
    return found


def test_schema_closes_every_object():
    for where, node in _schema_objects():
        if node.get("type") == "object":
            assert node.get("additionalProperties") is False, f"{where} accepts unknown keys"


@pytest.mark.parametrize("path", ["imageCpu", "gpu.maxConcurent", "metrics.serviceMonitor.intervall",
                                  "pipeline.config.budget_dollars"])
def test_unknown_keys_are_refused(path):
    errors = _errors(_with(path, 1))
    assert errors, f"{path} was accepted"


@pytest.mark.parametrize(("path", "value"), [
    ("gpu.maxConcurrent", "eight"),
    ("gpu.maxConcurrent", 0),
    ("cost.budgetDollars", "lots"),
    ("schedule.enabled", "yes"),
    ("image.gpu.tag", "latest"),
    ("cost.prices", {"nvidia-tesla-t4": "cheap"}),
    ("storage.bucketUrl", "genosynth-runs"),
    ("serviceAccount.gcpServiceAccount", "not-an-email"),
])
def test_wrongly_typed_values_are_refused(path, value):
    assert _errors(_with(path, value)), f"{path}={value!r} was accepted"


def test_values_carry_what_an_installation_sets():
    values = _values()
    assert values["serviceAccount"]["gcpServiceAccount"].endswith(".iam.gserviceaccount.com")
    assert values["metrics"]["grafanaDashboard"]["labels"] == {"grafana_dashboard": "1"}
    assert values["cost"]["budgetDollars"] == 1440
    assert values["cost"]["prices"]["nvidia-tesla-t4"] == 0.35
    assert values["gpu"]["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-tesla-t4"}


def test_chart_metadata():
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2"
    assert chart["name"] == "genosynth"
    assert re.fullmatch(r"\d+\.\d+\.\d+", chart["version"])
    from genosynth import __version__

    assert chart["appVersion"] == __version__


# --- templates, without helm -----------------------------------------------------------------------------
def _template_texts() -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(TEMPLATES.iterdir()) if p.is_file()}


def test_templates_use_only_values_that_exist():
    values = _values()
    for name, text in _template_texts().items():
        for path in re.findall(r"\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)", text):
            node: Any = values
            for key in path.strip(".").split("."):
                assert isinstance(node, dict) and key in node, f"{name}: .Values{path} is not in values.yaml"
                node = node[key]


def test_templates_read_files_that_exist_and_define_what_they_include():
    texts = _template_texts()
    defined = set(re.findall(r'define "([^"]+)"', texts["_helpers.tpl"]))
    for name, text in texts.items():
        for path in re.findall(r'\.Files\.Get "([^"]+)"', text):
            assert (CHART / path).is_file(), f"{name} reads missing {path}"
        for included in re.findall(r'include "([^"]+)"', text):
            assert included in defined, f"{name} includes undefined {included}"
        assert text.count("{{") == text.count("}}"), f"{name}: unbalanced template braces"


def _static_render(text: str) -> Any:
    # Good enough for templates whose structure is static: every action becomes a plain word.
    return list(yaml.safe_load_all(re.sub(r"\{\{-?.*?-?\}\}", "placeholder", text)))


def test_executor_role_is_least_privilege():
    role, binding = _static_render((TEMPLATES / "rbac.yaml").read_text())
    rules = {(tuple(r["apiGroups"]), tuple(r["resources"])): sorted(r["verbs"]) for r in role["rules"]}
    assert rules == {(("argoproj.io",), ("workflowtaskresults",)): ["create", "patch"]}
    assert role["kind"] == "Role" and binding["roleRef"]["kind"] == "Role"


def test_semaphore_configmap_matches_the_workflow_reference():
    text = (TEMPLATES / "gpu-semaphore.yaml").read_text()
    assert f"name: {argo.GPU_SEMAPHORE_CONFIGMAP}" in text
    assert f"  {argo.GPU_SEMAPHORE_KEY}: " in text


def test_rules_and_dashboard_come_from_the_tested_files():
    texts = _template_texts()
    assert '.Files.Get "files/prometheus-rules.yaml"' in texts["prometheusrule.yaml"]
    assert '.Files.Get "files/dashboard.json"' in texts["grafana-dashboard.yaml"]
    assert '.Files.Get "files/workflows/genosynth-workflowtemplate.yaml"' in texts["workflowtemplate.yaml"]
    assert '.Files.Get "files/workflows/genosynth-cronworkflow.yaml"' in texts["cronworkflow.yaml"]


# --- the Argo manifests the chart ships ------------------------------------------------------------------
def _shipped() -> dict[str, dict[str, Any]]:
    return {p.name: yaml.safe_load(p.read_text()) for p in sorted((CHART / argo.CHART_SUBDIR).glob("*.yaml"))}


def test_shipped_workflows_are_the_rendered_pipeline():
    # One source: the chart's copy is what `genosynth workflows render --chart-dir` writes today.
    expected = {argo.FILE_NAMES[m["kind"]]: argo.to_yaml(m) for m in argo.render_manifests()}
    shipped = {p.name: p.read_text() for p in (CHART / argo.CHART_SUBDIR).glob("*.yaml")}
    assert shipped == expected, "stale chart copy: run `genosynth workflows render --out workflows " \
                                "--chart-dir charts/genosynth`"


def _strict_argo(doc: dict[str, Any]) -> None:
    """Parse with Argo's object model and require a lossless round trip (an unknown field is dropped)."""
    models = {"WorkflowTemplate": argo_models.WorkflowTemplate, "CronWorkflow": argo_models.CronWorkflow}
    model = models[doc["kind"]]
    parsed = model.model_validate(doc).model_dump(by_alias=True, exclude_none=True, mode="json")
    assert parsed == doc, f"{doc['kind']} has fields Argo does not know"


def test_shipped_workflows_are_valid_argo_objects():
    for doc in _shipped().values():
        _strict_argo(doc)
    template = _shipped()["genosynth-workflowtemplate.yaml"]
    template["spec"]["entrypointt"] = "pipeline"
    with pytest.raises(AssertionError, match="fields Argo does not know"):
        _strict_argo(template)


def _assert_locked_down(workflow_template: dict[str, Any]) -> None:
    spec = workflow_template["spec"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    scratch = {v["name"] for v in spec["volumes"] if "emptyDir" in v}
    containers = [t for t in spec["templates"] if "container" in t]
    assert containers
    for template in containers:
        context = template["container"]["securityContext"]
        assert context["runAsNonRoot"] is True, template["name"]
        assert context["readOnlyRootFilesystem"] is True, template["name"]
        assert context["capabilities"] == {"drop": ["ALL"]}, template["name"]
        assert context["allowPrivilegeEscalation"] is False, template["name"]
        mounts = {v["mountPath"]: v["name"] for v in template["container"]["volumeMounts"]}
        assert mounts["/tmp"] in scratch, template["name"]


def test_shipped_pods_run_locked_down():
    _assert_locked_down(_shipped()["genosynth-workflowtemplate.yaml"])


# --- with helm -------------------------------------------------------------------------------------------
ALL_ON = ("schedule.enabled=true", "metrics.serviceMonitor.enabled=true", "networkPolicy.enabled=true")


def _helm(helm: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([helm, *args], capture_output=True, text=True, check=check)


def _render(helm: str, *sets: str) -> list[dict[str, Any]]:
    args = ["template", "genosynth", str(CHART), "--namespace", "genosynth"]
    for item in sets:
        args += ["--set", item]
    return [d for d in yaml.safe_load_all(_helm(helm, *args).stdout) if d]


def test_every_schema_pattern_compiles_as_re2():
    """Helm compiles values.schema.json patterns with Go's RE2: no lookaround, no backreferences."""
    import re2

    patterns: list[tuple[str, str]] = []
    for where, node in _schema_objects():
        if isinstance(node.get("pattern"), str):
            patterns.append((where, node["pattern"]))
        patterns.extend((f"{where}.patternProperties", key) for key in node.get("patternProperties", {}))
    assert len(patterns) > 10
    for where, pattern in patterns:
        try:
            re2.compile(pattern)
        except re2.error as exc:  # pragma: no cover - the failure message is the point
            pytest.fail(f"{where}: {pattern!r} is not RE2: {exc}")
    with pytest.raises(re2.error):
        re2.compile("^(?!latest$)[a-z]+$")  # the lookahead that once broke `helm lint`


def test_helm_is_the_expected_release(helm):
    version = _helm(helm, "version", "--short").stdout.strip()
    assert version.startswith("v4."), version


def test_helm_lint(helm):
    for sets in ((), ALL_ON):
        args = ["lint", str(CHART), "--strict"]
        for item in sets:
            args += ["--set", item]
        result = _helm(helm, *args, check=False)
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("sets", [(), ALL_ON], ids=["defaults", "all-on"])
def test_rendered_objects_pass_the_kubernetes_and_argo_schemas(helm, sets, tmp_path):
    import kubernetes_validate

    from genosynth.runners.argo_schema import validation_errors

    docs = _render(helm, *sets)
    argo_kinds = {"WorkflowTemplate", "CronWorkflow"}
    core = [d for d in docs if d["apiVersion"].split("/")[0] in ("v1", "rbac.authorization.k8s.io",
                                                                 "networking.k8s.io")]
    assert {d["kind"] for d in core} >= {"ServiceAccount", "Role", "RoleBinding", "ConfigMap"}
    for doc in core:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    for doc in (d for d in docs if d["kind"] in argo_kinds):
        assert validation_errors(doc, ARGO_SCHEMAS, cache_dir=tmp_path) == [], doc["kind"]
    # The validator is real: a misspelled field of a core object fails.
    role = copy.deepcopy(next(d for d in core if d["kind"] == "Role"))
    role["rules"][0]["verb"] = role["rules"][0].pop("verbs")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(role, KUBERNETES_VERSION, strict=True)


def test_helm_template_renders_every_object(helm):
    docs = _render(helm, *ALL_ON)
    kinds = sorted(d["kind"] for d in docs)
    assert kinds == sorted(["WorkflowTemplate", "CronWorkflow", "ServiceAccount", "Role", "RoleBinding",
                            "ConfigMap", "ConfigMap", "ConfigMap", "PrometheusRule", "ServiceMonitor",
                            "NetworkPolicy"])
    by_kind = {d["kind"]: d for d in docs}
    annotations = by_kind["ServiceAccount"]["metadata"]["annotations"]
    assert annotations["iam.gke.io/gcp-service-account"].endswith(".iam.gserviceaccount.com")
    rule_groups = yaml.safe_load((CHART / "files" / "prometheus-rules.yaml").read_text())["groups"]
    assert by_kind["PrometheusRule"]["spec"]["groups"] == rule_groups
    dashboard = next(d for d in docs if d["metadata"]["name"] == "genosynth-cost-dashboard")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(dashboard["data"]["genosynth-cost.json"]) == json.loads(
        (CHART / "files" / "dashboard.json").read_text())


def test_helm_rendered_workflows_are_strict_argo_and_carry_the_values(helm):
    docs = _render(helm, "schedule.enabled=true", "image.gpu.tag=1.2.3", "gpu.deviceKind=nvidia-l4",
                   "gpu.nodeSelector.cloud\\.google\\.com/gke-accelerator=nvidia-l4", "cost.budgetDollars=99")
    template = next(d for d in docs if d["kind"] == "WorkflowTemplate")
    cron = next(d for d in docs if d["kind"] == "CronWorkflow")
    for doc in (template, cron):
        _strict_argo(doc)
    _assert_locked_down(template)
    params = {p["name"]: p["value"] for p in template["spec"]["arguments"]["parameters"]}
    assert params["image-gpu"] == "ghcr.io/genosynth/genosynth-gpu:1.2.3"
    assert json.loads(params["config"])["budget_dollars"] == 99
    assert params["run-url"].endswith("/runs/{{workflow.name}}")
    train = next(t for t in template["spec"]["templates"] if t["name"] == "train")
    assert train["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-l4"}
    env = {e["name"]: e["value"] for e in train["container"]["env"]}
    spot_or_not = "{{=workflow.parameters.spot == 'true' ? 'nvidia-l4-spot' : 'nvidia-l4'}}"
    assert env["GENOSYNTH_DEVICE_KIND"] == spot_or_not
    gate = next(t for t in template["spec"]["templates"] if t["name"] == "budget-gate")
    gate_env = {e["name"]: e["value"] for e in gate["container"]["env"]}
    assert gate_env["GENOSYNTH_TRAIN_DEVICE"] == env["GENOSYNTH_DEVICE_KIND"]


@pytest.mark.parametrize(("setting", "where"), [("gpu.maxConcurrent=eight", "maxConcurrent"),
                                                 ("image.cpu.tag=latest", "/image/cpu/tag"),
                                                 ("image.gpu.tag=latest", "/image/gpu/tag")])
def test_helm_refuses_values_the_schema_refuses(helm, setting, where):
    result = _helm(helm, "template", "genosynth", str(CHART), "--set", setting, check=False)
    assert result.returncode != 0
    assert where in result.stderr
    # A real version tag passes the same check.
    assert _helm(helm, "template", "genosynth", str(CHART), "--set", "image.cpu.tag=0.1.1").returncode == 0


def test_network_policy_is_on_by_default_and_opens_no_443_to_anywhere(helm):
    policy = next(d for d in _render(helm) if d["kind"] == "NetworkPolicy")
    assert policy["spec"]["ingress"] == []
    for rule in policy["spec"]["egress"]:
        assert rule.get("to"), f"egress to anywhere: {rule}"
        ports = {p["port"] for p in rule["ports"]}
        if 443 in ports:
            assert [t["ipBlock"]["cidr"] for t in rule["to"]] == ["199.36.153.4/30"]
    dns = next(r for r in policy["spec"]["egress"] if {p["port"] for p in r["ports"]} == {53})
    assert dns["to"][0]["podSelector"] == {"matchLabels": {"k8s-app": "kube-dns"}}
