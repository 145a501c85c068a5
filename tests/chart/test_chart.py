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

from . import pod_security

CHART = Path(__file__).resolve().parents[2] / "charts" / "genosynth"
TEMPLATES = CHART / "templates"
WORKFLOWS = CHART.parents[1] / "workflows"
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
    ("image.cpu.tag", "latest@sha256:" + "a" * 64),
    ("image.cpu.tag", "0.1.0@sha256:abc"),
    ("gpu.deviceKind", "NVIDIA T4"),
])
def test_wrongly_typed_values_are_refused(path, value):
    assert _errors(_with(path, value)), f"{path}={value!r} was accepted"


def test_a_tag_pinned_by_digest_is_accepted():
    assert _errors(_with("image.gpu.tag", "0.1.0@sha256:" + "0123456789abcdef" * 4)) == []


def test_values_carry_what_an_installation_sets():
    values = _values()
    assert values["serviceAccount"]["gcpServiceAccount"].endswith(".iam.gserviceaccount.com")
    assert values["metrics"]["grafanaDashboard"]["labels"] == {"grafana_dashboard": "1"}
    assert values["cost"]["budgetDollars"] == 1440
    assert values["cost"]["prices"]["nvidia-tesla-t4"] == 0.35
    assert values["gpu"]["deviceKind"] == argo.GPU_DEVICE_KIND
    assert values["serviceAccount"]["inputGcpServiceAccount"].endswith(".iam.gserviceaccount.com")
    # The input cohort is in its own bucket: only the input identity may read it.
    assert not values["storage"]["datasetUrl"].startswith(values["storage"]["bucketUrl"] + "/")


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
    assert kinds == sorted(["WorkflowTemplate", "CronWorkflow", "ServiceAccount", "ServiceAccount",
                            "ServiceAccount", "Secret", "Role", "RoleBinding", "ConfigMap", "ConfigMap",
                            "ConfigMap", "PrometheusRule", "ServiceMonitor", "NetworkPolicy"])
    by_kind = {d["kind"]: d for d in docs}
    accounts = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ServiceAccount"}
    for name in (argo.SERVICE_ACCOUNT, argo.input_account()):
        annotations = accounts[name]["metadata"]["annotations"]
        assert annotations["iam.gke.io/gcp-service-account"].endswith(".iam.gserviceaccount.com")
    rule_groups = yaml.safe_load((CHART / "files" / "prometheus-rules.yaml").read_text())["groups"]
    assert by_kind["PrometheusRule"]["spec"]["groups"] == rule_groups
    dashboard = next(d for d in docs if d["metadata"]["name"] == "genosynth-cost-dashboard")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(dashboard["data"]["genosynth-cost.json"]) == json.loads(
        (CHART / "files" / "dashboard.json").read_text())


def test_helm_rendered_workflows_are_strict_argo_and_carry_the_values(helm):
    docs = _render(helm, "schedule.enabled=true", "image.gpu.tag=1.2.3", "gpu.deviceKind=nvidia-l4",
                   "cost.budgetDollars=99", "resources.train-cpu.requests.cpu=3500m",
                   "resources.train-cpu.requests.memory=16Gi")
    template = next(d for d in docs if d["kind"] == "WorkflowTemplate")
    cron = next(d for d in docs if d["kind"] == "CronWorkflow")
    for doc in (template, cron):
        _strict_argo(doc)
    _assert_locked_down(template)
    params = {p["name"]: p["value"] for p in template["spec"]["arguments"]["parameters"]}
    assert params["image-gpu"] == "ghcr.io/genosynth/genosynth-gpu:1.2.3"
    assert json.loads(params["config"])["budget_dollars"] == 99
    assert params["run-url"].endswith("/runs/{{workflow.name}}")
    # The GPU pool and the device kind it is billed as are one parameter, which the chart defaults.
    assert params["gpu-kind"] == "nvidia-l4"
    templates = {t["name"]: t for t in template["spec"]["templates"]}
    assert templates["train"]["nodeSelector"] == {argo.GPU_NODE_LABEL: "{{workflow.parameters.gpu-kind}}"}
    env = {e["name"]: e["value"] for e in templates["train"]["container"]["env"]}
    gate_env = {e["name"]: e["value"] for e in templates["budget-gate"]["container"]["env"]}
    assert gate_env[argo.GPU_KIND_ENV] == env["GENOSYNTH_DEVICE_KIND"] == env[argo.GPU_KIND_ENV]
    assert "workflow.parameters['gpu-kind'] + '-spot'" in env["GENOSYNTH_DEVICE_KIND"]
    cpu_train = templates["train-cpu"]["container"]["resources"]
    assert cpu_train == {"requests": {"cpu": "3500m", "memory": "16Gi"}}


