"""Training jobs as use-cases: create (validated before anything runs), list, read the log and
the metric curves, cancel, resume, compare, and hand out artifacts.

Jobs run in a worker process (``backend.jobs.worker``), never in the caller's thread: every
method here returns at once, so the UI never blocks on a job.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from backend.access import Action, Principal, require
from backend.common.job_files import JobDir
from backend.errors import NotFoundError, ValidationError
from backend.jobs.devices import plan_devices, visible_gpus
from backend.jobs.reaper import end_leftover_processes, reap_stale
from backend.settings import Settings
from db import job_repo, training_repo
from db.base_models import utcnow
from db.engine import Database
from db.job_models import FINISHED_STATUSES, Job

if TYPE_CHECKING:
    from backend.training.stage_fields import StageInfo

log = logging.getLogger(__name__)
Validator = Callable[[str, Mapping[str, object]], dict[str, object]]
RESUMABLE = ("interrupted", "failed", "cancelled")
MAX_ARTIFACTS = 5000
LOG_TAIL_BYTES = 200_000


@dataclass(frozen=True)
class JobInfo:
    id: int
    kind: str
    name: str
    status: str
    config: dict[str, object]
    constitution_version_id: int | None
    created_by: str
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None
    worker: str
    exit_code: int | None
    error: str
    artifact_dir: str
    attempt: int
    cancel_requested: bool
    result: dict[str, object] | None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_STATUSES

    @property
    def label(self) -> str:
        return f"#{self.id} {self.name}"

    @staticmethod
    def of(row: Job) -> JobInfo:
        assert row.id is not None
        return JobInfo(row.id, row.kind, row.name, row.status, dict(row.config),
                       row.constitution_version_id, row.created_by, row.created_at,
                       row.updated_at, row.started_at, row.finished_at, row.heartbeat_at,
                       row.worker, row.exit_code, row.error, row.artifact_dir, row.attempt,
                       row.cancel_requested, None if row.result is None else dict(row.result))


@dataclass(frozen=True)
class Series:
    """One metric of one job: steps and values (for a step logged by several attempts, the
    latest attempt's value)."""

    name: str
    steps: list[int]
    values: list[float]


@dataclass(frozen=True)
class JobMetrics:
    job_id: int
    series: dict[str, Series]
    last_step: int | None
    attempt_starts: dict[int, int]  # attempt -> its first logged step


@dataclass(frozen=True)
class StageDataset:
    """A dataset made by a stage (SL-CAI samples or AI preference pairs)."""

    id: int
    kind: str
    name: str
    job_id: int | None
    created_at: datetime


@dataclass(frozen=True)
class Artifact:
    name: str  # relative to the job directory, '/'-separated
    size: int


class JobService:
    def __init__(self, db: Database, settings: Settings, *,
                 validator: Validator | None = None,
                 gpu_count: Callable[[], int] = visible_gpus) -> None:
        self._db = db
        self._settings = settings
        self._validator = validator
        self._gpu_count = gpu_count

    # --- creating ------------------------------------------------------------------------------

    def stages(self) -> list[StageInfo]:
        """The stages and their form fields (from the stage registry)."""
        from backend.training import registry

        return registry.kinds()

    def model_kinds(self) -> list[str]:
        """The stages that train a model (their output is a model reference ``job:<id>``)."""
        return [s.kind for s in self.stages() if s.model_stage]

    def policy_kinds(self) -> list[str]:
        """The stages whose model is a policy (compared, opened in the Playground)."""
        return [s.kind for s in self.stages() if s.policy]

    def upstream_of(self, kind: str) -> str | None:
        """The stage whose newest model a new ``kind`` job starts from, if any."""
        return next((s.upstream for s in self.stages() if s.kind == kind), None)

    def validate(self, kind: str, config: Mapping[str, object], *,
                 deferred: frozenset[str] = frozenset()) -> dict[str, object]:
        """The normalised config, or ValidationError naming each bad field (stage fields by the
        stage registry, then the device fields against the GPUs visible here). ``deferred``:
        fields naming outputs of jobs not run yet (a pipeline's ``job:<id>``), checked later."""
        try:
            if self._validator is not None:
                normalised = self._validator(kind, config)
            else:
                from backend.training import registry

                normalised = registry.validate(kind, config, db=self._db,
                                               data_dir=self._settings.data_dir,
                                               deferred=deferred)
        except ValidationError as exc:
            # report the device problems too, so one round trip shows everything to fix
            named = {p.split(":", 1)[0] for p in exc.problems}
            try:
                plan_devices(config, self._gpu_count)
            except ValidationError as devices:
                extra = [p for p in devices.problems if p.split(":", 1)[0] not in named]
                if extra:
                    raise ValidationError(exc.message.split("\n", 1)[0],
                                          [*exc.problems, *extra]) from exc
            raise
        plan_devices(normalised, self._gpu_count)
        return normalised

    def create(self, kind: str, config: Mapping[str, object], *, actor: Principal,
               name: str = "") -> JobInfo:
        """Validate and queue a job; nothing starts when the config has a problem."""
        require(actor, Action.LAUNCH_JOB)
        normalised = self.validate(kind, dict(config))
        version = normalised.get("constitution_version_id")
        label = name.strip() or f"{kind} · {normalised.get('model', '')}".strip(" ·")
        with self._db.write() as s:
            row = job_repo.create_job(
                s, kind=kind, name=label[:200], config=normalised, status="queued",
                constitution_version_id=version if isinstance(version, int) else None,
                created_by=actor.name)
            assert row.id is not None
            job_dir = JobDir.of(self._settings.data_dir, row.id)
            _set_aside(job_dir.root)
            row.artifact_dir = str(job_dir.root)
            s.add(row)
            self._write_job_json(row, job_dir)
            s.flush()
            return JobInfo.of(row)

    def _write_job_json(self, row: Job, job_dir: JobDir) -> None:
        seed = row.config.get("seed", 0)
        job_dir.write_job_json({
            "job_id": row.id, "kind": row.kind, "config": row.config,
            "database_url": self._settings.resolved_database_url(),
            "data_dir": str(self._settings.data_dir), "seed": seed if isinstance(seed, int)
            else 0, "attempt": row.attempt, "created_by": row.created_by})
        os.chmod(job_dir.job_json, 0o600)  # it holds the database URL

    # --- reading -------------------------------------------------------------------------------

    def reap(self) -> list[int]:
        """Mark jobs of dead workers interrupted (workers do this too; reading does it so the
        queue is honest even when no worker runs)."""
        return reap_stale(self._db, stale_after_s=self._settings.job_stale_after_s,
                          grace=self._settings.job_cancel_grace_s)

    def get(self, job_id: int) -> JobInfo:
        with self._db.read() as s:
            row = job_repo.get_job(s, job_id=job_id)
            if row is None:
                raise NotFoundError(f"No job with id {job_id}.")
            return JobInfo.of(row)

    def list_jobs(self, *, offset: int = 0, limit: int = 20, statuses: list[str] | None = None,
             kinds: list[str] | None = None) -> tuple[list[JobInfo], int]:
        """One page of jobs, newest first, and how many match in all."""
        self.reap()
        with self._db.read() as s:
            rows = job_repo.list_jobs(s, limit=limit, offset=offset, statuses=statuses,
                                      kinds=kinds)
            total = job_repo.count_jobs(s, statuses=statuses, kinds=kinds)
            return [JobInfo.of(r) for r in rows], total

    def last_step(self, job_id: int) -> int | None:
        with self._db.read() as s:
            return job_repo.last_step(s, job_id=job_id)

    def log_tail(self, job_id: int, max_bytes: int = LOG_TAIL_BYTES) -> str:
        path = JobDir(Path(self.get(job_id).artifact_dir)).log
        try:
            with path.open("rb") as fh:
                fh.seek(0, os.SEEK_END)
                size = fh.tell()
                fh.seek(max(0, size - max_bytes))
                data = fh.read()
        except OSError:
            return ""
        text = data.decode("utf-8", errors="replace")
        if size > max_bytes:
            text = "… (earlier lines in log.txt)\n" + text.split("\n", 1)[-1]
        return text

    def metrics(self, job_id: int) -> JobMetrics:
        with self._db.read() as s:
            rows = job_repo.job_metrics(s, job_id=job_id)
        latest: dict[str, dict[int, tuple[int, float]]] = {}
        starts: dict[int, int] = {}
        for r in rows:
            starts[r.attempt] = min(starts.get(r.attempt, r.step), r.step)
            for name, value in r.metrics.items():
                seen = latest.setdefault(name, {})
                old = seen.get(r.step)
                if old is None or old[0] <= r.attempt:
                    seen[r.step] = (r.attempt, float(value))
        series = {name: Series(name, sorted(points), [points[k][1] for k in sorted(points)])
                  for name, points in latest.items()}
        last = max((r.step for r in rows), default=None)
        return JobMetrics(job_id, series, last, starts)

    def compare(self, job_ids: list[int]) -> dict[int, JobMetrics]:
        return {job_id: self.metrics(job_id) for job_id in job_ids}

    def finished_of_kinds(self, kinds: list[str]) -> list[JobInfo]:
        """Succeeded jobs of these kinds, newest first (inputs for later stages)."""
        rows, _ = self.list_jobs(statuses=["succeeded"], kinds=kinds, limit=200)
        return rows

    def stage_datasets(self, kind: str) -> list[StageDataset]:
        """Datasets the stages made, of ``kind`` ("sl_cai" or "preference"), newest first."""
        with self._db.read() as s:
            rows = training_repo.list_datasets(s, kind=kind)
            return [StageDataset(r.id, r.kind, r.name, r.job_id, r.created_at)
                    for r in rows if r.id is not None]

    def wait(self, job_id: int, timeout: float, poll: float = 0.2) -> JobInfo:
        """Poll until the job is finished or ``timeout`` seconds pass (for scripts and tests)."""
        deadline = time.monotonic() + timeout
        while True:
            info = self.get(job_id)
            if info.finished or time.monotonic() >= deadline:
                return info
            time.sleep(poll)

    # --- cancel and resume ---------------------------------------------------------------------

    def cancel(self, job_id: int, *, actor: Principal) -> JobInfo:
        """A queued job is cancelled at once; a running one is asked to stop (its worker ends
        the whole process group within a heartbeat, then marks it cancelled)."""
        require(actor, Action.CANCEL_JOB)
        info = self.get(job_id)
        if info.finished:
            raise ValidationError(f"Job {job_id} is already {info.status}; nothing to cancel.")
        with self._db.write() as s:
            unstarted = job_repo.update_job(
                s, job_id=job_id, expect_status=("queued",), status="cancelled",
                error=f"Cancelled by {actor.name} before it started.", finished_at=utcnow())
            if not unstarted:
                job_repo.update_job(s, job_id=job_id, expect_status=("running",),
                                    cancel_requested=True)
        if unstarted:
            return self.get(job_id)
        self.reap()  # a job whose worker is gone is cancelled here instead
        return self._cancel_orphan(job_id, actor)

    def _cancel_orphan(self, job_id: int, actor: Principal) -> JobInfo:
        info = self.get(job_id)
        if info.status == "interrupted":
            with self._db.write() as s:
                job_repo.update_job(s, job_id=job_id, expect_status=("interrupted",),
                                    status="cancelled",
                                    error=f"Cancelled by {actor.name} after its worker died.")
        return self.get(job_id)

    def resume(self, job_id: int, *, actor: Principal) -> JobInfo:
        """Queue an interrupted, failed or cancelled job again in the same directory, as the
        next attempt; the stage continues from its latest checkpoint."""
        require(actor, Action.LAUNCH_JOB)
        self.reap()
        info = self.get(job_id)
        if info.status not in RESUMABLE:
            raise ValidationError(f"Job {job_id} is {info.status}; only interrupted, failed or "
                                  "cancelled jobs can be resumed.")
        with self._db.read() as s:
            row = job_repo.get_job(s, job_id=job_id)
        assert row is not None
        if row.pgid is not None and not end_leftover_processes(row, 0.0):
            raise ValidationError(f"Job {job_id} still has processes running (group "
                                  f"{row.pgid}); try again in a moment.")
        plan_devices(info.config, self._gpu_count)
        with self._db.write() as s:
            if not job_repo.update_job(s, job_id=job_id, expect_status=RESUMABLE,
                                       status="queued", attempt=info.attempt + 1,
                                       cancel_requested=False, exit_code=None, error="",
                                       finished_at=None, pid=None, pgid=None, result=None):
                raise ValidationError(f"Job {job_id} changed meanwhile; reload and retry.")
            row = job_repo.get_job(s, job_id=job_id)
            assert row is not None
            s.refresh(row)
            self._write_job_json(row, JobDir(Path(row.artifact_dir)))
        return self.get(job_id)

    # --- artifacts -----------------------------------------------------------------------------

    def artifacts(self, job_id: int) -> list[Artifact]:
        """The job directory's files (not following links), job.json excepted (it holds the
        database URL)."""
        root = Path(self.get(job_id).artifact_dir)
        found: list[Artifact] = []
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
            dirnames.sort()
            for fname in sorted(filenames):
                path = Path(dirpath) / fname
                if path.is_symlink() or not path.is_file():
                    continue
                rel = path.relative_to(root).as_posix()
                if rel in ("job.json",) or rel.endswith(".tmp"):
                    continue
                found.append(Artifact(rel, path.stat().st_size))
                if len(found) >= MAX_ARTIFACTS:
                    return found
        return found

    def artifact_path(self, job_id: int, name: str) -> Path:
        """The file ``name`` of the job's directory; refuses names that leave it."""
        root = Path(self.get(job_id).artifact_dir).resolve()
        rel = PurePosixPath(name.replace("\\", "/"))
        if (not name or rel.is_absolute() or ".." in rel.parts or rel.as_posix() == "job.json"
                or any(ch in name for ch in ("\0", "\n"))):
            raise ValidationError(f"{name!r} is not a file of job {job_id}.")
        path = root.joinpath(*rel.parts)
        if path.is_symlink() or not path.resolve().is_relative_to(root) or not path.is_file():
            raise NotFoundError(f"Job {job_id} has no file {name!r}.")
        return path

    def export_artifact(self, job_id: int, name: str) -> Path:
        """A copy of one file in a fresh temporary folder (what a download hands out)."""
        source = self.artifact_path(job_id, name)
        folder = Path(tempfile.mkdtemp(prefix=f"cstudio-job{job_id}-"))
        return Path(shutil.copy2(source, folder / source.name))

    def export_archive(self, job_id: int, folder_name: str = "output") -> Path:
        """A zip of one folder of the job (default: the trained model in ``output/``)."""
        info = self.get(job_id)
        rel = PurePosixPath(folder_name)
        if rel.is_absolute() or ".." in rel.parts:
            raise ValidationError(f"{folder_name!r} is not a folder of job {job_id}.")
        source = Path(info.artifact_dir).resolve().joinpath(*rel.parts)
        if source.is_symlink() or not source.is_dir():
            raise NotFoundError(f"Job {job_id} has no folder {folder_name!r} (yet).")
        folder = Path(tempfile.mkdtemp(prefix=f"cstudio-job{job_id}-"))
        base = folder / f"job{job_id}-{rel.name or 'files'}"
        return Path(shutil.make_archive(str(base), "zip", root_dir=source))


def _set_aside(root: Path) -> None:
    """A folder left under a new job's id (a database reset while the data directory stayed)
    is renamed, so the new job never resumes someone else's checkpoints."""
    if root.exists() and any(root.iterdir()):
        aside = root.with_name(f"{root.name}.orphan-{time.strftime('%Y%m%d-%H%M%S')}")
        log.warning("moving the leftover folder %s to %s", root, aside)
        root.rename(aside)

