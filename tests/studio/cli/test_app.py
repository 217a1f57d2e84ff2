"""The cstudio command, run in-process through Typer's runner against a temp data directory."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from backend.access import local_admin
from backend.errors import ImportFormatError
from db import migrate
from db.engine import Database
from studio.cli import app, main
from tests.conftest import PAPER_DIR

AS_ANN = local_admin("ann")

runner = CliRunner()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def cli(data_dir: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, [*args, "--data-dir", str(data_dir)], catch_exceptions=False)
    return result.exit_code, result.output


def test_db_upgrade_then_list_shows_the_default(data_dir: Path) -> None:
    code, out = cli(data_dir, "db", "upgrade")
    head = migrate.head_revision(Database("sqlite://"))
    assert code == 0 and f"empty → {head}" in out
    code, out = cli(data_dir, "constitution", "list")
    assert code == 0 and "Studio default" in out and "v1" in out


def test_import_paper_folder_export_and_reimport(data_dir: Path, tmp_path: Path) -> None:
    if not PAPER_DIR.is_dir():
        pytest.skip("shared paper data not available")
    code, out = cli(data_dir, "constitution", "import", str(PAPER_DIR), "--name", "Paper")
    assert code == 0 and "16 principles" in out, out
    target = tmp_path / "paper.json"
    code, _ = cli(data_dir, "constitution", "export", "Paper", "--format", "json",
                  "--out", str(target))
    assert code == 0
    doc = json.loads(target.read_text())
    code, out = cli(data_dir, "constitution", "import", str(target))
    assert code == 0 and doc["content_hash"] in out
    paper_out = tmp_path / "paper-files"
    code, _ = cli(data_dir, "constitution", "export", "Paper", "--format", "paper",
                  "--out", str(paper_out))
    assert code == 0
    original = json.loads((PAPER_DIR / "RLMadisonInstructions.json").read_text())
    assert json.loads((paper_out / "RLMadisonInstructions.json").read_text()) == original


def test_show_and_diff(data_dir: Path, tmp_path: Path) -> None:
    cli(data_dir, "db", "upgrade")
    exported = tmp_path / "c.yaml"
    cli(data_dir, "constitution", "export", "Studio default", "--out", str(exported))
    text = exported.read_text().replace("title: Physical safety", "title: Bodily safety")
    text = "\n".join(line for line in text.splitlines() if not line.startswith("content_hash"))
    edited = tmp_path / "edited.yaml"
    edited.write_text(text)
    code, _ = cli(data_dir, "constitution", "import", str(edited), "--name", "Edited")
    assert code == 0
    code, out = cli(data_dir, "constitution", "show", "Edited")
    assert code == 0 and "Bodily safety" in out and "schema_version: 1" in out


def test_diff_prints_changed_fields(data_dir: Path) -> None:
    from backend.services.container import start
    from studio.cli.common import make_settings

    services = start(make_settings(data_dir))
    head = services.constitutions.head(1)
    import dataclasses
    first = dataclasses.replace(head.content.principles[0], title="[red]Renamed[/red]")
    content = dataclasses.replace(head.content,
                                  principles=(first, *head.content.principles[1:]))
    services.constitutions.save(1, head.info.id, content, "rename", actor=AS_ANN)
    services.close()
    code, out = cli(data_dir, "constitution", "diff", "Studio default", "1", "2")
    assert code == 0 and "CHANGED" in out and "[red]Renamed[/red]" in out


def test_audit_verify_names_the_altered_row(data_dir: Path) -> None:
    cli(data_dir, "db", "upgrade")
    cli(data_dir, "constitution", "list")  # seeds: one audit event
    code, out = cli(data_dir, "audit", "verify")
    assert code == 0 and "OK: 2 audit events" in out
    conn = sqlite3.connect(data_dir / "studio.db")
    conn.execute("DROP TRIGGER audit_event_no_update")
    conn.execute("UPDATE audit_event SET actor = 'mallory' WHERE id = 1")
    conn.commit()
    conn.close()
    result = runner.invoke(app, ["audit", "verify", "--data-dir", str(data_dir)])
    assert result.exit_code == 1
    assert "audit_event id 1" in result.output and "altered" in result.output


def test_errors_are_one_clear_line(data_dir: Path, capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.argv", ["cstudio", "constitution", "show", "missing",
                                     "--data-dir", str(data_dir)])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "No constitution named 'missing'" in err and "Traceback" not in err


def test_serve_refuses_a_public_bind_without_sign_in(data_dir: Path,
                                                     capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.argv", ["cstudio", "serve", "--host", "0.0.0.0",
                                     "--data-dir", str(data_dir)])
    with pytest.raises(SystemExit):
        main()
    assert "Refusing to bind to 0.0.0.0" in capsys.readouterr().err


def test_bad_import_file_leaves_the_store_unchanged(data_dir: Path, tmp_path: Path) -> None:
    cli(data_dir, "db", "upgrade")
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"schema_version: 7\nname: x\nprinciples: []\n")
    result = runner.invoke(app, ["constitution", "import", str(bad), "--data-dir", str(data_dir)])
    assert result.exit_code != 0
    assert isinstance(result.exception, ImportFormatError)
    assert "schema_version 7" in str(result.exception)
    from backend.services.container import start
    from studio.cli.common import make_settings

    services = start(make_settings(data_dir))
    assert [c.name for c in services.constitutions.list_all()] == ["Studio default"]
    assert services.audit.verify().events_checked == 2  # seed + built-in prompt set
    services.close()


def test_dataset_and_eval_commands(data_dir: Path, tmp_path: Path) -> None:
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("question,good,bad,winner\nHi?,Hello!,Go away.,A\nHelp?,Sure.,No.,B\n")
    code, out = cli(data_dir, "dataset", "import", str(pairs), "--format", "csv",
                    "--column", "prompt=question", "--column", "response_a=good",
                    "--column", "response_b=bad", "--column", "label=winner")
    assert code == 0 and "2 pairs" in out, out
    code, out = cli(data_dir, "dataset", "list")
    assert code == 0 and "generic_csv" in out and "│ 2 " in out
    result = runner.invoke(app, ["dataset", "import", str(pairs), "--format", "csv",
                                 "--column", "oops", "--data-dir", str(data_dir)])
    assert result.exit_code != 0 and "FIELD=COLUMN" in str(result.exception)


def test_hub_import_offline_is_a_clear_error(data_dir: Path) -> None:
    result = runner.invoke(app, ["dataset", "import-hub", "Anthropic/hh-rlhf",
                                 "--data-dir", str(data_dir)])
    assert result.exit_code != 0
    assert "offline" in str(result.exception).lower() or "install" in str(result.exception)