@pytest.mark.parametrize(("setting", "where"), [("gpu.maxConcurrent=eight", "maxConcurrent"),
                                                 ("image.cpu.tag=latest", "/image/cpu/tag"),
                                                 ("image.gpu.tag=latest", "/image/gpu/tag")])
def test_helm_refuses_values_the_schema_refuses(helm, setting, where):
    result = _helm(helm, "template", "genosynth", str(CHART), "--set", setting, check=False)
    assert result.returncode != 0
    assert where in result.stderr
    # A real version tag passes the same check.
    assert _helm(helm, "template", "genosynth", str(CHART), "--set", "image.cpu.tag=0.1.1").returncode == 0


def _policy(helm: str, *sets: str) -> dict[str, Any]:
    return next(d for d in _render(helm, *sets) if d["kind"] == "NetworkPolicy")


def _ip_rules(policy: dict[str, Any]) -> list[tuple[list[str], set[int]]]:
    return [([t["ipBlock"]["cidr"] for t in r["to"]], {p["port"] for p in r["ports"]})
            for r in policy["spec"]["egress"] if all("ipBlock" in t for t in r["to"])]


def test_network_policy_is_on_by_default_and_opens_no_443_to_anywhere(helm):
    policy = _policy(helm)
    assert policy["spec"]["ingress"] == []
    for rule in policy["spec"]["egress"]:
        assert rule.get("to"), f"egress to anywhere: {rule}"
        ports = {p["port"] for p in rule["ports"]}
        if 443 in ports:
            assert [t["ipBlock"]["cidr"] for t in rule["to"]] == ["199.36.153.4/30"]
    dns = next(r for r in policy["spec"]["egress"] if {p["port"] for p in r["ports"]} == {53})
    assert dns["to"][0]["podSelector"] == {"matchLabels": {"k8s-app": "kube-dns"}}
    # `helm template` has no cluster to look the API server up in: no API egress (fail closed), said so.
    assert policy["metadata"]["annotations"]["genosynth.io/kubernetes-api"] == "none"
    assert _ip_rules(policy) == [(["199.36.153.4/30"], {443}), (["169.254.169.254/32"], {80, 988})]


def test_network_policy_opens_the_kubernetes_api_it_is_given(helm):
    policy = _policy(helm, "networkPolicy.kubernetesApiCidr=172.16.0.2/32")
    assert policy["metadata"]["annotations"]["genosynth.io/kubernetes-api"] == "value"
    assert (["172.16.0.2/32"], {443}) in _ip_rules(policy)
    kubeadm = _policy(helm, "networkPolicy.kubernetesApiCidr=10.0.0.5/32",
                      "networkPolicy.kubernetesApiPort=6443")
    assert (["10.0.0.5/32"], {6443}) in _ip_rules(kubeadm)
    # Only the Google APIs range and the API endpoint are reachable over TLS ports; nothing is 0.0.0.0/0.
    assert all("0.0.0.0/0" not in cidrs for cidrs, _ in _ip_rules(policy))


def test_install_notes_say_whether_the_api_egress_is_open(helm):
    def notes(*sets: str) -> str:
        args = ["install", "genosynth", str(CHART), "--dry-run=client", "--namespace", "genosynth"]
        for item in sets:
            args += ["--set", item]
        return _helm(helm, *args).stdout

    assert "WARNING: the NetworkPolicy opens no egress to the Kubernetes API" in notes()
    assert "Kubernetes API egress (value): 172.16.0.2/32 on port(s) [443]" in notes(
        "networkPolicy.kubernetesApiCidr=172.16.0.2/32")


def test_helm_refuses_an_input_cohort_inside_the_runs_bucket(helm):
    result = _helm(helm, "template", "genosynth", str(CHART), "--set",
                   "storage.datasetUrl=gs://genosynth-runs/datasets/cohort", check=False)
    assert result.returncode != 0 and "keep the input cohort in its own bucket" in result.stderr


