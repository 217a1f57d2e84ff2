"""The worker runs jobs as process groups through ``accelerate launch``; the bars of issue 5:
killing the worker leaves the job ``interrupted`` and no process behind, and resuming continues
from the last checkpoint; cancelling leaves no child process behind; a device that does not
exist is refused before anything starts.

The stage is the stand-in ``fake_stage`` (same job-directory contract, no torch)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from backend.errors import PermissionDeniedError, ValidationError
from backend.jobs.process import JOB_DIR_ENV, group_members
from backend.jobs.worker import Worker
from backend.services.jobs import JobInfo, JobService
from backend.settings import Settings
from db import job_repo
from db.engine import Database
from tests.backend.jobs.conftest import ADMIN, FAKE_STAGE, job_settings

ROOT = Path(__file__).resolve().parents[3]


def job_processes(job_dir: str) -> list[psutil.Process]:
    """Every live process started for ``job_dir`` (found through its environment)."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                continue
            if proc.environ().get(JOB_DIR_ENV) == job_dir:
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def thread_worker(job_env: tuple[Settings, Database, JobService]) -> Iterator[Worker]:
    settings, db, _ = job_env
    worker = Worker(settings.model_copy(update={"job_launcher": "accelerate-subprocess"}), db,
                    gpu_count=lambda: 0)
    worker.start_thread()
    yield worker
    worker.stop(timeout=30)


def test_a_job_runs_through_accelerate_and_its_metrics_are_stored(
        job_env: tuple[Settings, Database, JobService]) -> None:
    settings, db, svc = job_env
    info = svc.create("fake", {"max_steps": 4}, actor=ADMIN, name="smoke")
    worker = Worker(settings.model_copy(update={"job_launcher": "accelerate"}), db,
                    gpu_count=lambda: 0)
    assert worker.run_one() == info.id
    done = svc.get(info.id)
    assert (done.status, done.exit_code, done.attempt) == ("succeeded", 0, 1)
    assert done.result == {"outputs": {"model_dir": str(Path(done.artifact_dir) / "output")},
                           "summary": {"steps": 4}}
    loss = svc.metrics(info.id).series["loss"]
    assert loss.steps == [1, 2, 3, 4] and loss.values == [1.0, 0.5, 1 / 3, 0.25]
    log = svc.log_tail(info.id)
    assert "prepared by accelerate's launcher in the worker" in log
    assert "ACCELERATE_USE_CPU=True" in log
    assert "accelerate=True" in log  # the stage ran with accelerate's launch environment
    assert "fake stage: done" in log and "exit code 0" in log
    assert not job_processes(done.artifact_dir)
    assert worker.run_one() is None  # the queue is empty

    # the same job through the `accelerate launch` program
    again = svc.create("fake", {"max_steps": 2}, actor=ADMIN)
    Worker(settings.model_copy(update={"job_launcher": "accelerate-subprocess"}), db,
           gpu_count=lambda: 0).run_one()
    assert svc.get(again.id).status == "succeeded"
    log = svc.log_tail(again.id)
    assert "accelerate.commands.launch --config_file" in log and "accelerate=True" in log


def test_a_result_of_a_newer_format_fails_the_job_with_what_to_do(
        job_env: tuple[Settings, Database, JobService]) -> None:
    """Issue 18 point 4: result.json is checked on read; one this worker cannot read fails the
    job with a message instead of storing what it does not understand."""
    settings, db, svc = job_env
    info = svc.create("fake", {"max_steps": 1, "result_version": 2}, actor=ADMIN)
    Worker(settings, db, gpu_count=lambda: 0).run_one()
    done = svc.get(info.id)
    assert (done.status, done.exit_code, done.result) == ("failed", 0, None)
    assert "format_version 2, newer than the 1 this studio reads; upgrade" in done.error


