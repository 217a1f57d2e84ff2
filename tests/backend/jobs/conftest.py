"""Fixtures for job-system tests: a JobService whose stage is the stand-in fake_stage, with
short heartbeats so dead workers are noticed within seconds."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from backend.access import local_admin
from backend.errors import ValidationError
from backend.services.jobs import JobService
from backend.settings import Settings
from db import migrate
from db.engine import Database

FAKE_STAGE = "tests.backend.jobs.fake_stage"
ADMIN = local_admin("tester")


def fake_validate(kind: str, config: Mapping[str, object]) -> dict[str, object]:
    """What the stage registry does for a real stage, for the fake one."""
    if kind != "fake":
        raise ValidationError(f"Unknown job kind {kind!r}.", [f"kind: {kind!r} is unknown"])
    out: dict[str, object] = {"max_steps": 5, "step_seconds": 0.05, "save_steps": 1,
                              "device": "cpu", "seed": 0}
    out.update(config)
    problems = []
    steps = out["max_steps"]
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        problems.append("max_steps: must be a positive integer")
    if problems:
        raise ValidationError("The fake job config has problems.", problems)
    return out


def job_settings(tmp_path: Path, database_url: str | None = None, **overrides: object
                 ) -> Settings:
    values: dict[str, object] = dict(
        data_dir=tmp_path / "data", user="tester", database_url=database_url,
        job_entry_module=FAKE_STAGE, job_launcher="python", job_poll_s=0.1,
        job_heartbeat_s=0.2, job_stale_after_s=2.0, job_cancel_grace_s=2.0)
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def job_env(tmp_path: Path, database_url: str
            ) -> Iterator[tuple[Settings, Database, JobService]]:
    settings = job_settings(tmp_path, database_url)
    db = Database(settings.resolved_database_url())
    migrate.upgrade(db)
    yield settings, db, JobService(db, settings, validator=fake_validate, gpu_count=lambda: 0)
    db.dispose()
