"""What `kubectl create -f` needs to install manifests besides create (writes.py): the discovery
documents it reads first (/api/v1 and /apis/GROUP/VERSION: which resources exist, namespaced or
not). A DaemonSet makes its pods (daemonsets.py); a Deployment is stored and read back, as far
as the API goes. (tests/test_deploy.py installs deploy/ this way.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from .resources import RESOURCES
from .rest import no_resource

if TYPE_CHECKING:
    from .server import ApiServer

VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"]


async def discovery(server: ApiServer, request: web.Request) -> web.Response:
    """An APIResourceList: the resources of one group version."""
    group, version = request.match_info.get("group", ""), request.match_info.get("version", "v1")
    found = [r for r in RESOURCES.values() if (r.group, r.version) == (group, version)]
    if not found:
        return no_resource()
    return web.json_response(
        {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version,
            "resources": [
                {
                    "name": r.plural,
                    "singularName": r.kind.lower(),
                    "namespaced": r.namespaced,
                    "kind": r.kind,
                    "verbs": VERBS,
                }
                for r in sorted(found, key=lambda r: r.plural)
            ],
        }
    )
