"""How many CPU threads torch uses (``CSTUDIO_TORCH_THREADS``).

torch's default (one thread per core) makes processes fight when the studio, a worker and a
training stage share a machine: under load, two threads made an evaluation 10–17× slower than
one. The studio (``cstudio serve``, ``cstudio eval run``), the worker and each stage process
set the count explicitly; the default (half the cores) leaves room for a running training job.
The worker hands its setting to the stage processes through the environment.
"""

from __future__ import annotations

import os

THREADS_ENV = "CSTUDIO_TORCH_THREADS"


def apply_torch_threads(threads: int) -> int:
    """Set torch's intra-op thread count (and OMP/MKL's, for libraries loaded later)."""
    threads = max(1, int(threads))
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    os.environ.setdefault("MKL_NUM_THREADS", str(threads))
    import torch

    torch.set_num_threads(threads)
    return threads


def threads_from_env(default: int | None = None) -> int | None:
    """The thread count a stage process was given (None when unset or unreadable)."""
    raw = os.environ.get(THREADS_ENV, "").strip()
    try:
        return max(1, int(raw)) if raw else default
    except ValueError:
        return default
