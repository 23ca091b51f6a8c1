"""Span device transports: MQTT through Mosquitto and UDP, each next to its floor, in one run.

    uv run python -m bench.span_transports            # both, the figures of docs/benchmarks.md
    uv run python -m bench.span_transports --quick    # a smoke run (~30 s)
    uv run python -m bench.span_transports --only udp

MQTT (QoS 1): a backlog of messages waits at a private Mosquitto for a persistent session; then
the subscriber connects and drains it. Floor: the broker's own rate, `mosquitto_sub` (the C
client) draining the same backlog with fleetlog's session settings, acknowledging each message
as it arrives. fleetlog:
`fleetlog serve` with the MQTT transport, which stores every message (group commit) before it
acknowledges it. Sustained rate = messages stored between 10 % and 90 % of the backlog / time.
A live run also measures fleetlog while ten `mosquitto_pub` publishers send at full speed.

UDP: a sender process sends 64-byte datagrams from 100 loopback addresses (127.0.0.x, each a
device's allocated address). Floor: a bare asyncio receiver that only counts, with the sender
flat out. fleetlog: `fleetlog serve` with the UDP transport, storing each datagram as an
upstreamMessage, first with the sender paced at `--udp-rate` (25,000/s), then flat out. Rate =
datagrams stored per second in the middle of the window; what was lost is counted, and the CPU
fleetlog spent per stored datagram.

Everything runs on 127.0.0.1 of this machine. Results: a table on stdout and JSON in
bench/results/span-transports-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

HOST = "127.0.0.1"
TOKEN = "fl_operator_bench-span-operator-token-0123456789"
OP = {"Authorization": f"Bearer {TOKEN}"}
ROOT = Path(__file__).resolve().parent.parent
DEVICES = 100
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
MOSQUITTO_SUB = shutil.which("mosquitto_sub") or "/usr/bin/mosquitto_sub"
MOSQUITTO_PUB = shutil.which("mosquitto_pub") or "/usr/bin/mosquitto_pub"


def log(message: str) -> None:
    print(message, flush=True)


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def sustained(samples: list[tuple[float, int]], total: int) -> float:
    """Rate between 10 % and 90 % of `total` from (time, count) samples."""
    lo = next((s for s in samples if s[1] >= total * 0.1), None)
    hi = next((s for s in samples if s[1] >= total * 0.9), None)
    if lo is None or hi is None or hi[0] <= lo[0]:
        return 0.0
    return (hi[1] - lo[1]) / (hi[0] - lo[0])


# -- processes -------------------------------------------------------------------------------


class Broker:
    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        conf = workdir / "mosquitto.conf"
        conf.write_text(
            f"listener {self.port} {HOST}\nallow_anonymous true\nmax_queued_messages 0\n"
            "max_inflight_messages 1000\npersistence false\n"
        )
        self.log = open(workdir / "mosquitto.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection((HOST, self.port), timeout=0.2).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("mosquitto did not start") from None
                time.sleep(0.02)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        self.log.close()


class Fleetlog:
    """`fleetlog serve` as a child process, with a tenant `bench`, project `fleet`, devices."""

    def __init__(self, data_dir: Path, env: dict[str, str]) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.env = {**os.environ, "FLEETLOG_ADMIN_TOKEN": TOKEN, **env}
        self.proc: subprocess.Popen[bytes] | None = None
        self.key = ""

    def start(self) -> Fleetlog:
        log_file = open(self.data_dir / "server.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "fleetlog",
                "serve",
                "--data-dir",
                str(self.data_dir),
                "--port",
                str(self.port),
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log_file,
            stderr=log_file,
        )
        log_file.close()
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=0.5).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((self.data_dir / "server.log").read_text()[-2000:])
            time.sleep(0.05)

    def setup(self) -> None:
        with httpx.Client(base_url=self.url, headers=OP, timeout=30) as c:
            for path, body in [
                ("/v1/tenants", {"id": "bench", "retention_days": 36500}),
                ("/v1/tenants/bench/projects", {"id": "fleet"}),
            ]:
                c.post(path, json=body).raise_for_status()
            for d in range(DEVICES):
                c.post("/v1/tenants/bench/devices", json={"id": f"dev-{d}", "project": "fleet"}).raise_for_status()
            self.key = c.post("/v1/tenants/bench/keys", json={"role": "read"}).json()["token"]

    def transport(self, name: str) -> dict[str, Any]:
        r = httpx.get(f"{self.url}/span/transports", headers={"X-API-Token": self.key}, timeout=10)
        return next((t for t in r.json()["transports"] if t["name"] == name), {})

    def cpu(self) -> float:
        assert self.proc is not None
        return cpu_seconds(self.proc.pid)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# -- MQTT ------------------------------------------------------------------------------------


def publish(port: int, n: int, topics: list[str]) -> float:
    """Publish n QoS 1 messages (284 bytes) spread over `topics`, one `mosquitto_pub` (C) per
    topic, all at once; returns msg/s."""
    lines = ("x" * 284 + "\n").encode()
    procs = []
    start = time.perf_counter()
    for k, topic in enumerate(topics):
        count = n // len(topics) + (1 if k < n % len(topics) else 0)
        proc = subprocess.Popen(
            [MOSQUITTO_PUB, "-h", HOST, "-p", str(port), "-t", topic, "-q", "1", "-l", "-i", f"pub-{k}"],
            stdin=subprocess.PIPE,
        )
        procs.append((proc, lines * count))
    for proc, data in procs:
        proc.communicate(data)
    for proc, _ in procs:
        if proc.returncode != 0:
            raise RuntimeError(f"mosquitto_pub failed: {proc.returncode}")
    return n / (time.perf_counter() - start)


def broker_drain(port: int, topic: str, n: int, client_id: str, connect_only: bool = False) -> float:
    """The broker's own rate: `mosquitto_sub` (C) drains n messages with fleetlog's session
    settings (MQTT 3.1.1, persistent session, QoS 1, acknowledging each on arrival)."""
    argv = [
        MOSQUITTO_SUB,
        "-h",
        HOST,
        "-p",
        str(port),
        "-t",
        topic,
        "-q",
        "1",
        "-c",
        "-i",
        client_id,
        "-V",
        "311",
        "-N",
    ]
    if connect_only:
        subprocess.run([*argv, "-W", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return 0.0
    start = time.perf_counter()
    subprocess.run([*argv, "-C", str(n)], stdout=subprocess.DEVNULL, check=True)
    return n / (time.perf_counter() - start)


def watch(fleetlog: Fleetlog, name: str, total: int, timeout: float) -> tuple[list[tuple[float, int]], dict[str, Any]]:
    samples: list[tuple[float, int]] = []
    deadline = time.monotonic() + timeout
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = fleetlog.transport(name)
        samples.append((time.monotonic(), int(status.get("stored", 0))))
        if samples[-1][1] >= total:
            break
        time.sleep(0.25)
    return samples, status


def bench_mqtt(workdir: Path, n: int) -> dict[str, Any]:
    out: dict[str, Any] = {"messages": n, "payload_bytes": 284}
    broker = Broker(workdir)
    try:
        # Floor: a bare subscriber drains the backlog.
        broker_drain(broker.port, "floor/+/up", n, "floor-sub", connect_only=True)
        out["publish_rate"] = round(publish(broker.port, n, [f"floor/{d}/up" for d in range(10)]))
        out["floor_drain_rate"] = round(broker_drain(broker.port, "floor/+/up", n, "floor-sub"))
        log(
            f"  mqtt floor: mosquitto_sub drains {out['floor_drain_rate']:,} msg/s "
            f"(publisher {out['publish_rate']:,} msg/s)"
        )

        # fleetlog drains the same backlog, storing every message before acknowledging it.
        data = workdir / "fleetlog-mqtt"
        data.mkdir()
        env = {"FLEETLOG_SPAN_MQTT_URL": f"mqtt://{HOST}:{broker.port}", "FLEETLOG_SPAN_MQTT_CLIENT_ID": "fl-bench"}
        server = Fleetlog(data, env).start()
        server.setup()
        while server.transport("mqtt").get("state") != "connected":
            time.sleep(0.05)
        server.stop()  # the broker keeps the session (and queues for it) while fleetlog is away
        publish(broker.port, n, [f"span/bench/fleet/dev-{d}/up" for d in range(10)])
        # The broker is paused while fleetlog starts, so that the drain is measured from its start.
        key = server.key
        server = Fleetlog(data, env)
        server.key = key
        broker.proc.send_signal(signal.SIGSTOP)
        server.start()
        cpu0 = server.cpu()
        broker.proc.send_signal(signal.SIGCONT)
        samples, status = watch(server, "mqtt", n, timeout=600)
        cpu = server.cpu() - cpu0
        out["fleetlog_drain_rate"] = round(sustained(samples, n))
        out["fleetlog_stored"] = status.get("stored", 0)
        out["fleetlog_cpu_seconds"] = round(cpu, 1)
        log(
            f"  mqtt fleetlog: drains and stores {out['fleetlog_drain_rate']:,} msg/s sustained "
            f"({out['fleetlog_stored']:,}/{n} stored, {cpu:.1f} s CPU)"
        )

        # Live: a publisher at full speed while fleetlog stores.
        base = int(server.transport("mqtt").get("stored", 0))
        start = time.monotonic()
        rate = publish(broker.port, n, [f"span/bench/fleet/dev-{d}/up" for d in range(10)])
        samples, status = watch(server, "mqtt", base + n, timeout=600)
        end = next((t for t, c in samples if c >= base + n), samples[-1][0])
        out["live_publish_rate"] = round(rate)
        out["live_stored_rate"] = round((int(status.get("stored", 0)) - base) / (end - start))
        log(
            f"  mqtt live: publisher {out['live_publish_rate']:,} msg/s, fleetlog stored {out['live_stored_rate']:,} "
            f"msg/s end to end"
        )
        server.stop()
    finally:
        broker.stop()
    return out


# -- UDP -------------------------------------------------------------------------------------

SENDER = r"""
import socket, sys, time
port, seconds, n_addr, rate = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
socks = []
for i in range(n_addr):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((f"127.0.0.{10 + i}", 0))
    socks.append(s)
