"""Device filters shared by the device list and the event stream."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.datastructures import QueryParams

from fleetlog.core.catalog.dt import device_type
from fleetlog.core.errors import InvalidInput
from fleetlog.core.registry import Device
from fleetlog.faces.dt import params as qp
from fleetlog.faces.dt.views import product_number

# Each filter under its proto name and its JSON name (grpc-gateway accepts both).
FILTER_PARAMS = (
    "device_ids",
    "deviceIds",
    "device_types",
    "deviceTypes",
    "label_filters",
    "labelFilters",
    "product_numbers",
    "productNumbers",
)


@dataclass(frozen=True, slots=True)
class DeviceFilter:
    ids: frozenset[str] = frozenset()
    types: frozenset[str] = frozenset()
    labels: tuple[tuple[str, str | None], ...] = ()
    product_numbers: frozenset[str] = frozenset()

    @classmethod
    def from_params(cls, params: QueryParams) -> DeviceFilter:
        types = qp.many(params, "device_types", "deviceTypes")
        for name in types:
            if device_type(name) is None:
                raise InvalidInput(f"unknown device type {name!r}", "device_types")
        return cls(
            ids=frozenset(qp.many(params, "device_ids", "deviceIds")),
            types=frozenset(types),
            labels=qp.label_filters(params, "label_filters", "labelFilters"),
            product_numbers=frozenset(qp.many(params, "product_numbers", "productNumbers")),
        )

    @property
    def on_device_properties(self) -> bool:
        """True when matching needs more than the device id."""
        return bool(self.types or self.labels or self.product_numbers)

    def matches(self, device: Device) -> bool:
        if self.ids and device.id not in self.ids:
            return False
        if self.types and device.type not in self.types:
            return False
        if self.product_numbers and product_number(device) not in self.product_numbers:
            return False
        for key, value in self.labels:
            have = device.labels.get(key)
            if have is None or (value is not None and have != value):
                return False
        return True
