"""Span request bodies, as the public spec names them. Unknown fields are refused (named);
int64 fields are accepted as JSON strings or numbers, as the vendor's gRPC gateway accepts them.

Output-only fields that clients echo back from a GET (a device's reported firmware version and
state, its metadata) are accepted and ignored, as the vendor's API does.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from fleetlog.core.errors import InvalidInput
from fleetlog.faces.http import decode_error_field

Tags = dict[Annotated[str, msgspec.Meta(min_length=1, max_length=128)], Annotated[str, msgspec.Meta(max_length=1024)]]
Int64 = str | int
Management = Literal["unspecified", "disabled", "collection", "device"]
GatewayType = Literal["unknown", "ciot", "inet", "lora", "openthread", "zigbee", "matter", "custom"]


class Strict(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, omit_defaults=True):
    pass


class CollectionFirmware(Strict):
    currentFirmwareId: str | None = None  # output only
    targetFirmwareId: str | None = None
    management: Management | None = None


class CreateCollectionRequest(Strict):
    teamId: str | None = None
    firmware: CollectionFirmware | None = None
    tags: Tags | None = None


class UpdateCollectionBody(Strict):
    teamId: str | None = None
    firmware: CollectionFirmware | None = None
    tags: Tags | None = None
    enabled: bool | None = None


class CellularIoTConfig(Strict):
    imsi: Int64 | None = None
    imei: Int64 | None = None


class GatewayDeviceConfig(Strict):
    gatewayId: str | None = None
    params: dict[str, str] | None = None


class DeviceConfig(Strict):
    ciot: CellularIoTConfig | None = None
    inet: dict[str, Any] | None = None
    gateway: dict[str, GatewayDeviceConfig] | None = None


class FirmwareMetadata(Strict):
    targetFirmwareId: str | None = None
    serialNumber: str | None = None
    modelNumber: str | None = None
    manufacturer: str | None = None
    # Reported by the device (output only):
    currentFirmwareId: str | None = None
    firmwareVersion: str | None = None
    state: str | None = None
    stateMessage: str | None = None


class CreateDeviceBody(Strict):
    tags: Tags | None = None
    firmware: FirmwareMetadata | None = None
    config: DeviceConfig | None = None
    metadata: dict[str, Any] | None = None  # output only
    enabled: bool | None = None


class UpdateDeviceBody(Strict):
    collectionId: str | None = None
    tags: Tags | None = None
    firmware: FirmwareMetadata | None = None
    config: DeviceConfig | None = None
    enabled: bool | None = None


class GatewayCIoTConfig(Strict):
    apn: str | None = None
    udpEndpoint: str | None = None
    coapEndpoint: str | None = None


class GatewayInetConfig(Strict):
    dtlsEndpoint: str | None = None
    coapEndpoint: str | None = None
    mqttEndpoint: str | None = None


class GatewayCustomConfig(Strict):
    params: dict[str, str] | None = None


class GatewayConfig(Strict):
    ciot: GatewayCIoTConfig | None = None
    inet: GatewayInetConfig | None = None
    user: GatewayCustomConfig | None = None


class CreateGatewayBody(Strict):
    name: Annotated[str, msgspec.Meta(max_length=256)] | None = None
    type: GatewayType | None = None
    config: GatewayConfig | None = None
    tags: Tags | None = None


class UpdateGatewayBody(Strict):
    name: Annotated[str, msgspec.Meta(max_length=256)] | None = None
    collectionId: str | None = None
    type: GatewayType | None = None
    config: GatewayConfig | None = None
    tags: Tags | None = None
    enabled: bool | None = None


class CreateFirmwareBody(Strict):
    image: str  # base64
    version: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    filename: Annotated[str, msgspec.Meta(max_length=256)] | None = None
    tags: Tags | None = None


class UpdateFirmwareBody(Strict):
    collectionId: str | None = None
    version: Annotated[str, msgspec.Meta(min_length=1, max_length=128)] | None = None
    tags: Tags | None = None
    enabled: bool | None = None


class AddDownstreamMessageBody(Strict):
    payload: str  # base64


class AttachReport(Strict):
    """A network-attach report: the mobile network says a SIM (IMSI) in a modem (IMEI) has
    attached and was given an IP address. fleetlog's own input (the vendor's is internal)."""

    imsi: Int64
    ip: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    imei: Int64 | None = None
    cellId: Int64 | None = None
    mcc: int | None = None
    mnc: int | None = None
    network: Annotated[str, msgspec.Meta(max_length=128)] | None = None


FirmwareDeviceState = Literal["Downloading", "Updating", "Failed"]


class FirmwareReport(Strict):
    """A device reporting the firmware it runs, and optionally the state of an update."""

    version: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    state: FirmwareDeviceState | None = None
    message: Annotated[str, msgspec.Meta(max_length=1024)] | None = None
    serialNumber: Annotated[str, msgspec.Meta(max_length=128)] | None = None
    modelNumber: Annotated[str, msgspec.Meta(max_length=128)] | None = None
    manufacturer: Annotated[str, msgspec.Meta(max_length=128)] | None = None


def decode(raw: bytes, kind: type[msgspec.Struct]) -> Any:
    """Decode a JSON body; a wrong field is named in the error."""
    if not raw.strip():
        raise InvalidInput("a JSON body is required")
    try:
        return msgspec.json.decode(raw, type=kind)
    except msgspec.ValidationError as exc:
        where, why = decode_error_field(exc)
        raise InvalidInput(why, where) from None
    except msgspec.DecodeError as exc:
        raise InvalidInput(f"body is not valid JSON ({exc})") from None
    except RecursionError:
        raise InvalidInput("body is nested too deeply") from None


def digits(value: Int64 | None, field: str, lengths: range) -> str | None:
    """An IMSI/IMEI given as a string or a number: None (not given), "" (cleared: 0 or ""),
    or its digits."""
    if value is None:
        return None
    text = str(value).strip()
    if text in ("", "0"):
        return ""
    if not text.isdigit() or len(text) not in lengths:
        raise InvalidInput(f"must be {lengths.start}-{lengths.stop - 1} decimal digits", field)
    return text


IMSI_LENGTHS = range(5, 16)
IMEI_LENGTHS = range(14, 17)
