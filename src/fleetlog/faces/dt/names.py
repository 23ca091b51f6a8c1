"""DT resource names: `projects/{p}`, `projects/{p}/devices/{d}`, `organizations/{o}`."""

from __future__ import annotations

from fleetlog.core.errors import InvalidInput


def device_name(project: str, device: str) -> str:
    return f"projects/{project}/devices/{device}"


def parse_device_name(name: str, field: str = "devices") -> tuple[str, str]:
    """(project, device) from `projects/{p}/devices/{d}`."""
    parts = name.split("/")
    if len(parts) != 4 or parts[0] != "projects" or parts[2] != "devices" or not parts[1] or not parts[3]:
        raise InvalidInput(f"not a device name (projects/<project>/devices/<device>): {name!r}", field)
    return parts[1], parts[3]


def parse_name(name: str, collection: str, field: str) -> str:
    """The id in `{collection}/{id}`."""
    prefix = collection + "/"
    ident = name[len(prefix) :] if name.startswith(prefix) else ""
    if not ident or "/" in ident:
        raise InvalidInput(f"not a {collection[:-1]} name ({collection}/<id>): {name!r}", field)
    return ident