def test_claims_are_atomic_across_workers(job_env: tuple[Settings, Database, JobService]
                                          ) -> None:
    _, db, svc = job_env
    ids = {svc.create("fake", {}, actor=ADMIN).id for _ in range(12)}
    claimed: list[int] = []
    lock = threading.Lock()

    def claim(name: str) -> None:
        while True:
            with db.write() as s:
                job = job_repo.claim_next(s, worker=name)
            if job is None:
                return
            with lock:
                assert job.id is not None
                claimed.append(job.id)

    threads = [threading.Thread(target=claim, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == sorted(ids)  # each job exactly once


def test_cancel_ends_the_whole_process_group(
        job_env: tuple[Settings, Database, JobService], thread_worker: Worker) -> None:
    _, _, svc = job_env
    info = svc.create("fake", {"max_steps": 500, "step_seconds": 0.1, "spawn_child": True,
                               "ignore_sigterm": True}, actor=ADMIN)
    wait_for(lambda: (svc.last_step(info.id) or 0) >= 2, 60, "the job to log steps")
    procs = job_processes(info.artifact_dir)
    # guard, accelerate launch, the stage and the stage's own child
    assert len(procs) >= 4, [p.cmdline() for p in procs]
    with pytest.raises(PermissionDeniedError):
        from backend.access import Principal, Role

        svc.cancel(info.id, actor=Principal("v", Role.VIEWER))
    svc.cancel(info.id, actor=ADMIN)
    done = svc.wait(info.id, timeout=30)
    assert done.status == "cancelled", done
    # the stage ignored SIGTERM: it was SIGKILLed after the grace period; nothing survives
    assert not job_processes(info.artifact_dir)
    for proc in procs:
        assert not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
    pgid = pgid_of(job_env[1], info.id)
    assert pgid is not None and not group_members(pgid)
    assert "[guard] stopping the job (SIGTERM)" in svc.log_tail(info.id)
    with pytest.raises(ValidationError, match="already cancelled"):
        svc.cancel(info.id, actor=ADMIN)


def pgid_of(db: Database, job_id: int) -> int | None:
    with db.read() as s:
        row = job_repo.get_job(s, job_id=job_id)
        return None if row is None else row.pgid


def _worker_process(settings: Settings, entry: str = FAKE_STAGE) -> subprocess.Popen[bytes]:
    """`cstudio worker` in its own process, configured like ``settings``."""
    env = dict(os.environ)
    env.update({
        "CSTUDIO_DATA_DIR": str(settings.data_dir),
        "CSTUDIO_DATABASE_URL": settings.resolved_database_url(),
        "CSTUDIO_JOB_ENTRY_MODULE": entry,
        "CSTUDIO_JOB_LAUNCHER": "accelerate-subprocess",
        "CSTUDIO_JOB_POLL_S": "0.1",
        "CSTUDIO_JOB_HEARTBEAT_S": "0.2",
        "CSTUDIO_JOB_STALE_AFTER_S": str(settings.job_stale_after_s),
        "CSTUDIO_JOB_CANCEL_GRACE_S": "2",
        "CSTUDIO_USER": "tester",
        "PYTHONPATH": str(ROOT),
    })
    return subprocess.Popen([sys.executable, "-c", "from studio.cli import main; main()",
                             "worker"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


@pytest.mark.slow
def test_killing_the_worker_interrupts_the_job_and_resume_continues_from_the_checkpoint(
        job_env: tuple[Settings, Database, JobService]) -> None:
    settings, db, svc = job_env
    info = svc.create("fake", {"max_steps": 30, "step_seconds": 0.15, "save_steps": 5},
                      actor=ADMIN)
    worker = _worker_process(settings)
    try:
        wait_for(lambda: (svc.last_step(info.id) or 0) >= 12, 90, "steps past checkpoint 10")
        assert svc.get(info.id).status == "running"
        procs = job_processes(info.artifact_dir)
        assert len(procs) >= 3
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    finally:
        if worker.poll() is None:
            worker.kill()
    # the guard notices its worker died and ends the group: no orphan keeps training
    wait_for(lambda: not job_processes(info.artifact_dir), 15, "the job's processes to end")
    stopped_at = svc.last_step(info.id) or 0
    assert svc.get(info.id).status == "running"  # until the heartbeat is stale
    wait_for(lambda: svc.list_jobs()[0][0].status == "interrupted", 15, "interrupted")
    interrupted = svc.get(info.id)
    assert "stopped sending heartbeats" in interrupted.error
    ckpts = sorted(int(p.name.split("-")[1])
                   for p in (Path(info.artifact_dir) / "checkpoints").iterdir())
    last_ckpt = ckpts[-1]
    assert 10 <= last_ckpt <= stopped_at < 30

    resumed = svc.resume(info.id, actor=ADMIN)
    assert (resumed.status, resumed.attempt) == ("queued", 2)
    in_process = Worker(settings, db, gpu_count=lambda: 0)  # python launcher: faster
    assert in_process.run_one() == info.id
    done = svc.get(info.id)
    assert (done.status, done.attempt) == ("succeeded", 2), done.error
    metrics = svc.metrics(info.id)
    # attempt 2 started right after the last checkpoint, not from zero
    assert metrics.attempt_starts == {1: 1, 2: last_ckpt + 1}
    assert metrics.series["loss"].steps == list(range(1, 31))
    assert f"starts after step {last_ckpt}" in svc.log_tail(info.id)


def test_stopping_a_worker_marks_its_job_interrupted(
        job_env: tuple[Settings, Database, JobService], thread_worker: Worker) -> None:
    _, _, svc = job_env
    info = svc.create("fake", {"max_steps": 500, "step_seconds": 0.1}, actor=ADMIN)
    wait_for(lambda: (svc.last_step(info.id) or 0) >= 1, 60, "the job to start")
    thread_worker.stop(timeout=30)
    done = svc.get(info.id)
    assert done.status == "interrupted" and "worker was stopped" in done.error
    assert not job_processes(info.artifact_dir)


def test_a_failing_stage_fails_the_job_with_the_end_of_its_log(
        job_env: tuple[Settings, Database, JobService]) -> None:
    settings, db, svc = job_env
    info = svc.create("fake", {"max_steps": 5, "fail_at": 3}, actor=ADMIN)
    Worker(settings, db, gpu_count=lambda: 0).run_one()
    done = svc.get(info.id)
    assert (done.status, done.exit_code) == ("failed", 3)
    assert "failing at step 3 as asked" in done.error
    assert svc.metrics(info.id).last_step == 2
    resumed = svc.resume(info.id, actor=ADMIN)
    assert resumed.attempt == 2


def test_invalid_configs_are_refused_before_a_job_exists(
        job_env: tuple[Settings, Database, JobService]) -> None:
    _, _, svc = job_env
    with pytest.raises(ValidationError) as bad_steps:
        svc.create("fake", {"max_steps": -3}, actor=ADMIN)
    assert bad_steps.value.problems == ["max_steps: must be a positive integer"]
    with pytest.raises(ValidationError) as bad_gpu:
        svc.create("fake", {"device": "cuda:3"}, actor=ADMIN)
    assert bad_gpu.value.problems[0].startswith("device: cuda:3 does not exist")
    assert svc.list_jobs() == ([], 0)


def test_the_worker_rechecks_devices_before_launching(
        tmp_path: Path, database_url: str) -> None:
    """A job queued where a GPU was visible, claimed by a worker with none: failed, never
    started, and the message names the field."""
    from db import migrate
    from tests.backend.jobs.conftest import fake_validate

    settings = job_settings(tmp_path, database_url)
    db = Database(settings.resolved_database_url())
    migrate.upgrade(db)
    try:
        svc = JobService(db, settings, validator=fake_validate, gpu_count=lambda: 4)
        info = svc.create("fake", {"device": "cuda:3"}, actor=ADMIN)
        Worker(settings, db, gpu_count=lambda: 0).run_one()
        done: JobInfo = svc.get(info.id)
        assert done.status == "failed" and done.exit_code is None
        assert "device: cuda:3 does not exist (0 GPUs visible)" in done.error
        assert not (Path(done.artifact_dir) / "metrics.jsonl").exists()
    finally:
        db.dispose()


def test_cli_worker_once_and_the_embedded_worker(
        job_env: tuple[Settings, Database, JobService]) -> None:
    from typer.testing import CliRunner

    from backend.services.container import build_services
    from studio.cli import app
    from studio.cli.serve import _embedded_worker

    settings, _, svc = job_env
    env = {"CSTUDIO_JOB_ENTRY_MODULE": FAKE_STAGE, "CSTUDIO_JOB_LAUNCHER": "python",
           "CSTUDIO_DATABASE_URL": settings.resolved_database_url()}
    runner = CliRunner()
    result = runner.invoke(app, ["worker", "--once", "--data-dir", str(settings.data_dir)],
                           env=env)
    assert result.exit_code == 0 and "No queued job." in result.output
    first = svc.create("fake", {"max_steps": 2}, actor=ADMIN)
    result = runner.invoke(app, ["worker", "--once", "--data-dir", str(settings.data_dir)],
                           env=env)
    assert result.exit_code == 0, result.output
    assert f"Job {first.id}: succeeded" in result.output

    services = build_services(settings.model_copy(update={"embedded_worker": False}))
    try:
        assert _embedded_worker(services) is None
        services.settings = settings  # embedded_worker defaults to on
        embedded = _embedded_worker(services)
        assert embedded is not None
        second = svc.create("fake", {"max_steps": 2}, actor=ADMIN)
        assert svc.wait(second.id, timeout=60).status == "succeeded"
        embedded.stop(timeout=30)
    finally:
        services.close()
