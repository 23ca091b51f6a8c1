"""Closed-loop HTTP load with `wrk` (C, one thread on its own core) and the Lua scripts in lua/."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

LUA = Path(__file__).resolve().parent / "lua"


def available() -> bool:
    return shutil.which("wrk") is not None


def run(
    url: str, script: str, *, seconds: float, connections: int, env: dict[str, str], threads: int = 1
) -> dict[str, Any]:
    """Run wrk against `url` with lua/<script>.lua; returns the script's summary plus rate_per_s.

    Latencies are those wrk measured (µs), from the moment it wrote each request.
    """
    import os

    argv = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA / f"{script}.lua"),
        url,
    ]
    proc = subprocess.run(
        argv, env={**os.environ, **env, "BENCH_LUA": str(LUA)}, capture_output=True, text=True, check=False
    )
    for line in proc.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            out: dict[str, Any] = json.loads(line[len("BENCH_JSON ") :])
            out["rate_per_s"] = out["requests"] / (out["duration_us"] / 1e6)
            out["errors"] = sum(
                out[k] for k in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts")
            )
            return out
    raise RuntimeError(f"wrk gave no summary (exit {proc.returncode}): {proc.stdout}\n{proc.stderr}")
