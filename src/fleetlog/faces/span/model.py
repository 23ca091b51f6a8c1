"""How Span's resources live on the core.

- A collection is a project; its Span settings (tags, firmware management) are a document
  (kind `span.collection`).
- A device is a registry device: Span `tags` are its labels; what the API configures (IMSI,
  IMEI, gateway config, firmware target and identity, enabled) is in `attrs["span"]`.
- What devices report (last message, firmware version and state, network metadata) is derived
  from the device's latest events, never written to the registry on the hot path.
- Gateways, firmware images, blobs and outbox messages are documents of the tenant.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass
from typing import Any

from fleetlog.core.errors import InvalidInput
from fleetlog.core.event import Event
from fleetlog.core.registry import Device

COLLECTION = "span.collection"
GATEWAY = "span.gateway"
FIRMWARE = "span.firmware"
FIRMWARE_IMAGE = "span.firmware.image"
BLOB = "span.blob"
BLOB_DATA = "span.blob.data"
OUTBOX = "span.outbox"
ADDRESS = "span.ciot.address"  # tenant "": allocated IP -> (tenant, device)

UPSTREAM_TYPES = ("upstreamMessage", "gatewayUpstreamMessage")


def new_id() -> str:
    """A Span-looking id: 14 characters of lowercase base32 (about 70 random bits)."""
    return base64.b32encode(os.urandom(9)).decode().lower()[:14]


def sortable_id(now_us: int) -> str:
    """An id that sorts by creation time: 14 hex digits of microseconds, 8 random."""
    return f"{now_us:014x}{os.urandom(4).hex()}"


def span_attrs(device: Device) -> dict[str, Any]:
    found = device.attrs.get("span")
    return found if isinstance(found, dict) else {}


def with_span_attrs(device: Device, span: dict[str, Any]) -> dict[str, Any]:
    return {**device.attrs, "span": span}


def enabled(device: Device) -> bool:
    return span_attrs(device).get("enabled", True) is not False


def ciot_config(device: Device) -> tuple[str, str]:
    """(imsi, imei) configured on the device; "" where not set."""
    ciot = span_attrs(device).get("config", {}).get("ciot", {})
    return str(ciot.get("imsi", "")), str(ciot.get("imei", ""))


def gateway_config(device: Device) -> dict[str, dict[str, Any]]:
    found = span_attrs(device).get("config", {}).get("gateway", {})
    return found if isinstance(found, dict) else {}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(text: str, field: str = "payload") -> bytes:
    """Decode base64 (standard or URL-safe alphabet, padding optional)."""
    try:
        cleaned = text.strip().replace("-", "+").replace("_", "/")
        return base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), validate=True)
    except (ValueError, binascii.Error):
        raise InvalidInput("must be base64", field) from None


@dataclass(frozen=True)
class Reported:
    """What a device has reported, from its latest events of each type."""

    upstream: Event | None = None
    ciot: Event | None = None
    firmware_check: Event | None = None
    firmware_state: Event | None = None

    @classmethod
    def of(cls, latest: dict[str, Event]) -> Reported:
        ups = [latest[t] for t in UPSTREAM_TYPES if t in latest]
        return cls(
            upstream=max(ups, key=lambda e: (e.time, e.id)) if ups else None,
            ciot=latest.get("ciotConnect"),
            firmware_check=latest.get("firmwareCheck"),
            firmware_state=latest.get("firmwareStateChange"),
        )

    @property
    def firmware_version(self) -> str:
        return str(self.firmware_check.data.get("version", "")) if self.firmware_check else ""

    @property
    def state(self) -> str:
        return str(self.firmware_state.data.get("to", "")) if self.firmware_state else ""

    @property
    def state_message(self) -> str:
        return str(self.firmware_state.data.get("message", "")) if self.firmware_state else ""
