"""GET /v2/projects/{p}/devices (and project `-`): every filter, `order_by`, pages of at most 100.

Without `order_by` pages follow device ids (the token is the last id: stable while devices are
added or removed). With `order_by` every matching device is sorted (values missing last) and the
token is a position in that order.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any, Final

from starlette.datastructures import QueryParams

from fleetlog.core.errors import InvalidInput
from fleetlog.core.registry import Device, Principal
from fleetlog.faces.dt import params as qp
from fleetlog.faces.dt.filters import FILTER_PARAMS, DeviceFilter
from fleetlog.faces.dt.views import DeviceViews, product_number
from fleetlog.pipeline.directory import Directory

MAX_PAGE: Final = 100
SCAN: Final = 1000
LIST_PARAMS: Final = (*FILTER_PARAMS, *qp.PAGE_PARAMS, "query", "order_by", "orderBy", "organization", "projects")


def _token(kind: str, value: str) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{value}".encode()).decode().rstrip("=")


def _untoken(token: str) -> tuple[str, str]:
    try:
        kind, sep, value = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        kind, sep, value = "", "", ""
    if not sep or kind not in {"id", "at"} or (kind == "at" and not value.isdigit()):
        raise InvalidInput("not a page token issued by this server", "pageToken")
    return kind, value


def matches_query(device: Device, text: str) -> bool:
    """Keyword search over id, type, product number and labels (any case)."""
    needle = text.casefold()
    fields = [device.id, device.type, product_number(device) or "", *device.labels, *device.labels.values()]
    return any(needle in f.casefold() for f in fields)


def _order_value(device: Device, reported: dict[str, Any] | None, path: list[str]) -> Any:
    root = path[0]
    if root in {"name", "id"}:
        return device.id
    if root == "type":
        return device.type
    if root == "productNumber":
        return product_number(device)
    if root == "displayName":
        return device.labels.get("name")
    value: Any = device.labels if root == "labels" else reported
    for part in path[1:]:
        value = value.get(part) if isinstance(value, dict) else None
    return value if isinstance(value, str | int | float | bool) else None


def _sort_key(value: Any) -> tuple[int, Any]:
    if isinstance(value, bool):
        return 0, int(value)
    return (1, value) if isinstance(value, int | float) else (2, str(value))


class DeviceListing:
    def __init__(self, directory: Directory, views: DeviceViews) -> None:
        self._directory = directory
        self._views = views

    async def page(
        self, principal: Principal, tenant: str, projects: tuple[str, ...] | None, params: QueryParams
    ) -> dict[str, Any]:
        """`projects`: the projects to list (None: every project the caller sees)."""
        qp.check_known(params, LIST_PARAMS)
        flt = DeviceFilter.from_params(params)
        text = (qp.one(params, "query") or "").strip()
        order_raw = (qp.one(params, "order_by", "orderBy") or "").strip()
        size = qp.page_size(params, MAX_PAGE, MAX_PAGE)
        token = qp.page_token(params)
        kind, position = _untoken(token) if token else ("", "")
        descending = order_raw.startswith("-")
        path = order_raw.lstrip("-").split(".") if order_raw else []
        if path and (
            path[0] not in {"name", "id", "type", "productNumber", "displayName", "labels", "reported"}
            or (path[0] in {"labels", "reported"} and len(path) < 2)
            or not all(path)
        ):
            raise InvalidInput(
                "must be a field path such as name, type, productNumber, labels.<key> or "
                "reported.<eventType>.<field>, optionally prefixed with - for descending",
                "order_by",
            )
        if (path and kind == "id") or (not path and kind == "at"):
            raise InvalidInput("this page token belongs to a listing with another order_by", "pageToken")

        def keep(device: Device) -> bool:
            return (
                (projects is None or device.project in projects)
                and principal.sees_project(tenant, device.project)
                and flt.matches(device)
                and (not text or matches_query(device, text))
            )

        if not path:
            found = await self._scan(tenant, projects, flt, keep, after=position or None, want=size + 1)
            more = len(found) > size
            found = found[:size]
            next_token = _token("id", found[-1].id) if more else ""
            return {"devices": [await self._views.render(d) for d in found], "nextPageToken": next_token}

        everything = await self._scan(tenant, projects, flt, keep, after=None, want=None)
        reported = {d.id: await self._views.reported(d) for d in everything} if path[0] == "reported" else {}
        values = [(_order_value(d, reported.get(d.id), path), d) for d in everything]
        present = sorted(
            ((v, d) for v, d in values if v is not None), key=lambda p: (_sort_key(p[0]), p[1].id), reverse=descending
        )
        missing = sorted((d for v, d in values if v is None), key=lambda d: d.id)
        ordered = [d for _, d in present] + missing
        start = int(position) if position else 0
        chunk = ordered[start : start + size]
        next_token = _token("at", str(start + size)) if start + size < len(ordered) else ""
        return {
            "devices": [await self._views.render(d, reported.get(d.id)) for d in chunk],
            "nextPageToken": next_token,
        }

    async def _scan(
        self,
        tenant: str,
        projects: tuple[str, ...] | None,
        flt: DeviceFilter,
        keep: Callable[[Device], bool],
        after: str | None,
        want: int | None,
    ) -> list[Device]:
        """Matching devices in id order after `after`, at most `want` (None: all)."""
        if flt.ids:
            found = []
            for device_id in sorted(flt.ids):
                if after is not None and device_id <= after:
                    continue
                device = await self._directory.registry.get_device(tenant, device_id)
                if device is not None and keep(device):
                    found.append(device)
            return found if want is None else found[:want]
        single = projects[0] if projects is not None and len(projects) == 1 else None
        labels = tuple((k, v) for k, v in flt.labels)
        out: list[Device] = []
        while want is None or len(out) < want:
            batch = await self._directory.registry.list_devices(tenant, single, labels, after, SCAN)
            out += [d for d in batch if keep(d)]
            if len(batch) < SCAN:
                break
            after = batch[-1].id
        return out if want is None else out[:want]
