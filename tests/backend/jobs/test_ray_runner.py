"""Jobs on Ray (CSTUDIO_JOB_BACKEND=ray): the worker claims the job from the same SQL queue and
submits the same stage command through the Ray Jobs API, follows its log and status, stores
its metrics and result, and cancels it through the API.

The unit tests use a fake Jobs client; the slow tests start a single-node Ray on this machine
(``ray start --head`` in its own process group, ended by that group's id afterwards)."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backend.errors import StudioError
from backend.jobs.ray_runner import RaySubmission, forwarded_env, make_client
from backend.jobs.worker import Worker
from backend.services.jobs import JobService
from backend.settings import Settings
from db.engine import Database
from tests.backend.jobs.conftest import ADMIN


class FakeClient:
    def __init__(self, statuses: list[str], logs: list[str], exit_code: int | None = 0
                 ) -> None:
        self.statuses, self.logs, self.exit_code = statuses, logs, exit_code
        self.submitted: dict[str, Any] = {}
        self.stopped: list[str] = []

    def submit_job(self, **kwargs: Any) -> str:
        self.submitted = kwargs
        return str(kwargs["submission_id"])

    def get_job_status(self, job_id: str) -> str:
        return self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]

    def get_job_logs(self, job_id: str) -> str:
        return self.logs.pop(0) if len(self.logs) > 1 else self.logs[0]

    def get_job_info(self, job_id: str) -> Any:
        return type("Info", (), {"driver_exit_code": self.exit_code})()

    def stop_job(self, job_id: str) -> bool:
        self.stopped.append(job_id)
        self.statuses = ["STOPPED"]
        return True


def test_submission_carries_the_command_and_the_job_environment_only():
    client, log = FakeClient(["RUNNING"], [""]), io.BytesIO()
    RaySubmission.submit(client, submission_id="cstudio-job-1-1-x",
                         argv=["/venv/bin/python", "-m", "backend.training.entry", "--job-dir",
                               "/data/jobs/1 x"],
                         env={"CSTUDIO_JOB_DIR": "/data/jobs/1", "HF_HUB_OFFLINE": "1",
                              "PYTHONPATH": "/app", "SECRET_TOKEN": "no", "HOME": "/root"},
                         num_gpus=2, log=log)
    sent = client.submitted
    assert sent["entrypoint"] == ("/venv/bin/python -m backend.training.entry --job-dir "
                                  "'/data/jobs/1 x'")
    assert sent["runtime_env"]["env_vars"] == {"CSTUDIO_JOB_DIR": "/data/jobs/1",
                                               "HF_HUB_OFFLINE": "1", "PYTHONPATH": "/app"}
    assert sent["entrypoint_num_gpus"] == 2 and sent["submission_id"] == "cstudio-job-1-1-x"
    assert "SECRET_TOKEN" not in forwarded_env({"SECRET_TOKEN": "x"})


def test_poll_follows_logs_and_reports_the_exit_code():
    client = FakeClient(["PENDING", "RUNNING", "FAILED"], ["", "step 1\n", "step 1\nboom\n"],
                        exit_code=3)
    log = io.BytesIO()
    sub = RaySubmission(client, "s", log)
    assert sub.poll() is None and sub.poll() is None
    assert log.getvalue() == b"step 1\n"
    assert sub.poll() == 3 and sub.returncode == 3
    assert log.getvalue() == b"step 1\nboom\n"  # each line once


def test_stop_asks_ray_and_ends_as_stopped():
    client = FakeClient(["RUNNING"], ["x\n"], exit_code=None)
    sub = RaySubmission(client, "s", io.BytesIO())
    sub.stop(timeout=5)
    assert client.stopped == ["s"] and sub.returncode not in (None, 0)


def test_ray_backend_without_an_address_is_refused():
    with pytest.raises(StudioError, match="CSTUDIO_RAY_ADDRESS"):
        make_client("")


# --- against a real single-node Ray ----------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def ray_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    pytest.importorskip("ray.job_submission", reason="Ray is not installed "
                        "(pip install 'constitution-studio[ray]')")
    from ray.job_submission import JobSubmissionClient

    temp = Path("/tmp") / f"cstudio-ray-{os.getpid()}"  # Ray's socket paths must stay short
    gcs, dash = _free_port(), _free_port()
    base = 20000 + (os.getpid() % 2000) * 20
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("ray")), "start", "--head", "--block",
         f"--port={gcs}", f"--dashboard-port={dash}", "--dashboard-host=127.0.0.1",
         f"--ray-client-server-port={base}", f"--dashboard-agent-listen-port={base + 1}",
         f"--min-worker-port={base + 2}", f"--max-worker-port={base + 19}",
         "--num-cpus=2", "--include-dashboard=true", f"--temp-dir={temp}",
         "--disable-usage-stats"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    address = f"http://127.0.0.1:{dash}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                JobSubmissionClient(address)
                break
            except Exception:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("the local Ray head did not start within 180 s")
                time.sleep(2)
        yield address
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the group this fixture started
        try:
            proc.wait(timeout=60)
        finally:
            time.sleep(2)  # then whatever of Ray's processes in that group is left
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _ray_worker(settings: Settings, db: Database, address: str) -> Worker:
    return Worker(settings.model_copy(update={"job_backend": "ray", "ray_address": address,
                                              "job_launcher": "python"}), db,
                  gpu_count=lambda: 0)


@pytest.mark.slow
def test_a_job_runs_on_ray_from_the_sql_queue(
        ray_address: str, job_env: tuple[Settings, Database, JobService]) -> None:
    settings, db, svc = job_env
    info = svc.create("fake", {"max_steps": 3}, actor=ADMIN, name="on ray")
    assert _ray_worker(settings, db, ray_address).run_one() == info.id
    done = svc.get(info.id)
    assert (done.status, done.exit_code) == ("succeeded", 0), svc.log_tail(info.id)
    assert done.result == {"outputs": {"model_dir": str(Path(done.artifact_dir) / "output")},
                           "summary": {"steps": 3}}
    assert svc.metrics(info.id).series["loss"].steps == [1, 2, 3]
    log = svc.log_tail(info.id)
    assert "submitted to the Ray cluster" in log and "fake stage: done" in log


@pytest.mark.slow
def test_a_failing_and_a_cancelled_job_on_ray(
        ray_address: str, job_env: tuple[Settings, Database, JobService]) -> None:
    import threading

    settings, db, svc = job_env
    failing = svc.create("fake", {"max_steps": 3, "fail_at": 2}, actor=ADMIN)
    worker = _ray_worker(settings, db, ray_address)
    worker.run_one()
    assert svc.get(failing.id).status == "failed"
    assert svc.get(failing.id).exit_code == 3
    slow = svc.create("fake", {"max_steps": 400, "step_seconds": 0.1}, actor=ADMIN)
    thread = threading.Thread(target=worker.run_one)
    thread.start()
    deadline = time.monotonic() + 120
    while (svc.last_step(slow.id) or 0) < 2:
        assert time.monotonic() < deadline, svc.log_tail(slow.id)
        time.sleep(0.5)
    svc.cancel(slow.id, actor=ADMIN)
    thread.join(timeout=120)
    assert svc.get(slow.id).status == "cancelled"
    assert (svc.last_step(slow.id) or 0) < 400
