"""What the delivery engine keeps: connectors (where and what to push) and their delivery state.

Both DT data connectors and native webhooks are a `Connector`; `flavour` picks the body shape
and the signature header. Connectors and their state are separate documents, so an API update
never races with the worker's checkpoints.
"""

from __future__ import annotations

from enum import StrEnum

import msgspec

from fleetlog.core.event import Event, Outcome

CONNECTOR_KIND = "delivery.connector"
STATE_KIND = "delivery.state"
METRICS_KIND = "delivery.metrics"
# A replay or :sync asked of a process that does not deliver, for the one that does.
COMMAND_KIND = "delivery.command"


class Flavour(StrEnum):
    DT = "dt"  # Disruptive Technologies data connector: DT body, X-Dt-Signature
    NATIVE = "native"  # fleetlog webhook: native event JSON, X-Fleetlog-Signature


class Status(StrEnum):
    ACTIVE = "ACTIVE"
    USER_DISABLED = "USER_DISABLED"
    SYSTEM_DISABLED = "SYSTEM_DISABLED"


class Filter(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Which of the scope's events are pushed. Empty lists mean "any"."""

    types: list[str] = []
    devices: list[str] = []
    labels: list[tuple[str, str | None]] = []  # (key, value) or (key, None): the label must exist
    outcomes: list[Outcome] = []
    min_severity: int = 1
    max_severity: int = 5

    @property
    def needs_device(self) -> bool:
        return bool(self.labels)

    def matches(self, event: Event) -> bool:
        """Everything but labels (which need a registry lookup): cheap, run on the bus."""
        if self.types and event.type not in self.types:
            return False
        if self.devices and event.device not in self.devices:
            return False
        if self.outcomes and event.outcome not in self.outcomes:
            return False
        return self.min_severity <= event.severity <= self.max_severity

    def matches_labels(self, labels: dict[str, str]) -> bool:
        return all((key in labels) if value is None else labels.get(key) == value for key, value in self.labels)


class Connector(msgspec.Struct, kw_only=True):
    id: str
    tenant: str
    flavour: Flavour
    project: str | None  # None: every project of the tenant (native webhooks only)
    url: str
    status: Status = Status.ACTIVE
    name: str = ""
    secret: str = ""
    headers: dict[str, str] = {}
    filter: Filter = msgspec.field(default_factory=Filter)
    include_labels: list[str] = []  # DT: label keys copied into each push
    created: int = 0
    updated: int = 0

    def in_scope(self, event: Event) -> bool:
        if event.tenant != self.tenant or (self.project is not None and event.project != self.project):
            return False
        if self.flavour is Flavour.DT and event.device is None and event.gateway is None:
            return False  # a DT push names a device: events of no device are not DT's
        return self.filter.matches(event)


class DeliveryState(msgspec.Struct, kw_only=True):
    """The durable part of a worker: everything at or below `seq` is delivered (or dropped).

    `replay_*`: events up to `replay_until` were asked for again at `replay_at`; their maximum
    age counts from then, not from their arrival.
    """

    seq: int = 0
    failing_since: int | None = None
    replay_until: int = 0
    replay_at: int = 0
