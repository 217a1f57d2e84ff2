"""How many requests a client keeps in flight: adapted to what the server sustains (AIMD).

A server that answers one request at a time (llama.cpp's) queues the rest; with 64 in flight
they wait in its queue until they time out, are resent, and the originals keep running. The
limit therefore starts small, grows by one per answer while it is below a threshold (slow
start) and by ``1/limit`` above it, and halves when a request times out, is refused for load
(429/503), took more than half the timeout, or queued in the server: it took over four times
the quickest answer seen for requests of its kind and over two seconds more (a server that
batches continuously answers a full batch at nearly the speed of one; one that answers one at
a time makes every extra request wait a whole answer). ``ceiling`` is the configured maximum
(``CSTUDIO_ENGINE_MAX_IN_FLIGHT``).
"""

from __future__ import annotations

import asyncio
from enum import Enum


class Outcome(Enum):
    OK = "ok"
    SLOW = "slow"  # answered, but after more than half the timeout
    OVERLOADED = "overloaded"  # timed out, 429 or 503
    FAILED = "failed"  # other failures say nothing about load


class AdaptiveLimit:
    def __init__(self, ceiling: int, *, start: int = 4, adaptive: bool = True) -> None:
        if ceiling < 1:
            raise ValueError("ceiling must be at least 1")
        self.ceiling = ceiling
        self.adaptive = adaptive
        self.limit = float(min(start, ceiling) if adaptive else ceiling)
        self.threshold = float(ceiling)
        self.active = 0
        self.peak = 0  # the most requests ever in flight at once
        self.epoch = 0  # bumped on each decrease: one decrease per window of requests
        self._waiters: list[asyncio.Future[None]] = []
        self._quickest: dict[object, float] = {}

    def classify(self, kind: object, latency_s: float, timeout_s: float) -> Outcome:
        """OK or SLOW for an answered request of ``kind`` (e.g. path and max_tokens)."""
        quickest = min(self._quickest.get(kind, latency_s), latency_s)
        self._quickest[kind] = quickest
        if latency_s > timeout_s / 2 or (latency_s > 4 * quickest
                                        and latency_s - quickest > 2.0):
            return Outcome.SLOW
        return Outcome.OK

    def cap(self, ceiling: int) -> None:
        """Lower the ceiling to what the server says it runs at once."""
        self.ceiling = max(1, min(self.ceiling, ceiling))
        self.limit = min(self.limit, float(self.ceiling))
        self.threshold = min(self.threshold, float(self.ceiling))

    @property
    def current(self) -> int:
        return max(1, int(self.limit))

    async def acquire(self) -> int:
        """Wait for a slot; returns the epoch to hand back to ``release``."""
        while self.active >= self.current:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
        self.active += 1
        self.peak = max(self.peak, self.active)
        return self.epoch

    def release(self, outcome: Outcome, epoch: int) -> None:
        """Give the slot back (synchronous: safe in ``finally`` while being cancelled)."""
        self.active -= 1
        self.observe(outcome, epoch)
        free = self.current - self.active
        for waiter in list(self._waiters):
            if free <= 0:
                break
            if not waiter.done():
                waiter.set_result(None)
                free -= 1

    def observe(self, outcome: Outcome, epoch: int) -> None:
        """Requests sent before the last decrease do not decrease the limit again."""
        if not self.adaptive:
            return
        if outcome is Outcome.OK:
            step = 1.0 if self.limit < self.threshold else 1.0 / self.limit
            self.limit = min(float(self.ceiling), self.limit + step)
        elif outcome in (Outcome.SLOW, Outcome.OVERLOADED) and epoch == self.epoch:
            self.threshold = max(1.0, self.limit / 2)
            self.limit = self.threshold
            self.epoch += 1
