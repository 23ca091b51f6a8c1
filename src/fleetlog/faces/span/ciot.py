"""Cellular IoT: network-attach reports and the addresses they allocate.

A network-attach report says: SIM `imsi` in modem `imei` attached and was given address `ip`.
- A device configured with that IMSI whose configured IMEI differs: imeiMismatch (the SIM moved
  to another modem). No address is allocated.
- Else a device configured with that IMEI whose configured IMSI differs: imsiMismatch (the modem
  got another SIM). No address is allocated.
- Else the device with that IMSI: ciotConnect; datagrams from `ip` are now that device's.
- No device with that IMSI or IMEI: the report is refused (404), nothing is stored.

Reports come from the network side, which is infrastructure: they need the operator key, since
an allocated address routes data to a device, and a tenant must not be able to route another
tenant's traffic to itself. The report may name the tenant; else every tenant is searched and
an IMSI configured in more than one tenant is refused.

IMSI/IMEI lookups use an index per tenant, built on first use from the registry and kept true
by the directory's change listener. Allocated addresses are documents (tenant "", kind
`span.ciot.address`, id = the IP) so they survive restarts, cached in memory.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from fleetlog.core.registry import Device, DeviceChange
from fleetlog.faces.span.model import ADDRESS, ciot_config
from fleetlog.pipeline.directory import Directory
from fleetlog.ports.documents import DocumentStore

NEGATIVE_CACHE = 10_000


@dataclass
class _Index:
    by_imsi: dict[str, str] = field(default_factory=dict)
    by_imei: dict[str, str] = field(default_factory=dict)

    def add(self, device: Device) -> None:
        imsi, imei = ciot_config(device)
        if imsi:
            self.by_imsi[imsi] = device.id
        if imei:
            self.by_imei[imei] = device.id

    def remove(self, device: Device) -> None:
        imsi, imei = ciot_config(device)
        if imsi and self.by_imsi.get(imsi) == device.id:
            del self.by_imsi[imsi]
        if imei and self.by_imei.get(imei) == device.id:
            del self.by_imei[imei]


@dataclass(frozen=True)
class Verdict:
    event: str  # ciotConnect, imsiMismatch or imeiMismatch
    device: Device
    data: dict[str, str]


class Ciot:
    def __init__(self, directory: Directory, documents: DocumentStore) -> None:
        self._directory = directory
        self._docs = documents
        self._indexes: dict[str, _Index] = {}
        self._addresses: dict[str, tuple[str, str]] = {}
        self._unknown: OrderedDict[str, None] = OrderedDict()

    async def on_change(self, change: DeviceChange) -> None:
        device = change.after or change.before
        if device is None or device.tenant not in self._indexes:
            return
        index = self._indexes[device.tenant]
        if change.before is not None:
            index.remove(change.before)
        if change.after is not None:
            index.add(change.after)

    async def _index(self, tenant: str) -> _Index:
        index = self._indexes.get(tenant)
        if index is None:
            index = _Index()
            after: str | None = None
            while True:
                page = await self._directory.registry.list_devices(tenant, after=after, limit=1000)
                for device in page:
                    index.add(device)
                if len(page) < 1000:
                    break
                after = page[-1].id
            self._indexes[tenant] = index
        return index

    async def owners(self, tenant: str, imsi: str, imei: str) -> tuple[str | None, str | None]:
        """The devices of `tenant` configured with this IMSI and with this IMEI."""
        index = await self._index(tenant)
        return (index.by_imsi.get(imsi) if imsi else None), (index.by_imei.get(imei) if imei else None)

    async def judge_any(self, tenants: list[str], imsi: str, imei: str) -> list[Verdict]:
        """The verdict in each of `tenants` that knows the IMSI or IMEI."""
        found: list[Verdict] = []
        for tenant in tenants:
            verdict = await self.judge(tenant, imsi, imei)
            if verdict is not None:
                found.append(verdict)
        return found

    async def judge(self, tenant: str, imsi: str, imei: str) -> Verdict | None:
        """Which device of `tenant` this attach is, and whether its configuration agrees."""
        index = await self._index(tenant)
        by_imsi = index.by_imsi.get(imsi)
        if by_imsi is not None:
            device = await self._directory.device(tenant, by_imsi)
            _, expected_imei = ciot_config(device)
            if expected_imei and imei and expected_imei != imei:
                return Verdict("imeiMismatch", device, {"expected": expected_imei, "actual": imei})
            return Verdict("ciotConnect", device, {"imsi": imsi, "imei": imei})
        by_imei = index.by_imei.get(imei) if imei else None
        if by_imei is not None:
            device = await self._directory.device(tenant, by_imei)
            expected_imsi, _ = ciot_config(device)
            if expected_imsi and expected_imsi != imsi:
                return Verdict("imsiMismatch", device, {"expected": expected_imsi, "actual": imsi})
            return Verdict("ciotConnect", device, {"imsi": imsi, "imei": imei})
        return None

    async def allocate(self, ip: str, tenant: str, device: str) -> None:
        await self._docs.put("", ADDRESS, ip, {"tenant": tenant, "device": device})
        self._addresses[ip] = (tenant, device)
        self._unknown.pop(ip, None)

    async def resolve(self, ip: str) -> tuple[str, str] | None:
        """(tenant, device) that was allocated `ip`, or None."""
        found = self._addresses.get(ip)
        if found is not None or ip in self._unknown:
            return found
        doc = await self._docs.get("", ADDRESS, ip)
        if isinstance(doc, dict):
            found = (str(doc["tenant"]), str(doc["device"]))
            self._addresses[ip] = found
            return found
        # Remember unknown senders for a while: a flood from one must not become store reads.
        self._unknown[ip] = None
        if len(self._unknown) > NEGATIVE_CACHE:
            self._unknown.popitem(last=False)
        return None
