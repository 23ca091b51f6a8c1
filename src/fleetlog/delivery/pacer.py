"""Ingest first: pushes share the process with the API and the store's threads, so they start
only as fast as both keep up.

Each sample measures two waits: how late a short timer fires (the event loop's lag: how long
ready work waits) and how long a call into a worker thread takes to come back (how long the
store's threads wait for the interpreter lock while the loop is busy pushing: a commit needs it
many times). While the longer of the two stays under the target, the allowed push rate grows;
when it goes over, the rate drops below what was just pushed. So a connector catching up a
large backlog uses the time the process has to spare, and acknowledgements are not held up.
Deliveries are durable and catch up later; acknowledgements are what clients wait for.
"""

from __future__ import annotations

import asyncio
import math

INTERVAL = 0.02  # seconds between lag samples
FLOOR = 100.0  # pushes/s never go below this, whatever the lag: delivery always progresses
GROWTH = 1.1  # per calm sample
BACKOFF = 0.7  # times the rate just achieved, per late sample


def _nothing() -> None:
    pass


class Pacer:
    def __init__(self, target_lag: float) -> None:
        self.target_lag = target_lag
        self.rate = math.inf  # pushes per second allowed; inf: no limit
        self.lag = 0.0  # the last sample, seconds
        self._next = 0.0  # when the next push may start (loop time)
        self._admitted = 0
        self._pushing = asyncio.Event()  # set by a push; the sampling sleeps while there are none
        self.slowdowns = 0  # late samples so far

    async def run(self) -> None:
        if self.target_lag <= 0:
            return  # pacing is off
        loop = asyncio.get_running_loop()
        while True:
            if self.rate == math.inf and not self._pushing.is_set():
                await self._pushing.wait()  # nothing to pace: no samples, no cost
            self._pushing.clear()
            started = loop.time()
            admitted = self._admitted
            await asyncio.sleep(INTERVAL)
            timer_lag = loop.time() - started - INTERVAL
            called = loop.time()
            await loop.run_in_executor(None, _nothing)
            thread_lag = loop.time() - called
            took = loop.time() - started
            self.lag = max(0.0, timer_lag, thread_lag)
            achieved = (self._admitted - admitted) / took
            if self.lag > self.target_lag:
                self.slowdowns += 1
                self.rate = max(FLOOR, achieved * BACKOFF)
            elif self.rate != math.inf:
                self.rate = self.rate * GROWTH + FLOOR
                if self.rate > 4 * achieved + 1000:
                    self.rate = math.inf  # far above demand: stop counting

    async def admit(self) -> None:
        """Wait for this push's turn (first come, first served)."""
        self._admitted += 1
        self._pushing.set()
        if self.rate == math.inf:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        slot = max(now, self._next)
        self._next = slot + 1 / self.rate
        if slot > now:
            await asyncio.sleep(slot - now)