# --- one source of truth: the chart deploys workflows/ --------------------------------------------------
def _leaves(node: Any, path: str = "") -> dict[str, Any]:
    """Every leaf of ``node`` by path; list items with a ``name`` go by it: ``templates[prep]``."""
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, child in node.items():
            out.update(_leaves(child, f"{path}.{key}" if path else key))
        return out or {path: {}}
    if isinstance(node, list):
        out = {}
        for i, child in enumerate(node):
            label = child["name"] if isinstance(child, dict) and "name" in child else i
            out.update(_leaves(child, f"{path}[{label}]"))
        return out or {path: []}
    return {path: node}


#: The fields of the WorkflowTemplate's spec the chart sets from values, and the values they come from.
#: Everything else the chart deploys is workflows/ as rendered from the DAG.
VALUES_DRIVEN = {
    "arguments.parameters[dataset-url].value": "storage.datasetUrl",
    "arguments.parameters[run-url].value": "storage.bucketUrl",
    "arguments.parameters[config].value": "cost.budgetDollars, cost.prices, pipeline.config",
    "arguments.parameters[image-cpu].value": "image.cpu",
    "arguments.parameters[image-gpu].value": "image.gpu",
    "arguments.parameters[gpu-kind].value": "gpu.deviceKind",
    "arguments.parameters[spot].value": "gpu.spot",
    "arguments.parameters[batch-group-size].value": "pipeline.batchGroupSize",
    "arguments.parameters[pushgateway].value": "metrics.pushgatewayUrl",
}
#: Set only where the values name a template (``resources.<template>``); none by default.
VALUES_DRIVEN_PATTERNS = (r"templates\[[a-z-]+\]\.container\.resources\..+",)


def test_every_workflow_parameter_is_values_driven():
    rendered = {p["name"] for p in argo.render_manifests()[0]["spec"]["arguments"]["parameters"]}
    assert {f"arguments.parameters[{n}].value" for n in rendered} == set(VALUES_DRIVEN)
    assert set(argo.INSTALLATION_PARAMETERS) == rendered


def test_chart_deploys_the_committed_workflow_spec_field_by_field(helm):
    committed = yaml.safe_load((WORKFLOWS / argo.FILE_NAMES["WorkflowTemplate"]).read_text())
    deployed = next(d for d in _render(helm) if d["kind"] == "WorkflowTemplate")
    ours, theirs = _leaves(committed["spec"]), _leaves(deployed["spec"])
    assert set(ours) == set(theirs), f"fields only in one: {sorted(set(ours) ^ set(theirs))}"
    differing = {path for path in ours if ours[path] != theirs[path]}
    assert differing <= set(VALUES_DRIVEN), f"not values-driven: {sorted(differing - set(VALUES_DRIVEN))}"
    # And the values-driven ones hold what the values say.
    values = _values()
    params = {p["name"]: p["value"] for p in deployed["spec"]["arguments"]["parameters"]}
    assert params["gpu-kind"] == values["gpu"]["deviceKind"]
    assert params["image-cpu"] == f"{values['image']['cpu']['repository']}:{values['image']['cpu']['tag']}"
    assert params["dataset-url"] == values["storage"]["datasetUrl"]
    assert json.loads(params["config"])["prices"] == values["cost"]["prices"]
    assert deployed["metadata"]["name"] == committed["metadata"]["name"]
    # A per-step resource override is the only other field values reach, and only where given.
    overridden = _leaves(next(d for d in _render(helm, "resources.prep.requests.cpu=3")
                              if d["kind"] == "WorkflowTemplate")["spec"])
    changed = {p for p in set(overridden) | set(theirs) if overridden.get(p) != theirs.get(p)}
    assert changed and all(re.fullmatch(VALUES_DRIVEN_PATTERNS[0], p) for p in changed), changed


def test_chart_deploys_the_committed_cron_workflow_with_its_schedule(helm):
    committed = yaml.safe_load((WORKFLOWS / argo.FILE_NAMES["CronWorkflow"]).read_text())
    values_driven = {"schedules[0]": "schedule.cron", "timezone": "schedule.timezone",
                     "workflowSpec.arguments.parameters[run-url].value": "storage.bucketUrl",
                     "workflowSpec.arguments.parameters[dataset-url].value": "storage.datasetUrl"}

    def differing(*sets: str) -> set[str]:
        docs = _render(helm, "schedule.enabled=true", *sets)
        deployed = next(d for d in docs if d["kind"] == "CronWorkflow")
        ours, theirs = _leaves(committed["spec"]), _leaves(deployed["spec"])
        assert set(ours) == set(theirs)
        return {p for p in ours if ours[p] != theirs[p]}

    assert differing() == set()
    changed = differing("schedule.cron=0 4 * * *", "storage.bucketUrl=gs://other-runs",
                        "storage.datasetUrl=gs://other-cohorts/c", "schedule.timezone=Europe/Paris")
    assert changed == set(values_driven)


