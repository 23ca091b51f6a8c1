"""The tenant event ingest face: POST /rest/v1/api/tenants/{tenantId}/devices/{deviceId}/events."""

from fleetlog.faces.tenant_ingest.routes import face, routes

__all__ = ["face", "routes"]
