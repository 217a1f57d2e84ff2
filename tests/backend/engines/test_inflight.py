"""The adaptive in-flight limit (AIMD)."""

from __future__ import annotations

import asyncio

from backend.engines.inflight import AdaptiveLimit, Outcome
from tests.asyncio_helpers import run_coroutine


def test_slow_start_then_halving_once_per_window() -> None:
    limit = AdaptiveLimit(64, start=4)
    for _ in range(10):
        limit.observe(Outcome.OK, limit.epoch)
    assert limit.current == 14
    epoch = limit.epoch
    limit.observe(Outcome.OVERLOADED, epoch)
    limit.observe(Outcome.OVERLOADED, epoch)  # sent in the same window: no second halving
    assert limit.current == 7
    for _ in range(7):
        limit.observe(Outcome.OK, limit.epoch)  # above the threshold: +1/limit each
    assert limit.current == 7  # 7 + about 7 × 1/7.5


def test_never_above_the_ceiling_nor_below_one() -> None:
    limit = AdaptiveLimit(3, start=4)
    for _ in range(20):
        limit.observe(Outcome.OK, limit.epoch)
    assert limit.current == 3
    for _ in range(10):
        limit.observe(Outcome.SLOW, limit.epoch)
    assert limit.current == 1


def test_fixed_limit_when_not_adaptive() -> None:
    limit = AdaptiveLimit(16, adaptive=False)
    limit.observe(Outcome.OVERLOADED, 0)
    assert limit.current == 16


def test_waiters_get_slots_as_they_free() -> None:
    async def scenario() -> list[int]:
        limit = AdaptiveLimit(2, start=2)
        order: list[int] = []

        async def worker(i: int) -> None:
            epoch = await limit.acquire()
            assert limit.active <= limit.current
            order.append(i)
            await asyncio.sleep(0.001)
            limit.release(Outcome.FAILED, epoch)

        await asyncio.gather(*(worker(i) for i in range(6)))
        assert limit.peak == 2 and limit.active == 0
        return order

    assert sorted(run_coroutine(scenario())) == list(range(6))


def test_queueing_in_the_server_counts_as_slow() -> None:
    limit = AdaptiveLimit(64)
    assert limit.classify("score", 0.8, 60) is Outcome.OK
    assert limit.classify("score", 2.0, 60) is Outcome.OK  # slower, but not queueing
    assert limit.classify("score", 3.5, 60) is Outcome.SLOW  # > 4× quickest and > 2 s more
    assert limit.classify("generate", 3.5, 60) is Outcome.OK  # its own quickest
    assert limit.classify("generate", 31.0, 60) is Outcome.SLOW  # over half the timeout
    fast = AdaptiveLimit(64)  # a batching server: 20 ms alone, 300 ms in a full batch
    assert fast.classify("score", 0.02, 60) is Outcome.OK
    assert fast.classify("score", 0.3, 60) is Outcome.OK
