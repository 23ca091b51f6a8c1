"""Devices as DT renders them, with `reported`: per event type the device emits, the data of its
latest event of that type (null if never seen). `reported.networkStatus` merges the device's
networkStatus events of the last NETWORK_MERGE_SECONDS before the newest one (one per Cloud
Connector that heard the sensor), listing every connector, strongest first."""

from __future__ import annotations

from typing import Any, Final

from fleetlog.core.catalog.dt import device_type
from fleetlog.core.event import Event
from fleetlog.core.query import EventQuery
from fleetlog.core.registry import Device
from fleetlog.core.timefmt import rfc3339
from fleetlog.faces.dt.events import DT_TYPES, inner_data, merge_network_status
from fleetlog.faces.dt.names import device_name
from fleetlog.ports.store import EventStore

NETWORK_MERGE_SECONDS: Final = 60
EMULATED_ATTR: Final = "emulated"


def is_emulated(device: Device) -> bool:
    return device.attrs.get(EMULATED_ATTR) is True


def product_number(device: Device) -> str | None:
    """The device's own product number, else its type's first; None for emulated devices
    (DT shows none for them)."""
    if is_emulated(device):
        return None
    own = device.attrs.get("productNumber")
    if isinstance(own, str):
        return own
    known = device_type(device.type)
    return known.product_numbers[0] if known and known.product_numbers else ""


def reported_types(device: Device, latest: dict[str, Event]) -> list[str]:
    known = device_type(device.type)
    names = [t for t in (known.events if known else ()) if t != "labelsChanged"]
    return names + sorted(t for t in latest if t in DT_TYPES and t not in names and t != "labelsChanged")


class DeviceViews:
    def __init__(self, store: EventStore) -> None:
        self._store = store

    async def reported(self, device: Device) -> dict[str, Any]:
        latest = await self._store.latest_by_type(device.tenant, device.id)
        out: dict[str, Any] = {}
        for name in reported_types(device, latest):
            event = latest.get(name)
            if event is None:
                out[name] = None
                continue
            data = await self._network(device, event) if name == "networkStatus" else event.data
            out[name] = inner_data(name, data, rfc3339(event.time))
        return out

    async def _network(self, device: Device, newest: Event) -> dict[str, Any]:
        page = await self._store.query(
            EventQuery(
                tenant=device.tenant,
                devices=(device.id,),
                types=("networkStatus",),
                since=newest.time - NETWORK_MERGE_SECONDS * 1_000_000,
                until=newest.time + 1,
                limit=100,
            )
        )
        events = [newest, *(e for e in page.events if e.id != newest.id)]
        return merge_network_status(events)

    async def render(self, device: Device, reported: dict[str, Any] | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"name": device_name(device.project, device.id), "type": device.type}
        number = product_number(device)
        if number is not None:
            out["productNumber"] = number
        out["labels"] = device.labels
        out["reported"] = reported if reported is not None else await self.reported(device)
        return out
