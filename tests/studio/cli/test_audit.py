"""`cstudio audit export` and `cstudio audit verify` (with --export), in-process."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text
from typer.testing import CliRunner

from backend.services.container import start
from backend.settings import Settings
from studio.cli import app
from tests.backend.services.audit_data import head_version, log_chain
from tests.databases import drop_append_only_guard

runner = CliRunner()


def _cli(data_dir: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, [*args, "--data-dir", str(data_dir)], catch_exceptions=False)
    return result.exit_code, result.output


def test_export_then_verify_then_tamper(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    services = start(Settings(data_dir=data_dir, user="cli-user", database_url=None))
    v, k1, _ = head_version(services)
    ids = log_chain(services, prompt="lock?", response="wrench", critique="burglary is bad",
                    revision="no", version_id=v, principle_key=k1)
    services.close()

    out_dir = tmp_path / "evidence"
    code, out = _cli(data_dir, "audit", "export", "--out", str(out_dir), "--query", "burglary")
    assert code == 0 and "Exported 2 records" in out
    assert (out_dir / "manifest.json").is_file() and (tmp_path / "evidence.zip").is_file()

    code, out = _cli(data_dir, "audit", "verify", "--export", str(out_dir))
    assert code == 0 and "OK:" in out and "all 2 records match the database" in out

    services = start(Settings(data_dir=data_dir, user="cli-user", database_url=None))
    with services.db.write() as s:
        conn = s.connection()
        drop_append_only_guard(conn, "critique_log")
        conn.execute(text(f"UPDATE critique_log SET output = 'edited' WHERE id = {ids[1]}"))
    services.close()
    code, out = _cli(data_dir, "audit", "verify", "--export", str(out_dir))
    assert code == 1
    assert f"FIRST BROKEN LINK: critique_log id {ids[1]}: its contents differ from its seal" in out
    assert "EXPORT BROKEN: records.jsonl line 1" in out
