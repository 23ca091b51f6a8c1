"""fleetlog benchmarks: every figure of docs/benchmarks.md, each next to its floor, in one run.

    uv run python -m bench                 # everything; query store of 1M events
    uv run python -m bench --events-10m    # everything; query store of 10M events (the docs)
    uv run python -m bench --quick         # a smoke run of every step (~1 minute)
    uv run python -m bench --only batch    # some of: ingest, latency, batch, query

Needs `wrk` (apt-get install -y wrk). Servers and load run on 127.0.0.1 of this machine.
Results: a table on stdout, JSON + Markdown in bench/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from bench import loadgen, payloads, servers, sqlite_floor, store, wrk

HERE = Path(__file__).resolve().parent
SECTIONS = ("ingest", "latency", "batch", "query")
TARGETS = {
    "ingest": 5000.0,  # events/s, one per request, each answered after its commit
    "latency_p99_ms": 50.0,  # at a fixed 2,500 events/s
    "batch": 50_000.0,  # events/s, JSON arrays of 1,000
    "query_p99_ms": 10.0,  # one page of 100 of one device, out of 10M events, in the server
}


def log(message: str) -> None:
    print(message, flush=True)


def machine() -> dict[str, Any]:
    cpu = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    versions = {p: metadata.version(p) for p in ("uvicorn", "starlette", "msgspec", "uvloop", "httptools")}
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[0]
    return {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "wrk": wrk_version.strip(),
        **versions,
    }


def wrk_windows(
    url: str,
    script: str,
    *,
    seconds: float,
    window: float,
    connections: int,
    env: dict[str, str],
    server: servers.Server | None = None,
) -> dict[str, Any]:
    """Consecutive wrk runs of `window` seconds: the total, and the slowest window (sustained)."""
    runs = []
    watch = servers.CpuWatch(server)
    for n in range(max(1, round(seconds / window))):
        # every window gets timestamps of its own (a window sends < 100M ms worth of them)
        base = int(time.time() * 1000) + (1 + n) * 100_000_000
        runs.append(
            wrk.run(url, script, seconds=window, connections=connections, env={**env, "BENCH_BASE_MS": str(base)})
        )
    requests = sum(r["requests"] for r in runs)
    duration = sum(r["duration_us"] for r in runs) / 1e6
    return {
        "rate_per_s": requests / duration,
        "requests": requests,
        "seconds": duration,
        "min_window_rate_per_s": min(r["rate_per_s"] for r in runs),
        "windows": [round(r["rate_per_s"]) for r in runs],
        "errors": sum(r["errors"] for r in runs),
        "p50_us": max(r["p50_us"] for r in runs),
        "p99_us": max(r["p99_us"] for r in runs),
        "connections": connections,
        **watch.stop(),
    }


def counters(url: str) -> dict[str, float]:
    m = servers.metrics(url)
    return {
        "created": m.get('fleetlog_events_total{result="created"}', 0.0),
        "commits": m.get("fleetlog_store_commits_total", 0.0),
        "jobs": m.get("fleetlog_store_jobs_total", 0.0),
    }


def tenant_maker(fleet: servers.Fleet) -> Any:
    base = int(time.time() * 1000) - 1_000_000_000  # before any wrk window's timestamps

    def make(i: int) -> bytes:
        body = payloads.tenant_body(i, base)
        return payloads.tenant_request(fleet.tenant, f"dev-{i % fleet.devices}", fleet.write_key, body)

    return make


def smoke(url: str, fleet: servers.Fleet) -> None:
    """One request of each kind the load sends, checked, so a broken payload fails loudly."""
    import httpx

    make = tenant_maker(fleet)
    raw = make(0)
    head, body = raw.split(b"\r\n\r\n", 1)
    path = head.split(b" ")[1].decode()
    r = httpx.post(url + path, content=body, headers={"X-API-Key": fleet.write_key, "Content-Type": "application/json"})
    if r.status_code != 201:
        raise RuntimeError(f"tenant ingest answered {r.status_code}: {r.text}")


def run_ingest(args: argparse.Namespace, sections: set[str], results: dict[str, Any]) -> None:
    work = store.CACHE / "ingest"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    devices = 100 if args.quick else 1000
    port, bare_port = servers.free_port(), servers.free_port()
    with (
        servers.fleetlog_server(work / "data", port, log=work / "server.log") as srv,
        servers.bare_server(bare_port) as bare,
    ):
        log(f"fleetlog on :{port}, bare endpoint on :{bare_port}; setting up {devices} devices ...")
        fleet = servers.setup_fleet(srv.url, devices=devices)
        smoke(srv.url, fleet)
        env = {
            "BENCH_KEY": fleet.write_key,
            "BENCH_TENANT": fleet.tenant,
            "BENCH_DEVICES": str(devices),
            "BENCH_BATCH": str(args.batch),
        }
        window = 3.0 if args.quick else 10.0
        if "ingest" in sections:
            log("tenant ingest, one event per request, closed loop (wrk) ...")
            wrk_windows(
                srv.url, "tenant", seconds=window / 3, window=window / 3, connections=args.connections, env=env
            )  # warm-up
            before = counters(srv.url)
            fl = wrk_windows(
                srv.url,
                "tenant",
                seconds=args.seconds,
                window=window,
                connections=args.connections,
                env=env,
                server=srv,
            )
            after = counters(srv.url)
            fl["created"] = after["created"] - before["created"]
            fl["jobs_per_commit"] = (after["jobs"] - before["jobs"]) / max(1.0, after["commits"] - before["commits"])
            fl["server_cpu_us_per_event"] = fl["server_cores"] * fl["seconds"] / max(1, fl["created"]) * 1e6
            floor = wrk_windows(
                bare.url,
                "tenant",
                seconds=args.seconds / 2,
                window=window,
                connections=args.connections,
                env=env,
                server=bare,
            )
            floor["server_cpu_us_per_request"] = floor["server_cores"] * floor["seconds"] / floor["requests"] * 1e6
            group = max(1, round(fl["jobs_per_commit"]))
            rows = 30_000 if args.quick else 300_000
            log(f"raw sqlite3 floors: 1 row and {group} rows per transaction ...")
            sql1 = sqlite_floor.insert_rate(work / "floor", 1, count=rows // 10, devices=devices)
            sqlg = sqlite_floor.insert_rate(work / "floor", group, count=rows, devices=devices)
            results["ingest"] = {"fleetlog": fl, "bare": floor, "sqlite_1": sql1, "sqlite_group": sqlg}
            log(
                f"  fleetlog {fl['rate_per_s']:,.0f} events/s (slowest window {fl['min_window_rate_per_s']:,.0f}; "
                f"server {fl['server_cores']} cores, machine {fl['machine_busy_cores']}), "
                f"bare {floor['rate_per_s']:,.0f} req/s, sqlite {sql1['rate_per_s']:,.0f} rows/s at 1/txn, "
                f"{sqlg['rate_per_s']:,.0f} at {group}/txn"
            )
        if "latency" in sections:
            log(f"tenant ingest at a fixed {args.rate:,.0f} events/s (open loop) ...")
            seconds = 5.0 if args.quick else args.seconds
            watch, before = servers.CpuWatch(srv), counters(srv.url)
            fl = loadgen.fixed_rate(tenant_maker(fleet), port, rate=args.rate, seconds=seconds)
            after = counters(srv.url)
            fl.update(watch.stop())
            fl["jobs_per_commit"] = (after["jobs"] - before["jobs"]) / max(1.0, after["commits"] - before["commits"])
            watch = servers.CpuWatch(bare)
            floor = loadgen.fixed_rate(tenant_maker(fleet), bare_port, rate=args.rate, seconds=seconds)
            floor.update(watch.stop())
            group = max(1, round(fl["jobs_per_commit"]))
            sqlg = sqlite_floor.insert_rate(work / "floor", group, count=max(20_000, 200 * group), devices=devices)
            results["latency"] = {"fleetlog": fl, "bare": floor, "sqlite_group": sqlg}
            log(
                f"  fleetlog p50 {fl['p50_us'] / 1000:.2f} ms p99 {fl['p99_us'] / 1000:.2f} ms "
                f"(errors {fl['errors']}), bare p99 {floor['p99_us'] / 1000:.2f} ms, "
                f"sqlite {group}-row txn p99 {sqlg['txn_p99_us'] / 1000:.2f} ms"
            )
        if "batch" in sections:
            log(f"batch ingest, JSON arrays of {args.batch} events, closed loop (wrk) ...")
            wrk_windows(srv.url, "batch", seconds=2, window=2, connections=args.batch_connections, env=env)
            before = counters(srv.url)
            fl = wrk_windows(
                srv.url,
                "batch",
                seconds=args.seconds / 2,
                window=window,
                connections=args.batch_connections,
                env=env,
                server=srv,
            )
            after = counters(srv.url)
            fl["created"] = after["created"] - before["created"]
            fl["events_per_s"] = fl["rate_per_s"] * args.batch
            fl["min_window_events_per_s"] = fl["min_window_rate_per_s"] * args.batch
            fl["jobs_per_commit"] = (after["jobs"] - before["jobs"]) / max(1.0, after["commits"] - before["commits"])
            fl["server_cpu_us_per_event"] = fl["server_cores"] * fl["seconds"] / max(1, fl["created"]) * 1e6
            floor = wrk_windows(
                bare.url,
                "batch",
                seconds=window,
                window=window,
                connections=args.batch_connections,
                env={**env, "BENCH_POOL": "16"},
                server=bare,
            )
            floor["events_per_s"] = floor["rate_per_s"] * args.batch
            sqlb = sqlite_floor.insert_rate(
                work / "floor", args.batch, count=30_000 if args.quick else 300_000, devices=devices
            )
            group = max(1, round(fl["jobs_per_commit"] * args.batch))
            sqli = sqlite_floor.insert_rate(
                work / "floor", group, count=30_000 if args.quick else 300_000, devices=devices, indexed=True
            )
            results["batch"] = {"fleetlog": fl, "bare": floor, "sqlite_batch": sqlb, "sqlite_indexed": sqli}
            log(
                f"  fleetlog {fl['events_per_s']:,.0f} events/s (server {fl['server_cores']} cores, "
                f"machine {fl['machine_busy_cores']}), bare {floor['events_per_s']:,.0f}, "
                f"sqlite {sqlb['rate_per_s']:,.0f} rows/s at {args.batch}/txn, "
                f"{sqli['rate_per_s']:,.0f} with fleetlog's indexes at {group}/txn (fleetlog's mean commit)"
            )
        results["ingest_store_events"] = counters(srv.url)["created"]
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


def run_query(args: argparse.Namespace, results: dict[str, Any]) -> None:
    info = store.ensure(args.store_events, log=log)
    how = "cached" if info["reused"] else f"built in {info['build_seconds']}s"
    log(f"query store: {info['events']:,} events, {info['devices']:,} devices, {info['db_bytes'] / 1e9:.2f} GB ({how})")
    samples = 1000 if args.quick else 5000
    log(f"in-process: {samples} pages of 100 of random devices ...")
    timing = store.query_timings(info, samples)
    port, bare_port = servers.free_port(), servers.free_port()
    env = {"BENCH_KEY": info["read_key"], "BENCH_TENANT": info["tenant"], "BENCH_DEVICES": str(info["devices"])}
    seconds = 3.0 if args.quick else 10.0
    with servers.fleetlog_server(Path(info["path"]), port) as srv, servers.bare_server(bare_port) as bare:
        log("HTTP round trip (wrk, 1 connection) and pages/s (wrk, 16 connections) ...")
        http1 = wrk.run(srv.url, "page", seconds=seconds, connections=1, env=env)
        http16 = wrk.run(srv.url, "page", seconds=seconds, connections=16, env=env)
        bare1 = wrk.run(bare.url, "page", seconds=seconds, connections=1, env=env)
        bare16 = wrk.run(bare.url, "page", seconds=seconds, connections=16, env=env)
    results["query"] = {
        "store": {k: v for k, v in info.items() if not k.endswith("_key")},
        **timing,
        "http_1conn": http1,
        "http_16conn": http16,
        "bare_1conn": bare1,
        "bare_16conn": bare16,
    }
    log(
        f"  store query p50 {timing['store_query']['p50_ms']:.2f} ms p99 {timing['store_query']['p99_ms']:.2f} ms; "
        f"raw SQL p99 {timing['raw_sql_floor']['p99_ms']:.2f} ms; HTTP p99 {http1['p99_us'] / 1000:.2f} ms "
        f"(bare {bare1['p99_us'] / 1000:.2f} ms)"
    )


def pct(a: float, b: float) -> str:
    return f"{a / b:.0%}" if b else "-"


def table(results: dict[str, Any], args: argparse.Namespace) -> str:
    out = [
        "| figure | fleetlog | target | floor: bare endpoint | fleetlog / bare "
        "| floor: raw sqlite3 | fleetlog / sqlite |",
        "|---|---|---|---|---|---|---|",
    ]
    if "ingest" in results:
        r = results["ingest"]
        fl, bare, s1, sg = r["fleetlog"], r["bare"], r["sqlite_1"], r["sqlite_group"]
        ok = "met" if fl["min_window_rate_per_s"] >= TARGETS["ingest"] and fl["errors"] == 0 else "NOT met"
        out.append(
            f"| tenant ingest, 1 event/request, durable (wrk -c{fl['connections']}) | "
            f"{fl['rate_per_s']:,.0f} events/s (slowest 10 s: {fl['min_window_rate_per_s']:,.0f}) | "
            f">= 5,000 ({ok}) | {bare['rate_per_s']:,.0f} req/s | {pct(fl['rate_per_s'], bare['rate_per_s'])} | "
            f"{s1['rate_per_s']:,.0f} rows/s at 1 row/txn; {sg['rate_per_s']:,.0f} at {sg['rows_per_transaction']} "
            f"rows/txn | {pct(fl['rate_per_s'], s1['rate_per_s'])}; {pct(fl['rate_per_s'], sg['rate_per_s'])} |"
        )
    if "latency" in results:
        r = results["latency"]
        fl, bare, sg = r["fleetlog"], r["bare"], r["sqlite_group"]
        ok = "met" if fl["p99_us"] / 1000 <= TARGETS["latency_p99_ms"] and fl["errors"] == 0 else "NOT met"
        out.append(
            f"| tenant ingest at a fixed {fl['target_rate_per_s']:,.0f}/s: p99 (p50) | "
            f"{fl['p99_us'] / 1000:.1f} ms ({fl['p50_us'] / 1000:.1f} ms) | <= 50 ms ({ok}) | "
            f"{bare['p99_us'] / 1000:.1f} ms ({bare['p50_us'] / 1000:.1f} ms) | "
            f"{fl['p99_us'] / bare['p99_us']:.1f}x | {sg['txn_p99_us'] / 1000:.2f} ms per "
            f"{sg['rows_per_transaction']}-row "
            f"txn | {fl['p99_us'] / sg['txn_p99_us']:.1f}x |"
        )
    if "batch" in results:
        r = results["batch"]
        fl, bare, sb = r["fleetlog"], r["bare"], r["sqlite_batch"]
        si = r.get("sqlite_indexed")
        ok = "met" if fl["events_per_s"] >= TARGETS["batch"] and fl["errors"] == 0 else "NOT met"
        indexed = f"; {si['rate_per_s']:,.0f} with fleetlog's indexes at {si['rows_per_transaction']}/txn" if si else ""
        out.append(
            f"| batch ingest, arrays of {args.batch}, durable (wrk -c{fl['connections']}) | "
            f"{fl['events_per_s']:,.0f} events/s | >= 50,000 ({ok}) | {bare['events_per_s']:,.0f} events/s | "
            f"{pct(fl['events_per_s'], bare['events_per_s'])} | {sb['rate_per_s']:,.0f} rows/s at "
            f"{sb['rows_per_transaction']}/txn, no index{indexed} | {pct(fl['events_per_s'], sb['rate_per_s'])}"
            + (f"; {pct(fl['events_per_s'], si['rate_per_s'])}" if si else "")
            + " |"
        )
    if "query" in results:
        r = results["query"]
        sq, raw, h1, b1 = r["store_query"], r["raw_sql_floor"], r["http_1conn"], r["bare_1conn"]
        n = r["store"]["events"]
        ok = (
            "met"
            if sq["p99_ms"] <= TARGETS["query_p99_ms"] and n >= 10_000_000
            else ("NOT met" if sq["p99_ms"] > TARGETS["query_p99_ms"] else "store < 10M")
        )
        out.append(
            f"| page of 100 of one device, {n / 1e6:g}M events: store query in-process p99 (p50) | "
            f"{sq['p99_ms']:.2f} ms ({sq['p50_ms']:.2f} ms) | <= 10 ms ({ok}) | - | - | "
            f"{raw['p99_ms']:.2f} ms ({raw['p50_ms']:.2f} ms) bare keyset SQL, no decoding | "
            f"{sq['p99_ms'] / raw['p99_ms']:.1f}x |"
        )
        out.append(
            f"| same page over HTTP, round trip p99 (p50), 1 connection | {h1['p99_us'] / 1000:.2f} ms "
            f"({h1['p50_us'] / 1000:.2f} ms) | - | {b1['p99_us'] / 1000:.2f} ms ({b1['p50_us'] / 1000:.2f} ms) | "
            f"{h1['p99_us'] / b1['p99_us']:.1f}x | - | - |"
        )
        h16, b16 = r["http_16conn"], r["bare_16conn"]
        out.append(
            f"| same page over HTTP, 16 connections | {h16['rate_per_s']:,.0f} pages/s, "
            f"p99 {h16['p99_us'] / 1000:.1f} ms"
            f" | - | {b16['rate_per_s']:,.0f} req/s | {pct(h16['rate_per_s'], b16['rate_per_s'])} | - | - |"
        )
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="short smoke run, 100k-event query store")
    parser.add_argument("--events-10m", action="store_true", help="query a store of 10 million events")
    parser.add_argument("--store-events", type=int, default=None, help="query store size (default 1,000,000)")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated subset of {','.join(SECTIONS)}")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the ingest runs (default 60)")
    parser.add_argument("--rate", type=float, default=2500.0, help="fixed rate of the latency run (default 2500)")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections, single-event ingest")
    parser.add_argument("--batch", type=int, default=1000, help="events per batch request (default 1000)")
    parser.add_argument("--batch-connections", type=int, default=8, help="wrk connections, batch ingest")
    parser.add_argument("--keep", action="store_true", help="keep bench/.cache/ingest (server log, data)")
    parser.add_argument(
        "--nice",
        type=int,
        default=0,
        help="run everything (servers, load, floors) at this niceness; negative (root only) on a shared machine",
    )
    args = parser.parse_args()
    sections = {s.strip() for s in args.only.split(",") if s.strip()}
    if unknown := sections - set(SECTIONS):
        parser.error(f"unknown section(s): {', '.join(sorted(unknown))}")
    if args.quick:
        args.seconds = min(args.seconds, 6.0)
    if args.store_events is None:
        args.store_events = 100_000 if args.quick else 10_000_000 if args.events_10m else 1_000_000
    if args.nice:
        os.nice(args.nice)
    if not wrk.available():
        sys.exit("wrk is not installed: apt-get install -y wrk")
    results: dict[str, Any] = {"machine": machine(), "args": vars(args)}
    log(json.dumps(results["machine"]))
    if sections & {"ingest", "latency", "batch"}:
        run_ingest(args, sections, results)
    if "query" in sections:
        run_query(args, results)
    md = table(results, args)
    log("\n" + md)
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (out / f"{stamp}.json").write_text(json.dumps(results, indent=2))
    (out / f"{stamp}.md").write_text(md + "\n")
    log(f"\nresults: {out / stamp}.json")


if __name__ == "__main__":
    main()
