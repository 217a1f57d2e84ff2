"""Running a coroutine from a test, whatever else the test process is running.

A Playwright (sync API) test earlier in the same xdist worker can leave an event loop marked
as running in the main thread, and ``asyncio.run`` then refuses to start; a fresh thread has
no running loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


def run_coroutine(coro: Coroutine[Any, Any, T]) -> T:
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()
