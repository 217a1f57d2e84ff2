"""settle_heap: start-up's live objects are frozen out of the collector's walks; garbage made
before the call is collected first, not frozen."""

from __future__ import annotations

import gc
import weakref

from backend.heap import THRESHOLDS, settle_heap


class _Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


def test_start_up_garbage_is_collected_and_live_objects_are_frozen() -> None:
    garbage, kept = _Node(), _Node()
    gone = weakref.ref(garbage)
    del garbage
    before = gc.get_threshold()
    try:
        frozen = settle_heap()
        assert gc.get_threshold() == THRESHOLDS
        assert gone() is None  # collected before the freeze, not kept forever
        # frozen objects that die later leave the count (another test's server thread freed
        # two between the calls once), so the count can only have dropped since
        assert 0 < gc.get_freeze_count() <= frozen
        assert frozen > 1000  # every object alive: the modules, not a handful
        assert not any(o is kept for o in gc.get_objects())  # out of the collector's lists
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
    assert any(o is kept for o in gc.get_objects())
