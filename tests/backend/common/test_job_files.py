"""Issue 18 point 4: job.json, manifest.json, result.json and metrics.jsonl carry a format
version, checked on read; files written before versions existed read as version 1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backend.common.job_files import FORMAT_KEY, JobDir, check_version
from backend.errors import FileVersionError, ValidationError
from backend.jobs.metrics import read_new
from backend.training import entry, models
from backend.training.callbacks import MetricsWriter


def _write(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")


def test_the_json_files_are_written_with_their_version(tmp_path: Path) -> None:
    files = JobDir(tmp_path)
    files.write_job_json({"kind": "sft", "config": {}})
    files.write_manifest({"status": "running"})
    files.write_result({"model_dir": "/m"}, {"loss": 0.5})
    for path in (files.job_json, files.manifest, files.result):
        assert json.loads(path.read_text())[FORMAT_KEY] == 1
    assert files.read_job_json()["kind"] == "sft"
    assert files.read_manifest() == {"status": "running", FORMAT_KEY: 1}
    assert files.read_result() == {"outputs": {"model_dir": "/m"}, "summary": {"loss": 0.5},
                                   FORMAT_KEY: 1}


def test_unversioned_files_read_as_version_1(tmp_path: Path) -> None:
    files = JobDir(tmp_path)
    _write(files.job_json, {"kind": "sft", "config": {}})
    _write(files.manifest, {"status": "succeeded"})
    _write(files.result, {"outputs": {}, "summary": {}})
    assert files.read_job_json() == {"kind": "sft", "config": {}}
    assert files.read_manifest() == {"status": "succeeded"}
    assert files.read_result() == {"outputs": {}, "summary": {}}
    assert check_version({}, files.result, 1) == 1


@pytest.mark.parametrize("reader", ["read_job_json", "read_manifest", "read_result"])
def test_a_newer_version_is_refused_with_what_to_do(tmp_path: Path, reader: str) -> None:
    files = JobDir(tmp_path)
    for path in (files.job_json, files.manifest, files.result):
        _write(path, {"kind": "sft", "config": {}, "outputs": {}, FORMAT_KEY: 2})
    with pytest.raises(FileVersionError, match="newer than the 1 this studio reads; upgrade"):
        getattr(files, reader)()


@pytest.mark.parametrize("version", ["1", 0, -1, 1.5, True, None])
def test_an_unknown_version_is_refused(tmp_path: Path, version: object) -> None:
    with pytest.raises(FileVersionError, match="is not a version this studio knows"):
        check_version({FORMAT_KEY: version}, tmp_path / "result.json", 1)


def test_metrics_start_with_a_header_that_readers_skip(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    writer = MetricsWriter(path)
    writer.write(1, loss=2.0)
    writer.write(2, loss=1.0)
    first = json.loads(path.read_text().splitlines()[0])
    assert first == {FORMAT_KEY: 1}
    points, offset = read_new(path, 0)
    assert [(p.step, p.metrics) for p in points] == [(1, {"loss": 2.0}), (2, {"loss": 1.0})]
    assert offset == path.stat().st_size


def test_old_metrics_without_a_header_still_read(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1, "time": 1.0, "loss": 3.0}\n')
    points, _ = read_new(path, 0)
    assert [p.metrics for p in points] == [{"loss": 3.0}]


def test_metrics_of_a_newer_version_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"format_version": 7}\n{"step": 1, "time": 1.0, "loss": 3.0}\n')
    with pytest.raises(FileVersionError, match="format_version 7"):
        read_new(path, 0)


def test_the_stage_refuses_a_newer_job_json(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    job_dir = tmp_path / "jobs" / "1"
    _write(job_dir / "job.json", {"kind": "sft", "config": {}, "database_url": "sqlite://",
                                  FORMAT_KEY: 3})
    assert entry.main(["--job-dir", str(job_dir)]) == 2
    assert "newer than the 1 this studio reads" in capsys.readouterr().err


def test_a_newer_result_is_refused_as_a_model_input(tmp_path: Path) -> None:
    files = JobDir.of(tmp_path, 4)
    _write(files.result, {"outputs": {"model_dir": str(tmp_path)}, FORMAT_KEY: 2})
    with pytest.raises(ValidationError, match=r"job 4: .*upgrade this studio"):
        models.job_output_dir(4, db=_NoJobTable(), data_dir=tmp_path)  # type: ignore[arg-type]


class _NoJobTable:
    """A database without the job table: the result file alone decides."""

    def read(self) -> object:
        from sqlalchemy.exc import OperationalError

        raise OperationalError("SELECT", {}, Exception("no such table: job"))


def test_the_stage_refuses_a_newer_manifest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """A resumed run reads the previous manifest; one of a newer studio stops the stage before
    anything is overwritten."""
    from types import SimpleNamespace

    job_dir = tmp_path / "jobs" / "1"
    _write(job_dir / "manifest.json", {"status": "failed", FORMAT_KEY: 5})
    disposed: list[bool] = []
    ctx = SimpleNamespace(kind="sft", job_dir=job_dir, files=JobDir(job_dir),
                          db=SimpleNamespace(dispose=lambda: disposed.append(True)))
    monkeypatch.setattr(entry, "open_context", lambda _: ctx)
    assert entry.main(["--job-dir", str(job_dir)]) == 2
    assert "manifest.json has format_version 5" in capsys.readouterr().err
    assert json.loads((job_dir / "manifest.json").read_text())[FORMAT_KEY] == 5
    assert disposed == [True]
