"""The Pod Security Standards' ``restricted`` profile (Kubernetes v1.35), as rules on a pod spec.

What the admission controller checks at pod creation, for pods the cluster would build from the rendered
WorkflowTemplate (:func:`argo_pod`): Argo's own pods cannot be admitted here without a cluster, so the
tests build the pod Argo would and check the same rules.
"""

from __future__ import annotations

import copy
from typing import Any

#: Volume types restricted allows.
ALLOWED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
                   "projected", "secret"}
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}
SELINUX_TYPES = {None, "", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}


def violations(pod: dict[str, Any]) -> list[str]:
    """Every way ``pod`` (a PodSpec) breaks the restricted profile; empty when it passes."""
    found: list[str] = []
    pod_context = pod.get("securityContext") or {}
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(key):
            found.append(f"{key} is true")
    for volume in pod.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= ALLOWED_VOLUMES:
            found.append(f"volume {volume['name']}: type {sorted(kinds)} not allowed")
    for sysctl in pod_context.get("sysctls", []):
        if sysctl["name"] not in SAFE_SYSCTLS:
            found.append(f"sysctl {sysctl['name']} not allowed")
    if pod_context.get("runAsUser") == 0:
        found.append("pod runAsUser is 0")
    if (pod_context.get("seccompProfile") or {}).get("type") == "Unconfined":
        found.append("pod seccompProfile is Unconfined")
    if (pod_context.get("appArmorProfile") or {}).get("type") == "Unconfined":
        found.append("pod appArmorProfile is Unconfined")
    if (pod_context.get("seLinuxOptions") or {}).get("type") not in SELINUX_TYPES:
        found.append("pod seLinuxOptions.type not allowed")
    containers = [*pod.get("initContainers", []), *pod.get("containers", [])]
    if not containers:
        found.append("no containers")
    for container in containers:
        name = container["name"]
        context = container.get("securityContext") or {}
        if context.get("privileged"):
            found.append(f"{name}: privileged")
        if context.get("allowPrivilegeEscalation") is not False:
            found.append(f"{name}: allowPrivilegeEscalation must be false")
        capabilities = context.get("capabilities") or {}
        if "ALL" not in capabilities.get("drop", []):
            found.append(f"{name}: capabilities must drop ALL")
        if set(capabilities.get("add", [])) - {"NET_BIND_SERVICE"}:
            found.append(f"{name}: adds capabilities {capabilities['add']}")
        non_root = context.get("runAsNonRoot", pod_context.get("runAsNonRoot"))
        if non_root is not True:
            found.append(f"{name}: runAsNonRoot must be true (pod or container)")
        if context.get("runAsUser") == 0:
            found.append(f"{name}: runAsUser is 0")
        seccomp = (context.get("seccompProfile") or pod_context.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            found.append(f"{name}: seccompProfile must be RuntimeDefault or Localhost, found {seccomp}")
        if (context.get("appArmorProfile") or {}).get("type") == "Unconfined":
            found.append(f"{name}: appArmorProfile is Unconfined")
        if (context.get("seLinuxOptions") or {}).get("type") not in SELINUX_TYPES:
            found.append(f"{name}: seLinuxOptions.type not allowed")
        if context.get("procMount", "Default") != "Default":
            found.append(f"{name}: procMount must be Default")
        if (context.get("windowsOptions") or {}).get("hostProcess"):
            found.append(f"{name}: hostProcess")
        for port in container.get("ports", []):
            if port.get("hostPort"):
                found.append(f"{name}: hostPort {port['hostPort']}")
    return found


def argo_pod(spec: dict[str, Any], template: dict[str, Any], executor: dict[str, Any]) -> dict[str, Any]:
    """The PodSpec Argo (emissary) builds for a container ``template`` of workflow ``spec``.

    Pod-level fields come from the template or else the workflow; the ``main`` container is the template's
    container; ``init`` and ``wait`` come from the controller's ``executor`` container spec; Argo adds its
    own emptyDir (``var-run-argo``) and, with an executor ServiceAccount, a Secret volume for its token.
    """
    executor_container = {k: v for k, v in executor.items() if k in ("securityContext", "resources")}
    pod = {
        "securityContext": template.get("securityContext", spec.get("securityContext", {})),
        "serviceAccountName": template.get("serviceAccountName", spec.get("serviceAccountName")),
        "automountServiceAccountToken": template.get("automountServiceAccountToken",
                                                     spec.get("automountServiceAccountToken")),
        "volumes": [*copy.deepcopy(spec.get("volumes", [])), {"name": "var-run-argo", "emptyDir": {}}],
        "initContainers": [{"name": "init", **copy.deepcopy(executor_container)}],
        "containers": [{"name": "wait", **copy.deepcopy(executor_container)},
                       {"name": "main", **copy.deepcopy(template["container"])}],
    }
    if (spec.get("executor") or {}).get("serviceAccountName"):
        pod["volumes"].append({"name": "exec-sa-token", "secret": {
            "secretName": f"{spec['executor']['serviceAccountName']}.service-account-token"}})
    for key in ("nodeSelector", "tolerations"):
        if key in template:
            pod[key] = template[key]
    return pod
