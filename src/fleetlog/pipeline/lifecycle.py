"""Events the system produces itself when the registry changes a device.

One registry change is one stored event; each face shows it in its own terms (Pelion's event
log shows SYS_106 "Device registered"; the Span activity stream shows it as deviceCreated).

- created: SYS_106 (Device registered)
- removed: SYS_105 (Device deregistered)
- labels changed: labelsChanged {added, modified, removed} (DT's shape)
- moved to another project: deviceMoved {from, to}
- any other change: deviceUpdated
"""

from __future__ import annotations

from fleetlog.core.event import Event, SourceKind
from fleetlog.core.registry import DeviceChange
from fleetlog.pipeline.ingest import Ingest


class LifecycleEvents:
    def __init__(self, ingest: Ingest) -> None:
        self._ingest = ingest

    async def __call__(self, change: DeviceChange) -> None:
        for event in self.events_for(change):
            await self._ingest.submit(None, event, face="registry")

    def events_for(self, change: DeviceChange) -> list[Event]:
        now = self._ingest.clock.now_us()
        before, after = change.before, change.after
        device = after or before
        if device is None:
            return []

        def system(type_: str, project: str, data: dict[str, object]) -> Event:
            return Event(
                tenant=device.tenant,
                project=project,
                device=device.id,
                type=type_,
                time=now,
                received=now,
                source=SourceKind.SYSTEM,
                data=data,
            )

        if before is None:
            return [system("SYS_106", device.project, {})]
        if after is None:
            return [system("SYS_105", before.project, {})]
        events: list[Event] = []
        if before.project != after.project:
            events.append(system("deviceMoved", after.project, {"from": before.project, "to": after.project}))
        added, modified, removed = change.labels_diff
        if added or modified or removed:
            events.append(
                system("labelsChanged", after.project, {"added": added, "modified": modified, "removed": removed})
            )
        if before.type != after.type or before.attrs != after.attrs:
            events.append(system("deviceUpdated", after.project, {}))
        return events
