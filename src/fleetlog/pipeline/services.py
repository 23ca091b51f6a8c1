"""Everything a face needs, in one object handed to it by the bootstrap."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from fleetlog.config import Config
from fleetlog.core.catalog import Catalog
from fleetlog.pipeline.directory import Directory
from fleetlog.pipeline.ingest import Ingest
from fleetlog.ports.bus import Bus
from fleetlog.ports.clock import Clock
from fleetlog.ports.documents import DocumentStore
from fleetlog.ports.lease import Leases, SoleLeases
from fleetlog.ports.store import EventStore


@dataclass(frozen=True)
class Limits:
    max_event_bytes: int = 256 * 1024
    max_batch_bytes: int = 16 * 1024 * 1024
    max_batch_items: int = 10_000


@dataclass
class Services:
    ingest: Ingest
    directory: Directory
    store: EventStore
    bus: Bus
    catalog: Catalog
    clock: Clock
    documents: DocumentStore
    leases: Leases = field(default_factory=SoleLeases)
    limits: Limits = field(default_factory=Limits)
    config: Config = field(default_factory=Config)
    deferred_wake: asyncio.Event = field(default_factory=asyncio.Event)
    ready: bool = False
    extras: dict[str, Any] = field(default_factory=dict)
