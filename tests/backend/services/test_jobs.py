"""JobService with the real stage registry: configs are refused before a job exists (naming
the field), roles are enforced, job.json follows the contract, the queue pages, and artifact
downloads cannot leave the job directory."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import pytest

from backend.access import Principal, Role, local_admin
from backend.errors import NotFoundError, PermissionDeniedError, ValidationError
from backend.services.container import Services
from db import job_repo, training_repo

ADMIN = local_admin("tester")
OPERATOR = Principal("olga", Role.OPERATOR)
AUTHOR = Principal("ann", Role.AUTHOR)
VIEWER = Principal("vic", Role.VIEWER)


def sl_cai_dataset(services: Services, n: int = 4) -> int:
    with services.db.write() as s:
        row = training_repo.create_dataset(
            s, kind="sl_cai", name="tiny sl-cai", job_id=None, constitution_version_id=None,
            model="test", config={}, source="test", source_sha256="0" * 64, created_by="t")
        assert row.id is not None
        training_repo.insert_sl_cai_samples(s, dataset_id=row.id, rows=[
            {"position": i, "prompt": f"Question {i}?", "response": "no",
             "revision": f"A careful answer {i}.", "chain_id": f"c{i}", "record_ids": [],
             "principle_keys": ["k"], "content_hash": f"{i:064d}"} for i in range(n)])
        return row.id


def sft_config(dataset_id: int, **extra: object) -> dict[str, object]:
    return {"model": "tiny", "sl_cai_dataset_id": dataset_id, "max_steps": 3,
            "device": "cpu", **extra}


def problems_of(services: Services, kind: str, config: dict[str, object]) -> list[str]:
    with pytest.raises(ValidationError) as info:
        services.jobs.create(kind, config, actor=ADMIN)
    return info.value.problems


def test_bad_configs_are_refused_naming_the_field_and_nothing_is_queued(
        services: Services) -> None:
    dataset = sl_cai_dataset(services)
    cases = {
        "max_steps": sft_config(dataset, max_steps=-5),
        "sl_cai_dataset_id": sft_config(9999),
        "model": sft_config(dataset, model="/nowhere/such-model"),
        "device": sft_config(dataset, device="cuda:3"),
        "learning_rate": sft_config(dataset, learning_rate="fast"),
    }
    for field, config in cases.items():
        found = problems_of(services, "sft", config)
        assert any(p.startswith(f"{field}: ") for p in found), (field, found)
    missing = dict(sft_config(dataset))
    del missing["sl_cai_dataset_id"]
    assert any(p.startswith("sl_cai_dataset_id: ") for p in problems_of(services, "sft",
                                                                        missing))
    assert any(p.startswith("kind: ") for p in problems_of(services, "pretrain", {}))
    assert services.jobs.list_jobs() == ([], 0)
    assert not (services.settings.data_dir / "jobs").exists()


def test_a_valid_job_is_queued_with_its_job_json(services: Services) -> None:
    dataset = sl_cai_dataset(services)
    info = services.jobs.create("sft", sft_config(dataset), actor=OPERATOR, name="first")
    assert (info.status, info.attempt, info.created_by, info.name) == (
        "queued", 1, "olga", "first")
    assert info.config["max_steps"] == 3 and info.config["batch_size"] == 4  # defaults filled
    job_dir = Path(info.artifact_dir)
    assert job_dir == services.settings.data_dir / "jobs" / str(info.id)
    data = json.loads((job_dir / "job.json").read_text())
    assert data == {"job_id": info.id, "kind": "sft", "config": info.config,
                    "database_url": services.settings.resolved_database_url(),
                    "data_dir": str(services.settings.data_dir), "seed": 0, "attempt": 1,
                    "created_by": "olga", "format_version": 1}
    assert os.stat(job_dir / "job.json").st_mode & 0o077 == 0  # it holds the database URL


def test_roles(services: Services) -> None:
    dataset = sl_cai_dataset(services)
    for who in (AUTHOR, VIEWER):
        with pytest.raises(PermissionDeniedError):
            services.jobs.create("sft", sft_config(dataset), actor=who)
    job = services.jobs.create("sft", sft_config(dataset), actor=OPERATOR)
    with pytest.raises(PermissionDeniedError):
        services.jobs.cancel(job.id, actor=VIEWER)
    cancelled = services.jobs.cancel(job.id, actor=OPERATOR)
    assert cancelled.status == "cancelled" and "before it started" in cancelled.error
    with pytest.raises(PermissionDeniedError):
        services.jobs.resume(job.id, actor=AUTHOR)
    resumed = services.jobs.resume(job.id, actor=OPERATOR)
    assert (resumed.status, resumed.attempt) == ("queued", 2)
    assert json.loads((Path(job.artifact_dir) / "job.json").read_text())["attempt"] == 2
    with pytest.raises(ValidationError, match="only interrupted, failed or cancelled"):
        services.jobs.resume(job.id, actor=OPERATOR)


def test_queue_pages_newest_first(services: Services) -> None:
    dataset = sl_cai_dataset(services)
    ids = [services.jobs.create("sft", sft_config(dataset), actor=ADMIN).id for _ in range(5)]
    page1, total = services.jobs.list_jobs(limit=2)
    page3, _ = services.jobs.list_jobs(offset=4, limit=2)
    assert total == 5 and [j.id for j in page1] == ids[:-3:-1] and [j.id for j in page3] == [
        ids[0]]
    services.jobs.cancel(ids[0], actor=ADMIN)
    assert services.jobs.list_jobs(statuses=["cancelled"])[1] == 1


def test_artifacts_never_leave_the_job_directory(services: Services, tmp_path: Path) -> None:
    dataset = sl_cai_dataset(services)
    job = services.jobs.create("sft", sft_config(dataset), actor=ADMIN)
    root = Path(job.artifact_dir)
    (root / "output").mkdir()
    (root / "output" / "model.safetensors").write_bytes(b"weights")
    (root / "log.txt").write_text("hello\n")
    secret = tmp_path / "secret.txt"
    secret.write_text("do not serve")
    (root / "link.txt").symlink_to(secret)
    names = [a.name for a in services.jobs.artifacts(job.id)]
    assert names == ["log.txt", "output/model.safetensors"]  # no job.json, no link
    copy = services.jobs.export_artifact(job.id, "output/model.safetensors")
    assert copy.read_bytes() == b"weights" and copy.parent != root / "output"
    for bad in ("../../secret.txt", "/etc/passwd", "job.json", "link.txt", "output/../../x",
                "..\\..\\secret.txt", ""):
        with pytest.raises((ValidationError, NotFoundError)):
            services.jobs.export_artifact(job.id, bad)
    archive = services.jobs.export_archive(job.id)
    with zipfile.ZipFile(archive) as zf:
        assert zf.namelist() == ["model.safetensors"]
    with pytest.raises(ValidationError):
        services.jobs.export_archive(job.id, "../..")


def test_metrics_keep_the_latest_attempt_per_step(services: Services) -> None:
    dataset = sl_cai_dataset(services)
    job = services.jobs.create("sft", sft_config(dataset), actor=ADMIN)
    with services.db.write() as s:
        job_repo.add_metrics(s, job_id=job.id, attempt=1, new_offset=30, points=[
            (0, 1, 1.0, {"loss": 3.0}), (10, 2, 2.0, {"loss": 2.0}),
            (20, 3, 3.0, {"loss": 1.5})])
        job_repo.add_metrics(s, job_id=job.id, attempt=2, new_offset=50, points=[
            (30, 3, 4.0, {"loss": 1.4, "learning_rate": 1e-4}),
            (40, 4, 5.0, {"loss": 1.0})])
    m = services.jobs.metrics(job.id)
    assert m.series["loss"].steps == [1, 2, 3, 4]
    assert m.series["loss"].values == [3.0, 2.0, 1.4, 1.0]
    assert m.series["learning_rate"].steps == [3]
    assert (m.last_step, m.attempt_starts) == (4, {1: 1, 2: 3})


def test_a_leftover_folder_under_a_new_job_id_is_set_aside(services: Services) -> None:
    """A database reset while the data directory stayed: job 1's old checkpoints must not be
    resumed by the new job 1."""
    old = services.settings.data_dir / "jobs" / "1"
    (old / "checkpoints" / "checkpoint-7").mkdir(parents=True)
    dataset = sl_cai_dataset(services)
    job = services.jobs.create("sft", sft_config(dataset), actor=ADMIN)
    assert job.id == 1 and not (Path(job.artifact_dir) / "checkpoints").exists()
    (aside,) = (services.settings.data_dir / "jobs").glob("1.orphan-*")
    assert (aside / "checkpoints" / "checkpoint-7").is_dir()
