"""The garbage collector after start-up: what is alive once a process has started (modules,
the database metadata, the Gradio app, a loaded model's Python objects) stays alive, so it is
frozen out of the collector's sight (``gc.freeze``).

CPython's cyclic collector otherwise walks those objects again at every older-generation
collection, and an agreement run allocates fast (a few dicts per verdict): 13 % of a
20,000-pair run's wall time went to collections before this (bench_eval_throughput: 3,571 vs
4,070 verdicts/s without and with the freeze, docs/benchmarks.md). Called by the long-running
entry points (``cstudio serve``, ``cstudio eval run``) once they have started, never by a
library function or a test: objects frozen are never collected, so freezing again and again
(a test suite starting many studios) would keep each one's garbage.
"""

from __future__ import annotations

import gc

# Young collections every 10,000 net allocations instead of 700: a run's chunks (thousands of
# small dicts that live until their commit) no longer trigger a collection every few verdicts
# (+2-3 % verdicts/s on top of the freeze); older generations at twice CPython's ratio.
THRESHOLDS = (10_000, 20, 20)


def settle_heap() -> int:
    """Collect what start-up left as garbage, freeze every object still alive and space the
    collections out (``THRESHOLDS``); returns how many objects are frozen."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
    return gc.get_freeze_count()
