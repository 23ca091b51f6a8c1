"""Downstream messages waiting for a device (Span's outbox), as documents.

A message is `pending` until the device can be reached: in the reply to its next upstream
message (UDP reply to the sender's address, the HTTP response, an MQTT publish on its `down`
topic), or at once through a connected gateway. Then it is `sent`.

Document ids are `<deviceId>/<messageId>` so one device's messages are one id range; message
ids sort by creation time. Which devices have pending messages is kept in memory (loaded on
first use) so the upstream hot path never reads the store for devices with nothing waiting.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fleetlog.faces.span.model import OUTBOX, b64, sortable_id
from fleetlog.ports.clock import Clock
from fleetlog.ports.documents import DocumentStore


class Outbox:
    def __init__(self, documents: DocumentStore, clock: Clock) -> None:
        self._docs = documents
        self._clock = clock
        self._pending: set[tuple[str, str]] | None = None
        self._loading = asyncio.Lock()
        self._changing = asyncio.Lock()  # add/take/delete: keeps the pending set true

    async def _pending_set(self) -> set[tuple[str, str]]:
        if self._pending is None:
            async with self._loading:
                if self._pending is None:
                    found: set[tuple[str, str]] = set()
                    after: str | None = None
                    while True:
                        page = await self._docs.list(None, OUTBOX, after=after, limit=1000)
                        for tenant, _, doc in page:
                            if doc.get("state") == "pending":
                                found.add((tenant, doc["deviceId"]))
                        if len(page) < 1000:
                            break
                        after = page[-1][1]
                    self._pending = found
        return self._pending

    async def has_pending(self, tenant: str, device: str) -> bool:
        return (tenant, device) in await self._pending_set()

    async def pending_devices(self) -> set[tuple[str, str]]:
        """The (tenant, device) pairs with messages waiting (a live view: do not change it)."""
        return await self._pending_set()

    async def add(self, tenant: str, collection: str, device: str, payload: bytes) -> dict[str, Any]:
        now = self._clock.now_us()
        message_id = sortable_id(now)
        doc = {
            "messageId": message_id,
            "collectionId": collection,
            "deviceId": device,
            "createdTime": str(now // 1000),
            "transport": "unspecified",
            "state": "pending",
            "payload": b64(payload),
        }
        pending = await self._pending_set()
        async with self._changing:
            await self._docs.put(tenant, OUTBOX, f"{device}/{message_id}", doc)
            pending.add((tenant, device))
        return doc

    async def messages(self, tenant: str, device: str, limit: int = 1000) -> list[dict[str, Any]]:
        """The device's messages, oldest first."""
        prefix = f"{device}/"
        out: list[dict[str, Any]] = []
        after = prefix
        while len(out) < limit:
            page = await self._docs.list(tenant, OUTBOX, after=after, limit=min(500, limit - len(out)))
            mine = [doc for _, doc_id, doc in page if doc_id.startswith(prefix)]
            out += mine
            if len(mine) < len(page) or not page:
                break
            after = page[-1][1]
        return out

    async def get(self, tenant: str, device: str, message_id: str) -> dict[str, Any] | None:
        found = await self._docs.get(tenant, OUTBOX, f"{device}/{message_id}")
        return found if isinstance(found, dict) else None

    async def delete(self, tenant: str, device: str, message_id: str) -> bool:
        async with self._changing:
            removed = await self._docs.delete(tenant, OUTBOX, f"{device}/{message_id}")
            if removed:
                await self._recount(tenant, device)
        return removed

    async def forget_device(self, tenant: str, device: str) -> None:
        for doc in await self.messages(tenant, device):
            await self._docs.delete(tenant, OUTBOX, f"{device}/{doc['messageId']}")
        (await self._pending_set()).discard((tenant, device))

    async def take(self, tenant: str, device: str, transport: str, gateway: str | None = None) -> list[dict[str, Any]]:
        """The device's pending messages, now marked sent over `transport`."""
        if not await self.has_pending(tenant, device):
            return []
        now = str(self._clock.now_us() // 1000)
        sent: list[dict[str, Any]] = []
        async with self._changing:
            for doc in await self.messages(tenant, device):
                if doc.get("state") != "pending":
                    continue
                doc = {**doc, "state": "sent", "sentTime": now, "transport": transport}
                if gateway:
                    doc["gatewayId"] = gateway
                await self._docs.put(tenant, OUTBOX, f"{device}/{doc['messageId']}", doc)
                sent.append(doc)
            (await self._pending_set()).discard((tenant, device))
        return sent

    async def _recount(self, tenant: str, device: str) -> None:
        pending = await self._pending_set()
        if any(doc.get("state") == "pending" for doc in await self.messages(tenant, device)):
            pending.add((tenant, device))
        else:
            pending.discard((tenant, device))
