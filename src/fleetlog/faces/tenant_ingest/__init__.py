"""The tenant event ingest face: POST /rest/v1/api/tenants/{tenantId}/devices/{deviceId}/events."""

from fleetlog.faces.tenant_ingest.routes import routes

__all__ = ["routes"]
