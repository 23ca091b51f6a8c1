"""Lab5e Span: the 24 activity event types.

Source: seeds/span-activity-events.txt and CONTRACTS.md section 3.

Activity `data` is a map of string to string (the spec's ActivityEvent). The seed shows only
`clientConnected {"id": "certificate"}` and `upstreamMessage {"bytes": "9", "transport":
"unspecified"}`; the keys fleetlog puts in the other types are fleetlog's choice [I], kept in
`DATA_KEYS` and named in each type's description. Other keys are allowed (the schema only
requires string values), so a producer may add more.

Descriptions are the seed's text (typos included, so they match the vendor's page), with the
data keys appended.
"""

from __future__ import annotations

from typing import Any, Final

from fleetlog.core.catalog.model import EventType

__all__ = ["ACTIVITY_EVENT_TYPES", "DATA_KEYS", "TRANSPORTS"]

TRANSPORTS: Final = ("unspecified", "udp", "coap", "mqtt", "gateway", "coaps", "dtls")
"""Values of the `transport` key (upstreamMessage, downstreamMessage)."""

DATA_KEYS: Final[dict[str, tuple[str, ...]]] = {
    "imeiMismatch": ("expected", "actual"),
    "imsiMismatch": ("expected", "actual"),
    "ciotConnect": ("imsi", "imei"),
    "clientConnected": ("id",),
    "clientDisconnected": (),
    "upstreamMessage": ("bytes", "transport"),
    "downstreamMessage": ("bytes", "transport"),
    "firmwareRequested": ("imageId", "version"),
    "firmwareCheck": ("version",),
    "firmwareUpdateRequired": ("current", "target"),
    "firmwareCurrent": ("version",),
    "firmwareStateChange": ("from", "to"),
    "blobUpload": ("bytes", "path"),
    "deviceCreated": (),
    "deviceUpdated": ("fields",),
    "deviceRemoved": (),
    "deviceMoved": ("from", "to"),
    "gatewayConnected": ("gatewayId",),
    "gatewayDisconnected": ("gatewayId",),
    "gatewayDeviceUpdate": ("gatewayId", "devices"),
    "gatewayUpstreamMessage": ("gatewayId", "bytes"),
    "gatewayDownstreamMessage": ("gatewayId", "bytes"),
    "gatewayConfigUpdate": ("gatewayId",),
    "gatewayCommError": ("gatewayId", "error"),
}

# What each key holds (all values are strings).
_KEY_MEANINGS: Final[dict[tuple[str, str], str]] = {
    ("imeiMismatch", "expected"): "the IMEI configured on the device",
    ("imeiMismatch", "actual"): "the IMEI the connecting device presented",
    ("imsiMismatch", "expected"): "the IMSI configured on the device",
    ("imsiMismatch", "actual"): "the IMSI the connecting device presented",
    ("ciotConnect", "imsi"): "the SIM's IMSI",
    ("ciotConnect", "imei"): "the modem's IMEI",
    ("clientConnected", "id"): "how the device was identified, e.g. certificate, imsi",
    ("upstreamMessage", "bytes"): "payload size in bytes",
    ("upstreamMessage", "transport"): "one of " + ", ".join(TRANSPORTS),
    ("downstreamMessage", "bytes"): "payload size in bytes",
    ("downstreamMessage", "transport"): "one of " + ", ".join(TRANSPORTS),
    ("firmwareRequested", "imageId"): "the firmware image requested",
    ("firmwareRequested", "version"): "that image's version",
    ("firmwareCheck", "version"): "the version the device reported",
    ("firmwareUpdateRequired", "current"): "the version the device runs",
    ("firmwareUpdateRequired", "target"): "the version it should run",
    ("firmwareCurrent", "version"): "the version the device runs",
    ("firmwareStateChange", "from"): "the previous firmware state",
    ("firmwareStateChange", "to"): "the new firmware state",
    ("blobUpload", "bytes"): "blob size in bytes",
    ("blobUpload", "path"): "the path the device uploaded to",
    ("deviceUpdated", "fields"): "comma-separated names of the changed fields",
    ("deviceMoved", "from"): "the previous collection id",
    ("deviceMoved", "to"): "the new collection id",
    ("gatewayConnected", "gatewayId"): "the gateway id",
    ("gatewayDisconnected", "gatewayId"): "the gateway id",
    ("gatewayDeviceUpdate", "gatewayId"): "the gateway id",
    ("gatewayDeviceUpdate", "devices"): "number of devices in the update",
    ("gatewayUpstreamMessage", "gatewayId"): "the gateway id",
    ("gatewayUpstreamMessage", "bytes"): "payload size in bytes",
    ("gatewayDownstreamMessage", "gatewayId"): "the gateway id",
    ("gatewayDownstreamMessage", "bytes"): "payload size in bytes",
    ("gatewayConfigUpdate", "gatewayId"): "the gateway id",
    ("gatewayCommError", "gatewayId"): "the gateway id",
    ("gatewayCommError", "error"): "the error text",
}

