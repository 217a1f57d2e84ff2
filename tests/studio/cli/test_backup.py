"""`cstudio backup` and `cstudio restore`, in-process through Typer's runner (SQLite)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from backend.errors import StudioError
from studio.cli import app

runner = CliRunner()


def cli(data_dir: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, [*args, "--data-dir", str(data_dir)], catch_exceptions=False)
    return result.exit_code, result.output


def test_backup_restore_into_a_fresh_data_dir_then_refuse_without_force(tmp_path: Path,
                                                                        monkeypatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("CSTUDIO_DATABASE_URL", raising=False)
    first, second = tmp_path / "first", tmp_path / "second"
    assert cli(first, "constitution", "list")[0] == 0  # seeds the default constitution
    code, out = cli(first, "backup", str(tmp_path / "studio.backup"))
    assert code == 0 and "Backed up the sqlite store" in " ".join(out.split())

    code, out = cli(second, "restore", str(tmp_path / "studio.backup"))
    # rich wraps long lines at the terminal width, which depends on where the test runs
    assert code == 0 and "Verified: 2 audit events, 1 versions" in " ".join(out.split())
    code, out = cli(second, "constitution", "list")
    assert "Studio default" in out and "v1" in out

    with pytest.raises(StudioError, match="--force"):
        cli(second, "restore", str(tmp_path / "studio.backup"))
    code, out = cli(second, "restore", str(tmp_path / "studio.backup"), "--force")
    assert code == 0 and "saved to" in out and (second / "backups").is_dir()
