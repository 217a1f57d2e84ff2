"""Running a job's stage command on a Ray cluster (``CSTUDIO_JOB_BACKEND=ray``).

The worker still claims the job from the SQL queue, writes the launch configs and keeps the
heartbeat, metrics and result exactly as for a local job; only the stage command (the same
``accelerate launch … -m backend.training.entry --job-dir DIR``) is submitted through the Ray
Jobs API (``ray.job_submission.JobSubmissionClient``) instead of started as a local process
group. ``RaySubmission`` looks like the ``subprocess.Popen`` the worker supervises: ``poll()``
follows the Ray job's status and appends its new log output to the job's log.txt; ``stop()``
asks Ray to stop it (cancel, worker shutdown).

The job directory must be on storage the Ray nodes share with the worker (the same path),
and the nodes must have the studio installed at the same path (docs/scaling.md).
"""

from __future__ import annotations

import contextlib
import shlex
import time
from collections.abc import Mapping
from typing import IO, Any, Protocol

from backend.errors import StudioError

FINISHED = {"SUCCEEDED", "FAILED", "STOPPED"}
# Environment variables a Ray job gets from the worker (the rest of the worker's environment
# stays on the worker's host).
FORWARDED_PREFIXES = ("CSTUDIO_", "HF_", "TRANSFORMERS_", "PYTHON", "CUDA_VISIBLE_DEVICES",
                      "ACCELERATE_", "OMP_NUM_THREADS", "TOKENIZERS_")


class JobsClient(Protocol):
    """The part of ``ray.job_submission.JobSubmissionClient`` the worker uses."""

    def submit_job(self, **kwargs: Any) -> str: ...
    def get_job_status(self, job_id: str) -> Any: ...
    def get_job_logs(self, job_id: str) -> str: ...
    def get_job_info(self, job_id: str) -> Any: ...
    def stop_job(self, job_id: str) -> bool: ...


def make_client(address: str) -> JobsClient:
    if not address:
        raise StudioError("CSTUDIO_JOB_BACKEND=ray needs CSTUDIO_RAY_ADDRESS (the Ray "
                          "dashboard, e.g. http://ray-head:8265).")
    try:
        from ray.job_submission import JobSubmissionClient
    except ImportError as exc:
        raise StudioError("CSTUDIO_JOB_BACKEND=ray needs Ray: pip install "
                          "'constitution-studio[ray]' (or 'ray[default]').") from exc
    try:
        client: JobsClient = JobSubmissionClient(address)  # type: ignore[assignment]
    except Exception as exc:  # unreachable cluster, wrong address
        raise StudioError(f"cannot reach the Ray cluster at {address} ({exc}); start it "
                          "(`ray start --head`) or fix CSTUDIO_RAY_ADDRESS.") from exc
    return client


def forwarded_env(env: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k.startswith(FORWARDED_PREFIXES)}


class RaySubmission:
    """A submitted Ray job, supervised like a local process (``poll``, ``returncode``)."""

    pid = None  # no local process

    def __init__(self, client: JobsClient, submission_id: str, log: IO[bytes]) -> None:
        self.client = client
        self.submission_id = submission_id
        self._log = log
        self._written = 0
        self.returncode: int | None = None

    @classmethod
    def submit(cls, client: JobsClient, *, submission_id: str, argv: list[str],
               env: Mapping[str, str], num_gpus: int, log: IO[bytes]) -> RaySubmission:
        client.submit_job(entrypoint=shlex.join(argv), submission_id=submission_id,
                          runtime_env={"env_vars": forwarded_env(env)},
                          entrypoint_num_gpus=num_gpus or None, entrypoint_num_cpus=0,
                          metadata={"cstudio": "1"})
        return cls(client, submission_id, log)

    def status(self) -> str:
        status = self.client.get_job_status(self.submission_id)
        return str(getattr(status, "value", status))

    def follow_logs(self) -> None:
        """Append the Ray job's log output written since the last call to log.txt."""
        try:
            text = self.client.get_job_logs(self.submission_id)
        except Exception:  # the dashboard is busy: next poll
            return
        data = text.encode("utf-8", errors="replace")
        if len(data) > self._written:
            self._log.write(data[self._written:])
            self._log.flush()
            self._written = len(data)

    def poll(self) -> int | None:
        if self.returncode is not None:
            return self.returncode
        status = self.status()
        self.follow_logs()
        if status not in FINISHED:
            return None
        code = None
        with contextlib.suppress(Exception):  # an older Ray: judge by the status
            code = getattr(self.client.get_job_info(self.submission_id), "driver_exit_code",
                           None)
        if code is None:
            code = 0 if status == "SUCCEEDED" else 1
        self.follow_logs()
        self.returncode = int(code) if status != "STOPPED" else (int(code) or -15)
        return self.returncode

    def stop(self, timeout: float) -> None:
        """Ask Ray to stop the job (SIGTERM, then SIGKILL after Ray's own grace) and wait up
        to ``timeout`` seconds for it to finish."""
        with contextlib.suppress(Exception):  # already finished
            self.client.stop_job(self.submission_id)
        deadline = time.monotonic() + timeout
        while self.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