# (name, title, seed text, default state_change)
_SEED: Final[tuple[tuple[str, str, str, bool], ...]] = (
    (
        "imeiMismatch",
        "IMEI mismatch",
        "An IMEI mis-configuration is detected on a device that is trying to connect. This "
        "typically happen if you configure both IMSI and IMEI on a device and move the SIM card "
        "to a new device. Clear the IMSI field from the old device to fix the error.",
        False,
    ),
    (
        "imsiMismatch",
        "IMSI mismatch",
        "An IMSI mis-configuraiton is detected on a device that is trying to connect. This "
        "typically happens if you switch the SIM card on a device and attempts to reconnect. "
        "Clear the IMSI field or replace it with the new value.",
        False,
    ),
    (
        "ciotConnect",
        "CIoT connect",
        "A device has authenticated on the mobile network. When it connects to the network it "
        "is online but has not attempted to connect to Span yet.",
        False,
    ),
    (
        "clientConnected",
        "Client connected",
        "A device has connected to Span, either via the UDP interface, the CoAP interfaces or the DTLS interface",
        False,
    ),
    (
        "clientDisconnected",
        "Client disconnected",
        "A device has disconnected from Span. This event typically only appears for devices "
        "that connect via the Internet",
        False,
    ),
    (
        "upstreamMessage",
        "Upstream message",
        "A device has sent a message to Span, either via the Internet or the mobile network",
        False,
    ),
    ("downstreamMessage", "Downstream message", "A message is sent to a device", False),
    (
        "firmwareRequested",
        "Firmware requested",
        "A device has requested to download a firmwware image",
        False,
    ),
    ("firmwareCheck", "Firmware check", "A device has reported its firmware version", False),
    (
        "firmwareUpdateRequired",
        "Firmware update required",
        "Span has detected that the device needs a new firmware version",
        False,
    ),
    (
        "firmwareCurrent",
        "Firmware current",
        "The device has reported its version and it's up to date",
        False,
    ),
    (
        "firmwareStateChange",
        "Firmware state change",
        "The firmware state field has changed. This is emitted multiple times while the device "
        "is updating its firmware",
        True,
    ),
    ("blobUpload", "Blob upload", "A device has uploaded a new blob", False),
    ("deviceCreated", "Device created", "A device is created via the API", True),
    ("deviceUpdated", "Device updated", "A device is updated via the API", False),
    ("deviceRemoved", "Device removed", "A device is removed via the API", True),
    ("deviceMoved", "Device moved", "A device is moved from one collection to another", True),
    (
        "gatewayConnected",
        "Gateway connected",
        "A gateway has connected to the gateway API endpoint",
        False,
    ),
    (
        "gatewayDisconnected",
        "Gateway disconnected",
        "A gateway has disconnected from the gateway API endpoint",
        False,
    ),
    (
        "gatewayDeviceUpdate",
        "Gateway device update",
        "A gateway has received device updates",
        False,
    ),
    (
        "gatewayUpstreamMessage",
        "Gateway upstream message",
        "A message is sent from a device via a gateway",
        False,
    ),
    (
        "gatewayDownstreamMessage",
        "Gateway downstream message",
        "A message is sent to a device via a gateway",
        False,
    ),
    (
        "gatewayConfigUpdate",
        "Gateway config update",
        "A gateway has received a configuration update",
        False,
    ),
    (
        "gatewayCommError",
        "Gateway communication error",
        "There was an error communicating with a gateway. The gateway might have disconnected "
        "abruptly or there's some kind of network error",
        False,
    ),
)


def _schema() -> dict[str, Any]:
    return {"type": "object", "additionalProperties": {"type": "string"}}


def _describe(name: str, seed_text: str) -> str:
    keys = DATA_KEYS[name]
    if not keys:
        return f"{seed_text.rstrip('.')}. Data: none."
    parts = [f"{key} ({_KEY_MEANINGS[(name, key)]})" for key in keys]
    return f"{seed_text.rstrip('.')}. Data: {'; '.join(parts)}."


ACTIVITY_EVENT_TYPES: Final[tuple[EventType, ...]] = tuple(
    EventType(
        name=name,
        family="span",
        title=title,
        description=_describe(name, text),
        schema=_schema(),
        state_change=state_change,
    )
    for name, title, text, state_change in _SEED
)
