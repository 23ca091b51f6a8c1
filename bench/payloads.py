"""The events the benchmarks send, built the same way as the wrk scripts in bench/lua/.

Each event is a schema-checked `temperature` reading (~300 bytes of JSON). Every request carries
a distinct (device, timestamp), so the tenant face's 409 rule never fires.
"""

from __future__ import annotations

import os

from fleetlog.core.event import Event, SourceKind, pack

DESCRIPTION = "cold room probe reading"
APP_ID = "bench-agent"


def tenant_body(i: int, base_ms: int, slot: int = 0) -> bytes:
    """The body lua/tenant.lua sends as its i-th request."""
    return (
        '{"typeId":"temperature","description":"cold room probe reading","appId":"bench-agent",'
        f'"severity":3,"data":{{"value":{i % 40}.{i % 10},"updateTime":"2024-05-01T12:00:01Z",'
        f'"samples":[{{"value":21.5,"sampleTime":"2024-05-01T12:00:00Z"}}]}},"timestamp":{base_ms + i * 64 + slot}}}'
    ).encode()


def tenant_request(tenant: str, device: str, key: str, body: bytes) -> bytes:
    return (
        f"POST /rest/v1/api/tenants/{tenant}/devices/{device}/events HTTP/1.1\r\n"
        f"Host: 127.0.0.1\r\nContent-Type: application/json\r\nX-API-Key: {key}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def stored_event(tenant: str, project: str, device: str, i: int, base_ms: int, received_us: int) -> Event:
    """The event the server stores for tenant_body(i): what the raw-SQLite floor inserts."""
    return Event(
        tenant=tenant,
        project=project,
        type="temperature",
        time=(base_ms + i * 64) * 1000,
        data={
            "value": float(f"{i % 40}.{i % 10}"),
            "updateTime": "2024-05-01T12:00:01Z",
            "samples": [{"value": 21.5, "sampleTime": "2024-05-01T12:00:00Z"}],
        },
        received=received_us,
        source=SourceKind.DEVICE,
        device=device,
        description=DESCRIPTION,
        severity=3,
        app_id=APP_ID,
    )


def row(seq: int, tenant_pk: int, project_pk: int, device_pk: int, event: Event) -> tuple[object, ...]:
    """The 12 columns of fleetlog's `events` table for one event (as the store writes them)."""
    tail = int.from_bytes(os.urandom(8), "big", signed=True)
    return (
        seq,
        tail,
        tenant_pk,
        project_pk,
        device_pk,
        event.type,
        event.time,
        event.outcome.value,
        event.severity,
        event.state_change,
        event.idempotency_key,
        pack(event),
    )
