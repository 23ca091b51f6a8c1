"""/v2/projects: the projects of the caller's tenant (a DT organization is a fleetlog tenant)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fleetlog.core.errors import NotFound
from fleetlog.core.registry import Project, Role, Tenant
from fleetlog.faces.dt import params as qp
from fleetlog.faces.dt.auth import Authenticator
from fleetlog.faces.dt.errors import endpoint
from fleetlog.faces.dt.names import parse_name
from fleetlog.faces.http import JSONResponse
from fleetlog.pipeline.directory import Directory


async def project_json(directory: Directory, tenant: Tenant, project: Project) -> dict[str, Any]:
    sensors = connectors = 0
    after: str | None = None
    while True:
        batch = await directory.registry.list_devices(tenant.id, project.id, (), after, 1000)
        for device in batch:
            connectors += device.type == "ccon"
            sensors += device.type != "ccon"
        if len(batch) < 1000:
            break
        after = batch[-1].id
    return {
        "name": f"projects/{project.id}",
        "displayName": project.name or project.id,
        "organization": f"organizations/{tenant.id}",
        "organizationDisplayName": tenant.name or tenant.id,
        "sensorCount": sensors,
        "cloudConnectorCount": connectors,
        "inventory": False,
    }


def routes(directory: Directory, auth: Authenticator) -> list[Route]:
    @endpoint
    async def get_project(request: Request) -> Response:
        project = request.path_params["project"]
        caller = await auth.caller(request, project)
        qp.check_known(request.query_params, [])
        await auth.require(caller, project, Role.READ)
        tenant = await directory.tenant(caller.tenant)
        return JSONResponse(await project_json(directory, tenant, await directory.project(tenant.id, project)))

    @endpoint
    async def list_projects(request: Request) -> Response:
        params = request.query_params
        qp.check_known(params, ["organization", "query", *qp.PAGE_PARAMS])
        org = qp.one(params, "organization")
        hint = parse_name(org, "organizations", "organization") if org else None
        caller = await auth.caller(request, None, hint)
        if hint is not None and hint != caller.tenant:
            raise NotFound("organization", hint)
        tenant = await directory.require(caller.principal, caller.tenant, None, Role.READ)
        text = (qp.one(params, "query") or "").casefold()
        found = [
            p
            for p in await directory.registry.list_projects(tenant.id)
            if caller.principal.sees_project(tenant.id, p.id)
            and (not text or text in p.id.casefold() or text in p.name.casefold())
        ]
        return JSONResponse(
            {"projects": [await project_json(directory, tenant, p) for p in found], "nextPageToken": ""}
        )

    return [
        Route("/v2/projects", list_projects, methods=["GET"]),
        Route("/v2/projects/{project}", get_project, methods=["GET"]),
    ]
