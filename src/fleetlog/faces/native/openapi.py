"""The OpenAPI document of the native API (built from the msgspec shapes) and /docs."""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from fleetlog import __version__
from fleetlog.faces.http import JSONResponse
from fleetlog.faces.native.params import QUERY_PARAMS
from fleetlog.faces.native.schemas import (
    BatchResult,
    DeviceIn,
    DevicePatch,
    DeviceState,
    EventIn,
    EventOut,
    EventPage,
    EventTypeIn,
    KeyIn,
    KeyOut,
    ProjectIn,
    TenantIn,
    TenantPatch,
)

SHAPES: list[type] = [
    EventIn,
    EventOut,
    EventPage,
    BatchResult,
    DeviceState,
    TenantIn,
    TenantPatch,
    ProjectIn,
    DeviceIn,
    DevicePatch,
    KeyIn,
    KeyOut,
    EventTypeIn,
]
ERROR = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "field": {"type": "string"}},
            "required": ["code", "message"],
        }
    },
    "required": ["error"],
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _path_param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def _query(name: str, text: str, many: bool = False) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "array", "items": {"type": "string"}} if many else {"type": "string"}
    return {"name": name, "in": "query", "required": False, "description": text, "schema": schema}


def json_body(name: str) -> dict[str, Any]:
    return {"application/json": {"schema": _ref(name)}}


def _op(
    summary: str,
    ok: int,
    schema: dict[str, Any] | None,
    params: list[dict[str, Any]],
    body: dict[str, Any] | None = None,
    media: str = "application/json",
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "parameters": params,
        "responses": {
            str(ok): {"description": "OK", **({"content": {media: {"schema": schema}}} if schema else {})},
            "400": {"description": "Bad input", "content": {"application/json": {"schema": _ref("Error")}}},
            "401": {
                "description": "No or unknown credentials",
                "content": {"application/json": {"schema": _ref("Error")}},
            },
            "403": {"description": "Not allowed", "content": {"application/json": {"schema": _ref("Error")}}},
            "404": {"description": "Not found", "content": {"application/json": {"schema": _ref("Error")}}},
        },
    }
    if body is not None:
        op["requestBody"] = {"required": True, "content": body}
    return op


