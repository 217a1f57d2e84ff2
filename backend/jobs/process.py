"""Process groups on Linux: who is in one, and ending all of them.

A job's stage runs under a small guard process (``backend.jobs.guard``) that leads a new
session, so the guard, ``accelerate launch`` and every training process it starts share one
process group. Cancelling signals the group; the guard also ends the group when the worker that
started it dies (parent-death signal, and a poll of its parent as a fallback).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

PR_SET_PDEATHSIG = 1
JOB_DIR_ENV = "CSTUDIO_JOB_DIR"
JOB_ID_ENV = "CSTUDIO_JOB_ID"


def set_parent_death_signal(sig: int = signal.SIGTERM) -> None:
    """Ask the kernel to send ``sig`` to this process when the thread that forked it ends
    (Linux ``prctl``; a no-op elsewhere). The guard calls it first thing."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, ppid, pgrp) of a process from /proc, or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    fields = text[text.rfind(")") + 2:].split()
    return fields[0], int(fields[1]), int(fields[2])


def group_members(pgid: int, *, exclude: int | None = None) -> list[int]:
    """Live (non-zombie) processes whose process group is ``pgid``."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        if pid == exclude:
            continue
        st = _stat(pid)
        if st is not None and st[2] == pgid and st[0] not in ("Z", "X"):
            members.append(pid)
    return members


def process_env(pid: int) -> dict[str, str]:
    """The environment of a process of this user (empty when unreadable or gone)."""
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    env = {}
    for item in raw.split(b"\0"):
        key, sep, value = item.partition(b"=")
        if sep:
            env[key.decode(errors="replace")] = value.decode(errors="replace")
    return env


def group_belongs_to(pgid: int, job_dir: str) -> list[int]:
    """Members of ``pgid`` that were started for the job in ``job_dir`` (checked through
    their environment, so a recycled group id of an unrelated program is never touched)."""
    return [pid for pid in group_members(pgid) if process_env(pid).get(JOB_DIR_ENV) == job_dir]


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def terminate_group(pgid: int, grace: float, *, exclude: int | None = None,
                    reap: Callable[[], object] | None = None) -> bool:
    """SIGTERM the group, SIGKILL whatever is left after ``grace`` seconds; True when no
    member (other than ``exclude``) is left. ``reap`` is called while waiting so that our own
    exited children do not linger as zombies."""

    def empty() -> bool:
        if reap is not None:
            reap()
        return not group_members(pgid, exclude=exclude)

    if empty():
        return True
    _signal_group(pgid, signal.SIGTERM)
    if wait_until(empty, grace):
        return True
    for pid in group_members(pgid, exclude=exclude):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    return wait_until(empty, 10.0)
