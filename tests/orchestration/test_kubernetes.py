"""`genosynth submit` / `genosynth status` against a real cluster with Argo's CRDs installed.

These run only when ``KUBECONFIG`` points at a reachable cluster (no API server is faked); everywhere
else they are reported as skipped. Namespace: ``GENOSYNTH_TEST_NAMESPACE`` (default ``genosynth``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from genosynth.runners import argo, submit

pytestmark = pytest.mark.kubernetes
NAMESPACE = os.environ.get("GENOSYNTH_TEST_NAMESPACE", "genosynth")


@pytest.fixture(scope="module")
def cluster():
    kubeconfig = os.environ.get("KUBECONFIG")
    if not kubeconfig or not os.path.exists(kubeconfig.split(os.pathsep)[0]):
        pytest.skip("KUBECONFIG does not point at a kubeconfig file: no cluster to test against")
    from kubernetes import client, config

    try:
        config.load_kube_config()
        client.VersionApi().get_code()
        client.ApiextensionsV1Api().read_custom_resource_definition("workflowtemplates.argoproj.io")
    except Exception as exc:
        pytest.skip(f"cluster in KUBECONFIG unreachable or without Argo's CRDs: {exc}")
    return client.CustomObjectsApi()


def test_submit_creates_a_workflow_from_the_template_and_status_finds_it(cluster, tmp_path):
    template = argo.render_manifests()[0]
    template["metadata"]["namespace"] = NAMESPACE
    try:
        cluster.create_namespaced_custom_object(
            "argoproj.io", "v1alpha1", NAMESPACE, "workflowtemplates", template
        )
    except Exception as exc:
        if getattr(exc, "status", None) != 409:  # already installed (e.g. by the Helm chart) is fine
            raise
    run_url = f"gs://genosynth-test/runs/{tmp_path.name}"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "genosynth",
            "submit",
            "--dataset-url",
            "gs://genosynth-test/cohort",
            "--run-url",
            run_url,
            "--namespace",
            NAMESPACE,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    name = result.stdout.split()[2]
    try:
        found = submit.find_workflow(run_url, namespace=NAMESPACE)
        assert found is not None and found["metadata"]["name"] == name
        assert found["spec"]["workflowTemplateRef"] == {"name": argo.WORKFLOW_TEMPLATE_NAME}
        summary = submit.workflow_status(found)
        assert summary["name"] == name and summary["phase"]
        json.dumps(summary)
    finally:
        cluster.delete_namespaced_custom_object("argoproj.io", "v1alpha1", NAMESPACE, "workflows", name)
