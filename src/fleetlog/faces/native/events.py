"""/v1/tenants/{tenant}/events: ingest (one, JSON array, NDJSON), query, get, export; device state."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace

import msgspec
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from fleetlog.core.errors import FleetlogError, InvalidInput, NotFound
from fleetlog.core.event import Event, SourceKind
from fleetlog.core.registry import Principal, Role
from fleetlog.core.timefmt import MAX_US, parse_rfc3339, rfc3339
from fleetlog.faces.http import JSONResponse, bearer, decode_error_field, read_body
from fleetlog.faces.native import params as qp
from fleetlog.faces.native.errors import endpoint, item_error
from fleetlog.faces.native.schemas import (
    BatchResult,
    DeviceState,
    EventIn,
    EventPage,
    ItemResult,
    event_out,
)
from fleetlog.pipeline.services import Services
from fleetlog.ports.store import AppendResult, AppendStatus

_one = msgspec.json.Decoder(EventIn)
_many = msgspec.json.Decoder(list[EventIn])
_raw = msgspec.json.Decoder(msgspec.Raw)
_list = msgspec.json.Decoder(list[msgspec.Raw])
_encoder = msgspec.json.Encoder()
NDJSON = "application/x-ndjson"
CSV_COLUMNS = [
    "id",
    "time",
    "received",
    "tenant",
    "project",
    "source",
    "device",
    "gateway",
    "type",
    "severity",
    "outcome",
    "category",
    "state_change",
    "app_id",
    "idempotency_key",
    "description",
    "data",
]


def _decode_item(raw: bytes, root: str) -> EventIn:
    try:
        return _one.decode(raw)
    except msgspec.ValidationError as exc:
        where, why = decode_error_field(exc, root)
        raise InvalidInput(why, where) from None
    except msgspec.DecodeError as exc:
        raise InvalidInput(f"not valid JSON ({exc})", root or None) from None
    except RecursionError:
        raise InvalidInput("nested too deeply", root or None) from None


def to_event(tenant: str, item: EventIn, now_us: int) -> Event:
    if item.time is None:
        when = now_us
    elif isinstance(item.time, int):
        if not 0 <= item.time <= MAX_US // 1000:
            raise InvalidInput("epoch milliseconds out of range", "time")
        when = item.time * 1000
    else:
        try:
            when = parse_rfc3339(item.time)
        except ValueError as exc:
            raise InvalidInput(str(exc), "time") from None
    source = item.source or (
        SourceKind.DEVICE if item.device else SourceKind.GATEWAY if item.gateway else SourceKind.SYSTEM
    )
    return Event(
        tenant=tenant,
        project=item.project or "",
        type=item.type,
        time=when,
        data=item.data,
        source=source,
        device=item.device,
        gateway=item.gateway,
        description=item.description,
        severity=item.severity,
        outcome=item.outcome,
        category=item.category,
        state_change=item.state_change,
        app_id=item.app_id,
        idempotency_key=item.idempotency_key,
    )


async def _principal(services: Services, request: Request, tenant: str, role: Role) -> Principal:
    principal = await services.directory.authenticate(bearer(request))
    await services.directory.require(principal, tenant, None, role)
    return principal


def _prefix(exc: InvalidInput, root: str) -> InvalidInput:
    field = f"{root}.{exc.field}" if exc.field and not exc.field.startswith(root) else exc.field or root
    return InvalidInput(exc.message, field)


def routes(services: Services) -> list[Route]:
    limits = services.limits

    @endpoint
    async def ingest(request: Request) -> Response:
        tenant = request.path_params["tenant"]
        principal = await _principal(services, request, tenant, Role.WRITE)
        qp.check_known(request.query_params, [])
        content_type = request.headers.get("content-type", "application/json").split(";")[0].strip()
        body = await read_body(request, limits.max_batch_bytes)
        now = services.clock.now_us()
        if content_type == NDJSON:
            lines = [line for line in body.split(b"\n") if line.strip()]
            return await _batch(principal, tenant, _decode_each(lines), now)
        # Anything else is read as JSON (curl sends form-urlencoded by default).
        stripped = body.lstrip()
        if stripped.startswith(b"["):
            return await _batch(principal, tenant, _decode_array(body), now)
        if len(body) > limits.max_event_bytes:
            raise InvalidInput(f"a single event may be at most {limits.max_event_bytes} bytes", None)
        if not stripped:
            raise InvalidInput("request body is empty; expected a JSON event, array or NDJSON")
        event = to_event(tenant, _decode_item(body, ""), now)
        result = await services.ingest.submit(principal, event, face="native")
        status = 201 if result.status is AppendStatus.CREATED else 200
        return JSONResponse(event_out(result.event), status_code=status)

    def _decode_array(body: bytes) -> list[EventIn | InvalidInput]:
        try:
            raws = _list.decode(body)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise InvalidInput(f"body is not a valid JSON array ({exc})") from None
        except RecursionError:
            raise InvalidInput("body is nested too deeply") from None
        _check_count(len(raws))
        if all(len(raw) <= limits.max_event_bytes for raw in raws):
            # The usual case, every item well formed: one decoder call for the whole array.
            # Otherwise each item is decoded alone, so each error names its own item.
            try:
                return _many.decode(body)  # type: ignore[return-value]  # list is invariant
            except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
                pass
        return _decode_each(raws)

    def _decode_each(raws: Sequence[bytes | msgspec.Raw]) -> list[EventIn | InvalidInput]:
        _check_count(len(raws))
        items: list[EventIn | InvalidInput] = []
        for index, raw in enumerate(raws):
            root = f"[{index}]"
            try:
                if len(raw) > limits.max_event_bytes:
                    raise InvalidInput(f"event larger than {limits.max_event_bytes} bytes", root)
                items.append(_decode_item(bytes(raw), root))
            except InvalidInput as exc:
                items.append(exc)
        return items

    def _check_count(count: int) -> None:
        if count > limits.max_batch_items:
            raise InvalidInput(f"a batch may hold at most {limits.max_batch_items} events")

    async def _batch(principal: Principal, tenant: str, decoded: list[EventIn | InvalidInput], now: int) -> Response:
        items: list[Event | FleetlogError] = []
        for item in decoded:
            if isinstance(item, InvalidInput):
                items.append(item)
                continue
            try:
                items.append(to_event(tenant, item, now))
            except InvalidInput as exc:  # named "[index].field" with the other refusals below
                items.append(exc)
        results = await services.ingest.submit_many(principal, items, face="native")
        out: list[ItemResult] = []
        created = duplicates = failed = 0
        for index, result in enumerate(results):
            if isinstance(result, AppendResult):
                status = result.status.value
                created += status == "created"
                duplicates += status != "created"
                out.append(ItemResult(index, status, id=result.event.id))  # type: ignore[arg-type]
            else:
                failed += 1
                if isinstance(result, InvalidInput):
                    result = _prefix(result, f"[{index}]")
                out.append(ItemResult(index, "error", error=item_error(result)))
        status_code = 200 if failed == 0 else (207 if created or duplicates else 400)
        return JSONResponse(BatchResult(created, duplicates, failed, out), status_code=status_code)

    @endpoint
    async def query(request: Request) -> Response:
        tenant = request.path_params["tenant"]
        principal = await _principal(services, request, tenant, Role.READ)
        q = qp.event_query(tenant, request.query_params)
        q = replace(q, projects=services.directory.visible_projects(principal, q.projects))
        page = await services.store.query(q)
        return JSONResponse(
            EventPage(
                events=[event_out(e) for e in page.events],
                has_more=page.has_more,
                next_cursor=page.next_cursor.encode() if page.next_cursor else None,
                prev_cursor=page.prev_cursor.encode() if page.prev_cursor else None,
            )
        )

    @endpoint
    async def get_one(request: Request) -> Response:
        tenant = request.path_params["tenant"]
        event_id = request.path_params["event_id"]
        principal = await _principal(services, request, tenant, Role.READ)
        qp.check_known(request.query_params, [])
        event = await services.store.get(tenant, event_id)
        if event is None or not principal.sees_project(tenant, event.project):
            raise NotFound("event", event_id)
        return JSONResponse(event_out(event))

    @endpoint
    async def export(request: Request) -> Response:
        tenant = request.path_params["tenant"]
        principal = await _principal(services, request, tenant, Role.READ)
        fmt = (qp.one(request.query_params, "format") or "ndjson").lower()
        if fmt not in {"ndjson", "csv"}:
            raise InvalidInput("must be ndjson or csv", "format")
        q = qp.event_query(tenant, request.query_params, extra_allowed=["format"])
        if q.cursor is not None:
            raise InvalidInput("an export has no pages; leave out the cursor", "cursor")
        q = replace(q, projects=services.directory.visible_projects(principal, q.projects))
        chunks = services.store.export(q, chunk=1000)
        if fmt == "csv":
            return StreamingResponse(
                _csv(chunks),
                media_type="text/csv; charset=utf-8",
                headers={"Content-Disposition": f'attachment; filename="{tenant}-events.csv"'},
            )
        return StreamingResponse(_ndjson(chunks), media_type=NDJSON)

    @endpoint
    async def device_state(request: Request) -> Response:
        tenant = request.path_params["tenant"]
        device_id = request.path_params["device"]
        principal = await _principal(services, request, tenant, Role.READ)
        qp.check_known(request.query_params, [])
        device = await services.directory.device(tenant, device_id)
        if not principal.sees_project(tenant, device.project):
            raise NotFound("device", device_id)
        latest = await services.store.latest_by_type(tenant, device_id)
        last_seen = max((e.received for e in latest.values()), default=None)
        return JSONResponse(
            DeviceState(
                device=device_id,
                project=device.project,
                last_seen=rfc3339(last_seen) if last_seen else None,
                latest={t: event_out(e) for t, e in sorted(latest.items())},
            )
        )

    base = "/v1/tenants/{tenant}"
    return [
        Route(f"{base}/events", ingest, methods=["POST"]),
        Route(f"{base}/events", query, methods=["GET"]),
        Route(f"{base}/events/export", export, methods=["GET"]),
        Route(base + "/events/{event_id}", get_one, methods=["GET"]),
        Route(base + "/devices/{device}/state", device_state, methods=["GET"]),
    ]


async def _ndjson(chunks: AsyncIterator[list[Event]]) -> AsyncIterator[bytes]:
    async for chunk in chunks:
        yield b"".join(_encoder.encode(event_out(e)) + b"\n" for e in chunk)


async def _csv(chunks: AsyncIterator[list[Event]]) -> AsyncIterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    async for chunk in chunks:
        for e in chunk:
            writer.writerow(
                [
                    e.id,
                    rfc3339(e.time),
                    rfc3339(e.received),
                    e.tenant,
                    e.project,
                    e.source.value,
                    e.device or "",
                    e.gateway or "",
                    e.type,
                    e.severity,
                    e.outcome.value,
                    e.category or "",
                    str(e.state_change).lower(),
                    e.app_id or "",
                    e.idempotency_key or "",
                    e.description,
                    _encoder.encode(e.data).decode(),
                ]
            )
        yield buffer.getvalue().encode()
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode()
