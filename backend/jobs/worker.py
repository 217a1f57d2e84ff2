"""The worker: claims queued jobs one at a time and runs each to its end.

For each job it writes the launch configs from the job's device fields, starts
``python -m backend.jobs.guard -- <the accelerate launch of -m <entry> --job-dir DIR>`` (see
backend.jobs.launch) in a new session (one process group for the whole job) with stdout and stderr
appended to log.txt, and then, until the process exits: stores new metrics.jsonl lines as
``job_metric`` rows, refreshes the heartbeat, and watches for a cancel request or its own
shutdown. ``cstudio worker`` runs one in the foreground; ``cstudio serve`` runs one in a thread.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from sqlalchemy.exc import IntegrityError

from backend.common.job_files import JobDir
from backend.errors import FileVersionError, StudioError
from backend.jobs import metrics as metrics_file
from backend.jobs.accelerate_config import write_launch_configs
from backend.jobs.dependencies import fill_dataset_refs
from backend.jobs.devices import DevicePlan, plan_devices, visible_gpus
from backend.jobs.launch import LaunchCommand, launch_command
from backend.jobs.process import JOB_DIR_ENV, JOB_ID_ENV, terminate_group
from backend.jobs.ray_runner import RaySubmission, make_client
from backend.jobs.reaper import reap_stale
from backend.settings import Settings
from backend.threads import THREADS_ENV
from db import job_repo, pipeline_repo
from db.base_models import utcnow
from db.engine import Database
from db.job_models import Job

log = logging.getLogger(__name__)
PROJECT_ROOT = Path(__file__).resolve().parents[2]
LOG_TAIL_LINES = 15


class Worker:
    def __init__(self, settings: Settings, db: Database, *, name: str | None = None,
                 gpu_count: Callable[[], int] = visible_gpus) -> None:
        self.settings = settings
        self.db = db
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self._gpu_count = gpu_count
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._offset = 0  # of the running job's metrics.jsonl

    # --- loop --------------------------------------------------------------------------------

    def run_forever(self) -> None:
        """Claim and run jobs until ``stop()``; marks dead workers' jobs interrupted."""
        log.info("worker %s started", self.name)
        while not self._stop.is_set():
            ran = None
            try:
                self.reap()
                ran = self.run_one()
            except Exception:  # keep serving the queue; the job row says what failed
                log.exception("worker %s: unexpected error", self.name)
            if ran is None:
                self._stop.wait(self.settings.job_poll_s)
        log.info("worker %s stopped", self.name)

    def reap(self) -> list[int]:
        return reap_stale(self.db, stale_after_s=self.settings.job_stale_after_s,
                          grace=self.settings.job_cancel_grace_s)

    def run_one(self) -> int | None:
        """Claim the oldest queued job and run it to its end; its id, or None if none."""
        with self.db.write() as s:
            pipeline_repo.stop_blocked(s)  # jobs whose upstream stage failed never start
            job = job_repo.claim_next(s, worker=self.name)
        if job is None:
            return None
        assert job.id is not None
        try:
            self._run(job)
        except Exception as exc:
            log.exception("job %s failed in the worker", job.id)
            self._finish(job, "failed", error=f"The worker failed to run the job: {exc}")
        return job.id

    def start_thread(self) -> threading.Thread:
        """Run the loop in a daemon thread (the worker embedded in ``cstudio serve``)."""
        self._thread = threading.Thread(target=self.run_forever, name="job-worker", daemon=True)
        self._thread.start()
        return self._thread

    def stop(self, timeout: float | None = None) -> None:
        """Stop claiming; a running job is ended and marked ``interrupted`` (resumable)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    # --- one job -----------------------------------------------------------------------------

    def command(self, job_dir: JobDir, plan: DevicePlan) -> LaunchCommand:
        if self.settings.job_launcher == "python" and (
                plan.num_processes * plan.num_nodes > 1 or plan.deepspeed_stage is not None):
            raise StudioError("job_launcher=python runs a single process; set "
                              "CSTUDIO_JOB_LAUNCHER=accelerate for several processes or "
                              "DeepSpeed.")
        return launch_command(self.settings.job_launcher, plan, self.settings.job_entry_module,
                              job_dir.root, job_dir.accelerate_yaml)

    def _env(self, job: Job, job_dir: JobDir, plan: DevicePlan, extra: dict[str, str]
             ) -> dict[str, str]:
        env = dict(os.environ)
        env.update(extra)
        path = env.get("PYTHONPATH")
        env.update({
            "PYTHONUNBUFFERED": "1",
            JOB_DIR_ENV: str(job_dir.root),
            JOB_ID_ENV: str(job.id),
            "PYTHONPATH": str(PROJECT_ROOT) + (os.pathsep + path if path else ""),
        })
        if plan.use_cpu:
            env["CUDA_VISIBLE_DEVICES"] = ""
        threads = str(self.settings.torch_threads)
        env.update({THREADS_ENV: threads, "OMP_NUM_THREADS": threads,
                    "MKL_NUM_THREADS": threads})
        return env

    def _run(self, job: Job) -> None:
        assert job.id is not None
        job_dir = JobDir(Path(job.artifact_dir))
        job_dir.root.mkdir(parents=True, exist_ok=True)
        with job_dir.log.open("ab") as log_fh:
            def note(text: str) -> None:
                log_fh.write(f"[worker {time.strftime('%Y-%m-%d %H:%M:%S')}] {text}\n"
                             .encode())
                log_fh.flush()

            note(f"attempt {job.attempt} of job {job.id} ({job.kind}) claimed by {self.name}")
            try:
                fill_dataset_refs(self.db, job)  # a pipeline's upstream datasets
                plan = plan_devices(job.config, self._gpu_count)
                write_launch_configs(plan, job_dir.accelerate_yaml, job_dir.deepspeed_json)
                command = self.command(job_dir, plan)
            except StudioError as exc:
                note(f"not started: {exc.message}")
                self._finish(job, "failed", error=exc.message)
                return
            grace = self.settings.job_cancel_grace_s
            self._offset = job.metrics_offset
            if job.attempt > 1:  # lines an attempt killed with its worker wrote after the last read
                self._tail_metrics(job, job_dir, attempt=job.attempt - 1)
            note(f"run via {command.how}: " + " ".join(command.argv))
            if command.env:
                note("with " + " ".join(f"{k}={v}" for k, v in sorted(command.env.items())))
            proc: subprocess.Popen[bytes] | RaySubmission
            if self.settings.job_backend == "ray":
                try:
                    proc = self._submit_to_ray(job, job_dir, plan, command, log_fh)
                except StudioError as exc:
                    note(f"not started: {exc.message}")
                    self._finish(job, "failed", error=exc.message)
                    return
                note(f"submitted to the Ray cluster at {self.settings.ray_address} as "
                     f"{proc.submission_id}")
            else:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "backend.jobs.guard", "--parent", str(os.getpid()),
                     "--grace", f"{grace:g}", "--", *command.argv],
                    stdin=subprocess.DEVNULL, stdout=log_fh, stderr=subprocess.STDOUT,
                    cwd=job_dir.root, env=self._env(job, job_dir, plan, command.env),
                    start_new_session=True)
            try:
                with self.db.write() as s:
                    job_repo.update_job(s, job_id=job.id, expect_status=("running",),
                                        expect_worker=self.name, pid=proc.pid, pgid=proc.pid)
                outcome = self._supervise(job, job_dir, proc)
            except BaseException:  # never leave the group running when the worker gives up
                self._end(proc)
                raise
            code = proc.returncode
            note(f"attempt {job.attempt} ended: {outcome or 'exited'} (exit code {code})")
        self._tail_metrics(job, job_dir)
        if outcome == "lost":
            return
        if outcome == "cancelled":
            self._finish(job, "cancelled", exit_code=code, error="Cancelled on request.")
        elif outcome == "interrupted":
            self._finish(job, "interrupted", exit_code=code,
                         error="The worker was stopped while the job ran; resume the job to "
                               "continue from its last checkpoint.")
        elif code == 0:
            try:
                result = job_dir.read_result()
            except FileVersionError as exc:
                self._finish(job, "failed", exit_code=0, error=exc.message)
            else:
                self._finish(job, "succeeded", exit_code=0, result=result)
        else:
            self._finish(job, "failed", exit_code=code,
                         error=f"The stage exited with code {code}. Last lines of log.txt:\n"
                               + log_tail(job_dir.log, LOG_TAIL_LINES))

    def _submit_to_ray(self, job: Job, job_dir: JobDir, plan: DevicePlan,
                       command: LaunchCommand, log_fh: Any) -> RaySubmission:
        """The same stage command, submitted through the Ray Jobs API (backend.jobs.ray_runner);
        the job directory is on storage the Ray nodes share."""
        client = make_client(self.settings.ray_address)
        gpus = 0 if plan.use_cpu else plan.num_processes
        try:
            return RaySubmission.submit(
                client, submission_id=f"cstudio-job-{job.id}-{job.attempt}-"
                                      f"{uuid.uuid4().hex[:8]}",
                argv=command.argv, env=self._env(job, job_dir, plan, command.env),
                num_gpus=gpus, log=log_fh)
        except Exception as exc:
            raise StudioError(f"the Ray cluster at {self.settings.ray_address} refused the "
                              f"job ({exc}).") from exc

    def _supervise(self, job: Job, job_dir: JobDir,
                   proc: subprocess.Popen[bytes] | RaySubmission) -> str:
        """Wait for the job's process; '' when it exited by itself, else why it was ended."""
        assert job.id is not None
        beat = self.settings.job_heartbeat_s
        last_beat = time.monotonic()
        while proc.poll() is None:
            self._tail_metrics(job, job_dir)
            if time.monotonic() - last_beat >= beat:
                last_beat = time.monotonic()
                row = self._heartbeat(job.id)
                if row == "lost":
                    log.warning("job %s is no longer this worker's; ending it", job.id)
                    self._end(proc)
                    return "lost"
                if isinstance(row, Job) and row.cancel_requested:
                    self._end(proc)
                    return "cancelled"
            if self._stop.is_set():
                self._end(proc)
                return "interrupted"
            self._stop.wait(min(0.25, beat / 2))
        return ""

    def _heartbeat(self, job_id: int) -> Job | Literal["lost", "error"]:
        """The refreshed row; "lost" when the job is no longer ours; "error" when the database
        could not be reached (tried again at the next beat)."""
        try:
            with self.db.write() as s:
                row = job_repo.heartbeat(s, job_id=job_id, worker=self.name)
        except Exception:
            log.warning("job %s: heartbeat failed", job_id, exc_info=True)
            return "error"
        return "lost" if row is None else row

    def _end(self, proc: subprocess.Popen[bytes] | RaySubmission) -> None:
        """End the job's whole process group: SIGTERM (the guard passes it on and SIGKILLs
        after the grace period), then SIGKILL ourselves if the guard does not finish. A Ray
        job is stopped through the Jobs API."""
        grace = self.settings.job_cancel_grace_s
        if isinstance(proc, RaySubmission):
            proc.stop(grace + 15)
            return
        pgid = proc.pid
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGTERM)
        try:
            proc.wait(timeout=grace + 15)
        except subprocess.TimeoutExpired:
            log.warning("the guard of process group %s did not finish; SIGKILL", pgid)
        terminate_group(pgid, 0.0 if proc.poll() is None else grace, reap=proc.poll)
        proc.wait()

    def _tail_metrics(self, job: Job, job_dir: JobDir, *, attempt: int | None = None) -> None:
        """Store the metrics lines written since the last read, under ``attempt`` (default:
        the job's current attempt)."""
        assert job.id is not None
        attempt = job.attempt if attempt is None else attempt
        offset = self._offset
        try:
            points, new_offset = metrics_file.read_new(job_dir.metrics, offset)
        except FileVersionError as exc:
            log.warning("job %s: %s", job.id, exc.message)
            return
        if new_offset == offset:
            return
        rows = [(p.line_offset, p.step, p.wall_time, p.metrics) for p in points]
        try:
            with self.db.write() as s:
                job_repo.add_metrics(s, job_id=job.id, attempt=attempt, points=rows,
                                     new_offset=new_offset)
        except IntegrityError:  # the file was rewritten under the same attempt: skip ahead
            with self.db.write() as s:
                job_repo.add_metrics(s, job_id=job.id, attempt=attempt, points=[],
                                     new_offset=new_offset)
        except Exception:
            log.warning("job %s: storing metrics failed", job.id, exc_info=True)
            return
        self._offset = new_offset

    def _finish(self, job: Job, status: str, *, error: str = "", exit_code: int | None = None,
                result: dict[str, object] | None = None) -> None:
        assert job.id is not None
        with self.db.write() as s:
            job_repo.update_job(s, job_id=job.id, expect_status=("running",),
                                expect_worker=self.name, status=status, error=error[:20_000],
                                exit_code=exit_code, result=result, finished_at=utcnow())


def log_tail(path: Path, lines: int) -> str:
    """The last ``lines`` lines of a log file (read from its end)."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            data = fh.read()
    except OSError:
        return ""
    return "\n".join(data.decode("utf-8", errors="replace").splitlines()[-lines:])
