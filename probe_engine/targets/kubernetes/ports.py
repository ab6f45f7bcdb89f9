"""A Service's ports: which one a target means (by number or name), and how to name them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ...facts import ServicePortFact


def describe_port(port: Mapping[str, Any]) -> str:
    name = port.get("name")
    text = f"{name} {port.get('port')}" if name else str(port.get("port"))
    text += f"->{port.get('targetPort', port.get('port'))}/{port.get('protocol', 'TCP')}"
    if port.get("nodePort"):
        text += f" nodePort {port['nodePort']}"
    return text


def choose_port(
    ports: Sequence[Mapping[str, Any]], wanted: int | str | None, service: str
) -> tuple[Mapping[str, Any] | None, str | None]:
    """The Service port a target means: (port, None), or (None, why not)."""
    listing = ", ".join(describe_port(p) for p in ports) or "none"
    if not ports:
        return None, f"Service {service} declares no port"
    if wanted is None:
        chosen: Mapping[str, Any] | None = ports[0]
    elif isinstance(wanted, int):
        chosen = next((p for p in ports if p.get("port") == wanted), None)
        if chosen is None:
            hint = ""
            if any(p.get("nodePort") == wanted for p in ports):
                hint = f"; {wanted} is a nodePort: name the Service port (via node-port uses it)"
            elif any(p.get("targetPort") == wanted for p in ports):
                hint = f"; {wanted} is a targetPort (the pods' port): name the Service port"
            return None, f"Service {service} has no port {wanted} (its ports: {listing}){hint}"
    else:
        chosen = next((p for p in ports if p.get("name") == wanted), None)
        if chosen is None:
            return None, f"Service {service} has no port named {wanted!r} (its ports: {listing})"
    if chosen is not None and str(chosen.get("protocol", "TCP")).upper() != "TCP":
        return None, (
            f"Service {service} port {describe_port(chosen)} is not TCP: probe-engine probes "
            "TCP (and HTTP over it)"
        )
    return chosen, None


def selector_text(selector: Mapping[str, Any] | None) -> str | None:
    if not selector:
        return None
    return ",".join(f"{key}={value}" for key, value in selector.items())


def port_facts(ports: Sequence[Mapping[str, Any]]) -> list[ServicePortFact]:
    """The Service's ports as facts: the API's words, with the defaults it leaves out."""
    return [
        ServicePortFact(
            name=p.get("name"),
            port=p.get("port"),
            targetPort=p.get("targetPort", p.get("port")),
            nodePort=p.get("nodePort"),
            protocol=p.get("protocol", "TCP"),
        )
        for p in ports
    ]


def container_port_names(pods: Sequence[Mapping[str, Any]], number: int | str | None) -> set[str]:
    """Names the pods' containers give the port `number`: a NetworkPolicy may name it so."""
    names = set()
    for pod in pods:
        for container in (pod.get("spec") or {}).get("containers") or []:
            for port in container.get("ports") or []:
                if port.get("containerPort") == number and port.get("name"):
                    names.add(str(port["name"]))
    return names
