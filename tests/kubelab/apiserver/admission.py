"""Admission for pods, as the apiserver's own plugins refuse them: Pod Security (the namespace's
`pod-security.kubernetes.io/enforce` label: baseline or restricted) and ResourceQuota (a quota's
`spec.hard.pods` in the namespace). A refusal is the Status the client gets (403 Forbidden);
defaults are filled in as the apiserver fills them.
"""

from __future__ import annotations

import secrets
import string
from typing import TYPE_CHECKING

from .resources import JSON

if TYPE_CHECKING:
    from .store import Store

ENFORCE = "pod-security.kubernetes.io/enforce"
TERMINAL = ("Succeeded", "Failed")
_SUFFIX = string.ascii_lowercase + string.digits


def generated_name(prefix: str) -> str:
    """metadata.generateName's result: the prefix and five random characters."""
    return prefix + "".join(secrets.choice(_SUFFIX) for _ in range(5))


def default_pod(pod: JSON) -> None:
    """The fields the apiserver defaults on a new pod."""
    spec = pod.setdefault("spec", {})
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("serviceAccountName", "default")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("securityContext", {})
    spec.setdefault("enableServiceLinks", True)
    for container in spec.get("containers") or []:
        image = str(container.get("image", ""))
        latest = ":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest")
        container.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
        container.setdefault("resources", {})
    pod["status"] = {"phase": "Pending", "qosClass": "BestEffort"}


def refusal(store: Store, pod: JSON, namespace: str) -> str | None:
    """Why admission refuses the pod (the whole 403 message), or None."""
    name = pod["metadata"]["name"]
    ns = store.get("Namespace", namespace, None) or {}
    level = (ns.get("metadata", {}).get("labels") or {}).get(ENFORCE, "privileged")
    violations = pod_security_violations(pod, level)
    if violations:
        return f'pods "{name}" is forbidden: violates PodSecurity "{level}:latest": ' + ", ".join(
            violations
        )
    for quota in store.list("ResourceQuota", namespace):
        hard = ((quota.get("spec") or {}).get("hard") or {}).get("pods")
        if hard is None:
            continue
        used = sum(
            1
            for p in store.list("Pod", namespace)
            if (p.get("status") or {}).get("phase") not in TERMINAL
        )
        if used + 1 > int(hard):
            return (
                f'pods "{name}" is forbidden: exceeded quota: {quota["metadata"]["name"]}, '
                f"requested: pods=1, used: pods={used}, limited: pods={hard}"
            )
    return None


def pod_security_violations(pod: JSON, level: str) -> list[str]:
    """What the Pod Security level's checks say of the pod (a subset of them: the host
    namespaces and privileged containers for baseline, and for restricted also privilege
    escalation, capabilities, non-root and seccomp), in the admission plugin's words."""
    if level not in ("baseline", "restricted"):
        return []
    spec = pod.get("spec") or {}
    containers = list(spec.get("containers") or []) + list(spec.get("initContainers") or [])
    pod_context = spec.get("securityContext") or {}
    found: list[str] = []
    hosts = [f"{k}=true" for k in ("hostNetwork", "hostPID", "hostIPC") if spec.get(k)]
    if hosts:
        found.append(f"host namespaces ({', '.join(hosts)})")
    privileged = [
        c["name"] for c in containers if (c.get("securityContext") or {}).get("privileged")
    ]
    if privileged:
        found.append(
            f"privileged ({_containers(privileged)} must not set securityContext.privileged=true)"
        )
    if level != "restricted":
        return found

    def lacking(test: object) -> list[str]:
        return [c["name"] for c in containers if not test(c.get("securityContext") or {})]  # type: ignore[operator]

    escalating = lacking(lambda s: s.get("allowPrivilegeEscalation") is False)
    if escalating:
        found.append(
            f"allowPrivilegeEscalation != false ({_containers(escalating)} must set "
            "securityContext.allowPrivilegeEscalation=false)"
        )
    capable = lacking(lambda s: "ALL" in ((s.get("capabilities") or {}).get("drop") or []))
    if capable:
        found.append(
            f"unrestricted capabilities ({_containers(capable)} must set "
            'securityContext.capabilities.drop=["ALL"])'
        )
    if pod_context.get("runAsNonRoot") is not True:
        rooted = lacking(lambda s: s.get("runAsNonRoot") is True)
        if rooted:
            found.append(
                f"runAsNonRoot != true (pod or {_containers(rooted)} must set "
                "securityContext.runAsNonRoot=true)"
            )
    if (pod_context.get("seccompProfile") or {}).get("type") not in ("RuntimeDefault", "Localhost"):
        unconfined = lacking(
            lambda s: (s.get("seccompProfile") or {}).get("type") in ("RuntimeDefault", "Localhost")
        )
        if unconfined:
            found.append(
                f"seccompProfile (pod or {_containers(unconfined)} must set "
                'securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")'
            )
    return found


def _containers(names: list[str]) -> str:
    if len(names) == 1:
        return f'container "{names[0]}"'
    return "containers " + ", ".join(f'"{n}"' for n in names)