payload = b"x" * 64
dest = ("127.0.0.1", port)
sent = 0
start = time.monotonic()
end = start + seconds
while True:
    now = time.monotonic()
    if now >= end:
        break
    due = int((now - start) * rate) if rate else sent + n_addr  # rate 0: as fast as possible
    while sent < due:
        socks[sent % n_addr].sendto(payload, dest)
        sent += 1
    if rate:
        time.sleep(0.001)
print(sent)
"""

RECEIVER = r"""
import asyncio, socket, sys, time
port, seconds = int(sys.argv[1]), float(sys.argv[2])
count = [0]
class P(asyncio.DatagramProtocol):
    def datagram_received(self, data, addr):
        count[0] += 1
async def main():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 1024 * 1024)
    sock.bind(("127.0.0.1", port))
    t, _ = await asyncio.get_running_loop().create_datagram_endpoint(P, sock=sock)
    print("ready", flush=True)
    await asyncio.sleep(0.5 + seconds * 0.1)
    c0, t0 = count[0], time.monotonic()
    await asyncio.sleep(seconds * 0.8)
    print(round((count[0] - c0) / (time.monotonic() - t0)), flush=True)
    await asyncio.sleep(seconds * 0.1 + 1)
asyncio.run(main())
"""


def udp_rcvbuf_errors() -> int:
    lines = Path("/proc/net/snmp").read_text().splitlines()
    head, values = [line.split() for line in lines if line.startswith("Udp:")][:2]
    return int(values[head.index("RcvbufErrors")])


def send(port: int, seconds: float, rate: float = 0.0) -> subprocess.Popen[str]:
    """A sender process: `rate` datagrams/s, or as fast as it can (0)."""
    return subprocess.Popen(
        [sys.executable, "-c", SENDER, str(port), str(seconds), str(DEVICES), str(rate)],
        stdout=subprocess.PIPE,
        text=True,
    )


def udp_run(server: Fleetlog, port: int, seconds: float, rate: float) -> dict[str, Any]:
    """Send for `seconds` at `rate` (0: flat out); what fleetlog stored, at what rate, lost, CPU."""
    base = int(server.transport("udp").get("stored", 0))
    errors0, cpu0 = udp_rcvbuf_errors(), server.cpu()
    sender = send(port, seconds, rate)
    samples: list[tuple[float, int]] = []
    while sender.poll() is None:
        samples.append((time.monotonic(), int(server.transport("udp").get("stored", 0))))
        time.sleep(0.25)
    sent = int(sender.communicate()[0])
    time.sleep(2.0)  # let fleetlog store what it had queued
    stored = int(server.transport("udp").get("stored", 0)) - base
    cpu = server.cpu() - cpu0
    middle = [s for s in samples if samples[0][0] + seconds * 0.2 <= s[0] <= samples[0][0] + seconds * 0.8]
    stored_rate = (middle[-1][1] - middle[0][1]) / (middle[-1][0] - middle[0][0]) if len(middle) > 1 else 0.0
    return {
        "offered_rate": rate or None,
        "sent": sent,
        "send_rate": round(sent / seconds),
        "stored": stored,
        "stored_rate": round(stored_rate),
        "lost": sent - stored,
        "kernel_rcvbuf_errors": udp_rcvbuf_errors() - errors0,
        "fleetlog_cpu_seconds": round(cpu, 1),
        "cpu_us_per_datagram": round(cpu / max(stored, 1) * 1e6, 1),
    }


def bench_udp(workdir: Path, seconds: float, paced_rate: float) -> dict[str, Any]:
    out: dict[str, Any] = {"seconds": seconds, "payload_bytes": 64, "source_addresses": DEVICES}
    # The floor and the flat-out run use a sender that takes a whole core of this machine; the
    # paced run offers a fixed rate, which leaves fleetlog the other core.
    # Floor: a bare receiver that only counts.
    port = free_port(socket.SOCK_DGRAM)
    receiver = subprocess.Popen(
        [sys.executable, "-c", RECEIVER, str(port), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert receiver.stdout is not None
    receiver.stdout.readline()
    sender = send(port, seconds)
    sent, _ = sender.communicate()
    out["floor_receive_rate"] = int(receiver.stdout.readline())
    receiver.wait()
    out["floor_send_rate"] = round(int(sent) / seconds)
    log(
        f"  udp floor: bare receiver counts {out['floor_receive_rate']:,} datagrams/s "
        f"(sender {out['floor_send_rate']:,}/s)"
    )

    # fleetlog: every datagram from an allocated address stored as an upstreamMessage.
    data = workdir / "fleetlog-udp"
    data.mkdir()
    port = free_port(socket.SOCK_DGRAM)
    server = Fleetlog(data, {"FLEETLOG_SPAN_UDP_PORT": str(port)}).start()
    server.setup()
    # Each device gets an IMSI (Span API, tenant admin key), then the network allocates it an address.
    admin = httpx.post(f"{server.url}/v1/tenants/bench/keys", json={"role": "admin"}, headers=OP).json()["token"]
    with httpx.Client(base_url=server.url, headers={"X-API-Token": admin}, timeout=30) as c:
        for d in range(DEVICES):
            imsi = f"24201{d:010d}"
            c.patch(
                f"/span/collections/fleet/devices/dev-{d}", json={"config": {"ciot": {"imsi": imsi}}}
            ).raise_for_status()
    with httpx.Client(base_url=server.url, headers=OP, timeout=30) as c:
        for d in range(DEVICES):
            c.post("/span/ciot/attach", json={"imsi": f"24201{d:010d}", "ip": f"127.0.0.{10 + d}"}).raise_for_status()
    while server.transport("udp").get("state") != "listening":
        time.sleep(0.05)
    for label, rate in (("paced", paced_rate), ("flat out", 0.0)):
        out[label.replace(" ", "_")] = run = udp_run(server, port, seconds, rate)
        log(
            f"  udp fleetlog, sender {label}: stores {run['stored_rate']:,} datagrams/s sustained "
            f"(offered {run['send_rate']:,}/s; {run['lost']:,} of {run['sent']:,} lost, "
            f"{run['kernel_rcvbuf_errors']:,} of them in the kernel; {run['cpu_us_per_datagram']} µs CPU each)"
        )
    server.stop()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small run (smoke test)")
    parser.add_argument("--only", choices=["mqtt", "udp"])
    parser.add_argument("--mqtt-messages", type=int, default=200_000)
    parser.add_argument("--udp-seconds", type=float, default=20.0)
    parser.add_argument("--udp-rate", type=float, default=25_000, help="datagrams/s of the paced run")
    args = parser.parse_args()
    n = 20_000 if args.quick else args.mqtt_messages
    seconds = 5.0 if args.quick else args.udp_seconds
    results: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "cores": os.cpu_count(),
        "load_average_start": round(os.getloadavg()[0], 1),
    }
    log(f"load average {results['load_average_start']} (2 cores shared with other work skew every figure)")
    with tempfile.TemporaryDirectory(prefix="span-bench-") as tmp:
        work = Path(tmp)
        if args.only in (None, "mqtt"):
            log("MQTT through Mosquitto (QoS 1)")
            results["mqtt"] = bench_mqtt(work, n)
        if args.only in (None, "udp"):
            log("UDP")
            results["udp"] = bench_udp(work, seconds, args.udp_rate)
    results["load_average_end"] = round(os.getloadavg()[0], 1)
    log(f"load average {results['load_average_end']}")
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"span-transports-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    log(f"results: {path}")


if __name__ == "__main__":
    main()
