"""Jobs whose worker died: their heartbeat stops, and after ``stale_after_s`` they are marked
``interrupted`` (resumable). If the dead worker's stage processes are still alive on this host
(they should not be: the guard ends them when the worker dies), they are ended first, so a resumed
attempt never shares the job directory with a survivor of the last one."""

from __future__ import annotations

import logging
import socket
from datetime import timedelta

from backend.jobs.process import group_belongs_to, terminate_group
from db import job_repo
from db.base_models import utcnow
from db.engine import Database
from db.job_models import Job

log = logging.getLogger(__name__)


def on_this_host(job: Job) -> bool:
    return job.worker.rsplit(":", 1)[0] == socket.gethostname()


def end_leftover_processes(job: Job, grace: float) -> bool:
    """End what is left of ``job``'s process group on this host; True if nothing is left."""
    if job.pgid is None or not on_this_host(job):
        return True
    if not group_belongs_to(job.pgid, job.artifact_dir):
        return True
    log.warning("job %s: ending the process group %s its dead worker left", job.id, job.pgid)
    return terminate_group(job.pgid, grace)


def reap_stale(db: Database, *, stale_after_s: float, grace: float) -> list[int]:
    """Mark running jobs with a heartbeat older than ``stale_after_s`` interrupted; their ids."""
    cutoff = utcnow() - timedelta(seconds=stale_after_s)
    with db.read() as s:
        stale = list(job_repo.stale_running(s, before=cutoff))
    reaped = []
    for job in stale:
        assert job.id is not None
        end_leftover_processes(job, grace)
        with db.write() as s:
            done = job_repo.mark_stale(
                s, job_id=job.id, before=cutoff, status="interrupted",
                error=f"The worker {job.worker} stopped sending heartbeats (none for "
                      f"{stale_after_s:g} s); resume the job to continue from its last "
                      "checkpoint.")
        if done:
            reaped.append(job.id)
    return reaped
