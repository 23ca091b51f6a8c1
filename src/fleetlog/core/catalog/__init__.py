"""The event type catalog, as data: DT sensor events, Span activity events, Pelion event log
codes, and a tenant's own (custom) types. See docs/event-types.md (rendered from this data)."""

from fleetlog.core.catalog.model import Catalog, DeviceType, EventType, builtin_catalog

__all__ = ["Catalog", "DeviceType", "EventType", "builtin_catalog"]