def document() -> dict[str, Any]:
    _, components = msgspec.json.schema_components(SHAPES, ref_template="#/components/schemas/{name}")
    components["Error"] = ERROR
    tenant = _path_param("tenant")
    many = {"project", "device", "type", "exclude_type", "outcome", "label"}
    query_params = [_query(n, t, n in many) for n, t in QUERY_PARAMS.items()]
    export_params = [p for p in query_params if p["name"] not in {"cursor", "limit"}]
    export_params.append(_query("format", "ndjson (default) or csv"))
    ingest_body = {
        "application/json": {"schema": {"oneOf": [_ref("EventIn"), {"type": "array", "items": _ref("EventIn")}]}},
        "application/x-ndjson": {"schema": {"type": "string", "description": "one EventIn per line"}},
    }
    paths: dict[str, Any] = {
        "/v1/tenants/{tenant}/events": {
            "post": _op(
                "Ingest one event (201), or a batch as a JSON array or NDJSON "
                "(per-item results; 207 on partial success)",
                201,
                _ref("EventOut"),
                [tenant],
                ingest_body,
            ),
            "get": _op(
                "Query events, newest first by default, one page at a time",
                200,
                _ref("EventPage"),
                [tenant, *query_params],
            ),
        },
        "/v1/tenants/{tenant}/events/export": {
            "get": _op(
                "Export every matching event, streamed as NDJSON or CSV",
                200,
                {"type": "string"},
                [tenant, *export_params],
                media="application/x-ndjson",
            ),
        },
        "/v1/tenants/{tenant}/events/{event_id}": {
            "get": _op("One event by id", 200, _ref("EventOut"), [tenant, _path_param("event_id")]),
        },
        "/v1/tenants/{tenant}/devices/{device}/state": {
            "get": _op(
                "A device's derived state: its latest event of each type, last seen",
                200,
                _ref("DeviceState"),
                [tenant, _path_param("device")],
            ),
        },
        "/v1/tenants": {
            "get": _op("Tenants the caller can see", 200, None, []),
            "post": _op("Create a tenant (operator)", 201, None, [], json_body("TenantIn")),
        },
        "/v1/tenants/{tenant}": {
            "get": _op("A tenant", 200, None, [tenant]),
            "patch": _op(
                "Change a tenant's name, retention or license (operator)", 200, None, [tenant], json_body("TenantPatch")
            ),
        },
        "/v1/tenants/{tenant}/projects": {
            "get": _op("Projects", 200, None, [tenant]),
            "post": _op("Create a project", 201, None, [tenant], json_body("ProjectIn")),
        },
        "/v1/tenants/{tenant}/projects/{project}": {
            "get": _op("A project", 200, None, [tenant, _path_param("project")]),
            "delete": _op("Delete an empty project and its events", 204, None, [tenant, _path_param("project")]),
        },
        "/v1/tenants/{tenant}/devices": {
            "get": _op(
                "Devices, by id, filtered by project and labels",
                200,
                None,
                [
                    tenant,
                    _query("project", "project id"),
                    _query("label", "key=value or key", True),
                    _query("after", "last device id of the previous page"),
                    _query("limit", "1-1000"),
                ],
            ),
            "post": _op("Register a device", 201, None, [tenant], json_body("DeviceIn")),
        },
        "/v1/tenants/{tenant}/devices/{device}": {
            "get": _op("A device", 200, None, [tenant, _path_param("device")]),
            "patch": _op(
                "Change a device's project, type or labels",
                200,
                None,
                [tenant, _path_param("device")],
                json_body("DevicePatch"),
            ),
            "delete": _op("Remove a device", 204, None, [tenant, _path_param("device")]),
        },
        "/v1/tenants/{tenant}/keys": {
            "get": _op("API keys (never their secrets)", 200, None, [tenant]),
            "post": _op(
                "Create an API key; the token is shown only in this answer",
                201,
                _ref("KeyOut"),
                [tenant],
                json_body("KeyIn"),
            ),
        },
        "/v1/tenants/{tenant}/keys/{key}": {
            "delete": _op("Revoke an API key", 204, None, [tenant, _path_param("key")]),
        },
        "/v1/tenants/{tenant}/event-types": {"get": _op("The tenant's own event types", 200, None, [tenant])},
        "/v1/tenants/{tenant}/event-types/{name}": {
            "put": _op(
                "Define or replace an event type with a JSON Schema for its data",
                200,
                None,
                [tenant, _path_param("name")],
                json_body("EventTypeIn"),
            ),
            "delete": _op("Remove a tenant event type", 204, None, [tenant, _path_param("name")]),
        },
        "/v1/event-types": {
            "get": _op(
                "The built-in catalog (sensor types, activity events, event log codes)",
                200,
                None,
                [_query("q", "search text"), _query("family", "dt, span, pelion")],
            )
        },
        "/v1/event-types/{name}": {"get": _op("One built-in type or code", 200, None, [_path_param("name")])},
        "/healthz": {"get": {"summary": "Liveness", "security": [], "responses": {"200": {"description": "alive"}}}},
        "/readyz": {
            "get": {
                "summary": "Readiness",
                "security": [],
                "responses": {"200": {"description": "ready"}, "503": {"description": "not ready"}},
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "security": [],
                "responses": {"200": {"description": "text format"}},
            }
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "fleetlog native API",
            "version": __version__,
            "description": "Device events: ingest, query, export, device state and the registry.",
        },
        "paths": paths,
        "components": {"schemas": components, "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer"}}},
        "security": [{"apiKey": []}],
    }


DOCS_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>fleetlog API</title>
<link rel="stylesheet" href="/docs/static/swagger-ui.css"></head>
<body><div id="ui"></div>
<script src="/docs/static/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({url: "/openapi.json", dom_id: "#ui"});</script>
</body></html>"""


def routes() -> list[Route | Mount]:
    from swagger_ui_bundle import swagger_ui_path

    spec = document()

    async def openapi(request: Request) -> Response:
        return JSONResponse(spec)

    async def docs(request: Request) -> Response:
        return HTMLResponse(DOCS_PAGE)

    return [
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/docs", docs, methods=["GET"]),
        Mount("/docs/static", StaticFiles(directory=str(swagger_ui_path)), name="docs-static"),
    ]
