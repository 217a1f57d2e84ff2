"""The first process of every job: it leads the job's process group and makes sure the group
never outlives the job or the worker.

    python -m backend.jobs.guard --parent PID --grace S -- COMMAND...

The worker starts the guard in a new session; the guard runs COMMAND (``accelerate launch ...``)
in that process group and exits with its exit code. On SIGTERM/SIGINT/SIGHUP (cancel, worker
shutdown, or the parent-death signal it asks the kernel for at start), or when its parent is no
longer PID (the worker died and the guard was re-parented), it sends SIGTERM to the whole group,
waits up to S seconds, then SIGKILLs what is left. When COMMAND exits on its own, stray
processes it left in the group are ended the same way. Standard library only, so it starts in
milliseconds.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
from types import FrameType

from backend.jobs.process import group_members, set_parent_death_signal, terminate_group

POLL_S = 0.2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="backend.jobs.guard")
    parser.add_argument("--parent", type=int, required=True)
    parser.add_argument("--grace", type=float, default=10.0)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given")
    stop: list[str] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.append(signal.Signals(signum).name)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    me, pgid = os.getpid(), os.getpgrp()
    # SIGTERM when the worker thread that started us ends; checked against the parent's pid
    # right after, which closes the window in which the worker died before the prctl
    set_parent_death_signal(signal.SIGTERM)
    if os.getppid() != args.parent:
        print(f"[guard] the worker (pid {args.parent}) is gone; not starting the job",
              flush=True)
        return 125
    child = subprocess.Popen(command)
    code: int | None = None
    while code is None and not stop and os.getppid() == args.parent:
        with contextlib.suppress(subprocess.TimeoutExpired):
            code = child.wait(timeout=POLL_S)
    if stop or os.getppid() != args.parent:
        reason = stop[0] if stop else "the worker died"
        print(f"[guard] stopping the job ({reason}): SIGTERM to process group {pgid}, "
              f"SIGKILL after {args.grace:g} s", flush=True)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # we signal our own group
        terminate_group(pgid, args.grace, exclude=me, reap=child.poll)
        child.wait()
        return 128 + signal.SIGTERM
    assert code is not None
    if group_members(pgid, exclude=me):
        print("[guard] the stage exited but left processes behind; ending them", flush=True)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        terminate_group(pgid, args.grace, exclude=me)
    return 128 - code if code < 0 else code


if __name__ == "__main__":
    sys.exit(main())
