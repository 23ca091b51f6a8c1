"""Leases: work that one process at a time must do, among the processes sharing a store.

Pushing events to data connectors is such work: with two processes pushing, every event would
go out twice and their cursors would overwrite each other. The process that holds a lease does
the work; the others wait, and one of them takes over when the holder dies or loses its
connection to the store.
"""

from __future__ import annotations

import asyncio
from typing import Protocol


class Lease(Protocol):
    @property
    def lost(self) -> asyncio.Event:
        """Set once this process may no longer hold the lease: stop the work at once."""
        ...

    async def release(self) -> None: ...


class Leases(Protocol):
    # True when other processes share the store: work they ask for reaches the holder only
    # through the store, so the holder must look there for it.
    shared: bool

    async def acquire(self, name: str) -> Lease:
        """Wait until this process holds the lease called `name`."""
        ...


class SoleLease:
    """The lease of a store that only one process may open (SQLite): always held."""

    def __init__(self) -> None:
        self._lost = asyncio.Event()

    @property
    def lost(self) -> asyncio.Event:
        return self._lost

    async def release(self) -> None:
        return None


class SoleLeases:
    shared = False

    async def acquire(self, name: str) -> Lease:
        return SoleLease()
