"""Request bodies, decoded strictly: a wrong or unknown field is named in the 400."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

import msgspec
from starlette.requests import Request

from fleetlog.core.errors import InvalidInput
from fleetlog.faces.http import decode_error_field, read_body

T = TypeVar("T")
MAX_BODY = 1024 * 1024

LabelKey = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
LabelValue = Annotated[str, msgspec.Meta(max_length=1024)]
Labels = dict[LabelKey, LabelValue]


class AccountIn(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    display_name: Annotated[str, msgspec.Meta(max_length=256)] = ""
    enable_basic_auth: bool = False
    roles: list[str] = []


class AccountPatch(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    display_name: Annotated[str, msgspec.Meta(max_length=256)] | None = None
    enable_basic_auth: bool | None = None
    roles: list[str] | None = None


class BatchUpdateIn(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    devices: list[str]
    add_labels: Labels = {}
    remove_labels: list[LabelKey] = []


class TransferIn(msgspec.Struct, forbid_unknown_fields=True):
    devices: list[str]


class EmulatedDeviceIn(msgspec.Struct, forbid_unknown_fields=True):
    type: str
    labels: Labels = {}


class EmulatedDevicePatch(msgspec.Struct, forbid_unknown_fields=True):
    type: str | None = None
    labels: Labels | None = None
    name: str | None = None  # a client may send the device back as it got it


async def decode(request: Request, kind: type[T], limit: int = MAX_BODY) -> T:
    raw = await read_body(request, limit)
    if not raw.strip():
        raw = b"{}"
    try:
        return msgspec.json.decode(raw, type=kind)
    except msgspec.ValidationError as exc:
        where, why = decode_error_field(exc)
        raise InvalidInput(why, where) from None
    except msgspec.DecodeError as exc:
        raise InvalidInput(f"body is not valid JSON ({exc})") from None
    except RecursionError:
        raise InvalidInput("body is nested too deeply") from None


async def decode_object(request: Request, limit: int = MAX_BODY) -> dict[str, Any]:
    return await decode(request, dict[str, Any], limit)
