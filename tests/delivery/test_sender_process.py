"""Pushes sent from the child process: same answers as the in-process sender, and a child that
dies or hangs never loses a push silently, nor outlives the server."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from fleetlog.delivery.sender_process import SenderProcess
from tests.delivery.receiver import Answer, Receiver, free_port


@pytest.fixture
async def sender() -> AsyncIterator[SenderProcess]:
    s = SenderProcess(timeout_seconds=2.0)
    yield s
    await s.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its parent) is gone for our purposes.
    status = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return status != "Z"


async def test_answers_are_those_of_the_receiver(sender: SenderProcess, receiver: Receiver) -> None:
    receiver.plan = [Answer(200), Answer(503, headers={"Retry-After": "7"}, body="busy, try later")]
    ok = await sender.post(receiver.url, b'{"n": 1}', {"Content-Type": "application/json", "X-Custom": "a"})
    busy = await sender.post(receiver.url, b'{"n": 2}', {"Content-Type": "application/json"})
    assert ok.delivered and ok.status == 200 and ok.latency > 0
    assert not busy.delivered
    assert (busy.status, busy.retry_after, busy.excerpt) == (503, "7", "busy, try later")
    assert busy.error.startswith("HTTP 503")
    got = receiver.received
    assert [r.body for r in got] == [b'{"n": 1}', b'{"n": 2}']
    assert got[0].headers["X-Custom"] == "a"
    assert sender.starts == 1  # one child for all pushes


async def test_refused_and_timed_out_pushes_are_failures(sender: SenderProcess, receiver: Receiver) -> None:
    refused = await sender.post(f"http://127.0.0.1:{free_port()}/hook", b"{}", {})
    assert refused.status == 0 and "cannot connect" in refused.error
    receiver.default = Answer(delay=5.0)
    slow = await sender.post(receiver.url, b"{}", {})
    assert slow.status == 0 and "timed out" in slow.error


async def test_many_pushes_in_flight_each_get_their_own_answer(sender: SenderProcess, receiver: Receiver) -> None:
    receiver.answer_with = lambda got: Answer(200 if int(got.body) % 2 == 0 else 500)
    attempts = await asyncio.gather(*(sender.post(receiver.url, str(i).encode(), {}) for i in range(200)))
    assert [a.status for a in attempts] == [200 if i % 2 == 0 else 500 for i in range(200)]


async def test_a_child_that_dies_fails_the_pushes_in_flight_and_is_replaced(
    sender: SenderProcess, receiver: Receiver
) -> None:
    assert (await sender.post(receiver.url, b"first", {})).delivered
    child = sender._child
    assert child is not None
    receiver.default = Answer(delay=1.5)
    in_flight = asyncio.ensure_future(sender.post(receiver.url, b"cut off", {}))
    for _ in range(500):  # until the receiver holds it (waiting on this loop: the push must go out)
        if len(receiver.received) == 2:
            break
        await asyncio.sleep(0.02)
    assert len(receiver.received) == 2
    os.kill(child.pid, signal.SIGKILL)
    lost = await in_flight
    assert lost.status == 0 and "exited" in lost.error  # the worker retries it: at-least-once
    receiver.default = Answer()
    again = await sender.post(receiver.url, b"again", {})
    assert again.delivered and sender.starts == 2


async def test_closing_stops_the_child(receiver: Receiver) -> None:
    sender = SenderProcess(timeout_seconds=2.0)
    assert (await sender.post(receiver.url, b"{}", {})).delivered
    assert sender._child is not None
    pid = sender._child.pid
    await sender.close()
    assert not _alive(pid)


PARENT = """
import asyncio, sys
from fleetlog.delivery.sender_process import SenderProcess
async def main():
    s = SenderProcess(2.0)
    attempt = await s.post(sys.argv[1], b"{}", {})
    print(attempt.status, s._child.pid, flush=True)
    await asyncio.sleep(3600)
asyncio.run(main())
"""


def test_the_child_does_not_outlive_a_killed_server(receiver: Receiver) -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT, receiver.url], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        status, pid = parent.stdout.readline().split()
        assert status == "200"
        child = int(pid)
        assert _alive(child)
        parent.kill()  # SIGKILL: no clean-up runs in the server
        parent.wait(10)
        deadline = time.monotonic() + 10
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not _alive(child)
    finally:
        parent.kill()
        parent.wait(10)
        if parent.stdout is not None:
            parent.stdout.close()