# --- identities and Pod Security -------------------------------------------------------------------------
def _executor_config() -> dict[str, Any]:
    return yaml.safe_load((CHART / "files" / "argo-executor.yaml").read_text())


@pytest.mark.parametrize("sets", [(), ALL_ON], ids=["defaults", "all-on"])
def test_every_rendered_pod_satisfies_pod_security_restricted(helm, sets):
    docs = _render(helm, *sets)
    template = next(d for d in docs if d["kind"] == "WorkflowTemplate")
    spec = template["spec"]
    containers = [t for t in spec["templates"] if "container" in t]
    assert {t["name"] for t in containers} >= {"configure", "prep", "train", "train-cpu", "finalize"}
    for t in containers:
        pod = pod_security.argo_pod(spec, t, _executor_config())
        assert pod_security.violations(pod) == [], t["name"]
    # The check is real: each rule a step container could break is caught.
    train = next(t for t in containers if t["name"] == "train")
    for field, bad in [("allowPrivilegeEscalation", True), ("capabilities", {"add": ["SYS_ADMIN"]}),
                       ("runAsUser", 0), ("seccompProfile", {"type": "Unconfined"})]:
        broken = copy.deepcopy(train)
        broken["container"]["securityContext"][field] = bad
        assert pod_security.violations(pod_security.argo_pod(spec, broken, _executor_config())), field
    loose_executor = {"securityContext": {"runAsNonRoot": True}}
    assert any(v.startswith("wait:") for v in
               pod_security.violations(pod_security.argo_pod(spec, train, loose_executor)))
    host = copy.deepcopy(spec)
    host["volumes"].append({"name": "docker", "hostPath": {"path": "/var/run/docker.sock"}})
    assert pod_security.violations(pod_security.argo_pod(host, train, _executor_config()))


def test_documented_namespace_enforces_restricted():
    import kubernetes_validate

    namespace = yaml.safe_load((CHART / "files" / "namespace.yaml").read_text())
    kubernetes_validate.validate(namespace, KUBERNETES_VERSION, strict=True)
    labels = namespace["metadata"]["labels"]
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
        version = labels[f"pod-security.kubernetes.io/{mode}-version"]
        assert version == "v" + KUBERNETES_VERSION.rsplit(".", 1)[0]


def test_step_containers_get_no_kubernetes_token_and_only_the_executor_is_bound(helm):
    docs = _render(helm, *ALL_ON)
    spec = next(d for d in docs if d["kind"] == "WorkflowTemplate")["spec"]
    accounts = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ServiceAccount"}
    assert spec["automountServiceAccountToken"] is False
    assert spec["executor"] == {"serviceAccountName": argo.executor_account()}
    named = {spec["serviceAccountName"], spec["executor"]["serviceAccountName"]} | {
        t["serviceAccountName"] for t in spec["templates"] if "serviceAccountName" in t}
    assert named == set(accounts) == {"genosynth", "genosynth-input", "genosynth-executor"}
    assert all(a["automountServiceAccountToken"] is False for a in accounts.values())
    # Only the steps that read the input cohort run as its reader.
    readers = {t["name"] for t in spec["templates"] if t.get("serviceAccountName") == argo.input_account()}
    assert readers == {"configure", "prep"}
    # The executor account has no Google identity; the RoleBinding binds it and nothing else.
    assert "annotations" not in accounts[argo.executor_account()]["metadata"]
    binding = next(d for d in docs if d["kind"] == "RoleBinding")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": argo.executor_account(),
                                    "namespace": "genosynth"}]
    token = next(d for d in docs if d["kind"] == "Secret")
    assert token["type"] == "kubernetes.io/service-account-token"
    assert token["metadata"]["name"] == f"{argo.executor_account()}.service-account-token"
    assert token["metadata"]["annotations"] == {"kubernetes.io/service-account.name": argo.executor_account()}
