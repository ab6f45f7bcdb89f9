"""RBAC as the apiserver enforces it, for tokens bound to Roles and ClusterRoles from manifests.

`Rbac.load(documents)` takes Role, ClusterRole, RoleBinding and ClusterRoleBinding objects
(e.g. deploy/rbac/*.yaml); `tokens` maps a bearer token to its user (a service account is
`system:serviceaccount:NS:NAME`). Every resource request by such a token is authorized the way
the apiserver's RequestInfo and RBAC authorizer do it: the verb from the method (get, list,
watch, create, update, patch, delete, deletecollection; a WebSocket upgrade to exec, attach or
portforward needs create), the resource with its subresource (`pods/log`), the API group, the
namespace; a RoleBinding grants its role's rules in its namespace, a ClusterRoleBinding
everywhere. A refusal is the apiserver's 403 in its words. Discovery and health paths are open
to every authenticated user, as the system:discovery role makes them.

`used` records which rule allowed each request, so a test can prove that every rule of a role
was needed; `denied` what was refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .frames import flag, is_upgrade

ALL = "*"
WEBSOCKET_CREATE = ("exec", "attach", "portforward")


@dataclass(frozen=True)
class Attributes:
    """What a request asks, in RBAC's terms."""

    verb: str
    group: str
    resource: str  # with its subresource: "pods/log"
    namespace: str | None
    name: str | None


@dataclass(frozen=True)
class Grant:
    """One verb on one resource, from one rule of one role (the unit a test checks is used)."""

    role: str
    group: str
    resource: str
    verb: str


@dataclass(frozen=True)
class Rule:
    role: str
    groups: tuple[str, ...]
    resources: tuple[str, ...]
    verbs: tuple[str, ...]
    names: tuple[str, ...] = ()

    def allows(self, asked: Attributes) -> Grant | None:
        if asked.verb not in self.verbs and ALL not in self.verbs:
            return None
        if asked.group not in self.groups and ALL not in self.groups:
            return None
        if asked.resource not in self.resources and ALL not in self.resources:
            return None
        if self.names and asked.name not in self.names:
            return None
        return Grant(self.role, asked.group, asked.resource, asked.verb)

    def grants(self) -> set[Grant]:
        return {
            Grant(self.role, g, r, v)
            for g in self.groups
            for r in self.resources
            for v in self.verbs
        }


@dataclass
class Rbac:
    """Which user holds which rules where; what was allowed by which grant, and refused."""

    tokens: dict[str, str] = field(default_factory=dict)
    # user -> (namespace or None for every namespace, rule)
    rules: dict[str, list[tuple[str | None, Rule]]] = field(default_factory=dict)
    used: set[Grant] = field(default_factory=set)
    denied: list[tuple[str, Attributes]] = field(default_factory=list)

    @classmethod
    def load(cls, documents: Iterable[Mapping[str, Any]], tokens: Mapping[str, str]) -> Rbac:
        roles: dict[tuple[str, str | None], list[Rule]] = {}
        bindings: list[Mapping[str, Any]] = []
        for doc in documents:
            kind = doc.get("kind")
            meta = doc.get("metadata") or {}
            if kind in ("Role", "ClusterRole"):
                key = (f"{kind}/{meta['name']}", meta.get("namespace") if kind == "Role" else None)
                roles[key] = [
                    Rule(
                        role=key[0],
                        groups=tuple(r.get("apiGroups") or ()),
                        resources=tuple(r.get("resources") or ()),
                        verbs=tuple(r.get("verbs") or ()),
                        names=tuple(r.get("resourceNames") or ()),
                    )
                    for r in doc.get("rules") or []
                ]
            elif kind in ("RoleBinding", "ClusterRoleBinding"):
                bindings.append(doc)
        rbac = cls(tokens=dict(tokens))
        for binding in bindings:
            meta = binding.get("metadata") or {}
            where = meta.get("namespace") if binding["kind"] == "RoleBinding" else None
            ref = binding["roleRef"]
            scope = where if ref["kind"] == "Role" else None
            found = roles.get((f"{ref['kind']}/{ref['name']}", scope))
            if found is None:
                raise ValueError(f"{binding['kind']} {meta.get('name')} refers to a missing {ref}")
            for subject in binding.get("subjects") or []:
                user = _user(subject, meta.get("namespace"))
                rbac.rules.setdefault(user, []).extend((where, rule) for rule in found)
        return rbac

    def declared(self) -> set[Grant]:
        """Every verb on every resource the bound roles grant."""
        return {
            grant for held in self.rules.values() for _, rule in held for grant in rule.grants()
        }

    def check(self, request: web.Request) -> web.Response | None:
        """None if the request may proceed, else the apiserver's 403. Tokens not bound here
        (the lab's admin token) are not judged."""
        auth = request.headers.get("Authorization", "")
        user = self.tokens.get(auth.removeprefix("Bearer "))
        if user is None:
            return None
        asked = attributes(request)
        if asked is None:
            return None  # discovery and health: open to every authenticated user
        for namespace, rule in self.rules.get(user, []):
            if namespace is not None and namespace != asked.namespace:
                continue
            grant = rule.allows(asked)
            if grant is not None:
                self.used.add(grant)
                return None
        self.denied.append((user, asked))
        return _forbidden(user, asked)


def _user(subject: Mapping[str, Any], binding_namespace: str | None) -> str:
    if subject.get("kind") == "ServiceAccount":
        namespace = subject.get("namespace") or binding_namespace
        return f"system:serviceaccount:{namespace}:{subject['name']}"
    return str(subject["name"])


def attributes(request: web.Request) -> Attributes | None:
    """The RBAC attributes of a resource request (None for a non-resource path)."""
    parts = [p for p in request.path.split("/") if p]
    if parts[:2] == ["api", "v1"]:
        group, rest = "", parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 3:
        group, rest = parts[1], parts[3:]
    else:
        return None
    if not rest:
        return None
    namespace: str | None = None
    if rest[0] == "namespaces" and len(rest) >= 3:
        namespace, rest = rest[1], rest[2:]
    resource = rest[0]
    name = rest[1] if len(rest) >= 2 else None
    if len(rest) >= 3:
        resource = f"{resource}/{rest[2]}"
    method = request.method
    if method == "GET":
        if name is None:
            verb = "watch" if flag(request.rel_url.query, "watch") else "list"
        else:
            verb = "get"
        if is_upgrade(request) and resource.split("/")[-1] in WEBSOCKET_CREATE:
            verb = "create"  # Kubernetes 1.30+ authorizes the WebSocket upgrade as create
    elif method == "POST":
        verb = "create"
    elif method == "PUT":
        verb = "update"
    elif method == "PATCH":
        verb = "patch"
    elif method == "DELETE":
        verb = "delete" if name is not None else "deletecollection"
    else:
        verb = method.lower()
    return Attributes(verb, group, resource, namespace, name)


def _forbidden(user: str, asked: Attributes) -> web.Response:
    from .resources import status_response

    base = asked.resource.split("/")[0]
    what = f"{base}.{asked.group}" if asked.group else base
    subject = f'{what} "{asked.name}"' if asked.name else what
    scope = f' in the namespace "{asked.namespace}"' if asked.namespace else " at the cluster scope"
    message = (
        f'{subject} is forbidden: User "{user}" cannot {asked.verb} resource "{asked.resource}" '
        f'in API group "{asked.group}"{scope}'
    )
    details: dict[str, Any] = {"kind": base}
    if asked.name:
        details["name"] = asked.name
    if asked.group:
        details["group"] = asked.group
    return status_response(403, message, "Forbidden", details)
