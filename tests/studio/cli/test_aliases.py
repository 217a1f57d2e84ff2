"""`cstudio alias set|move|remove|list [--history]` (issue 16 point 8)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from typer.testing import CliRunner

from backend.access import local_admin
from backend.errors import NotFoundError
from backend.services.container import start
from backend.settings import Settings
from studio.cli import app

runner = CliRunner()


def cli(data_dir: Path, *args: str) -> tuple[int, str, BaseException | None]:
    result = runner.invoke(app, [*args, "--data-dir", str(data_dir)],
                           env={"CSTUDIO_USER": "tester"})
    error = result.exception if not isinstance(result.exception, SystemExit) else None
    return result.exit_code, result.output, error


def test_alias_set_move_remove_and_history(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    services = start(Settings(data_dir=data_dir, user="tester"))
    summary = services.constitutions.list_all()[0]
    head = services.constitutions.head(summary.id)
    first = dataclasses.replace(head.content.principles[0], title="Renamed")
    content = dataclasses.replace(head.content, principles=(first, *head.content.principles[1:]))
    services.constitutions.save(summary.id, head.info.id, content, "second",
                                actor=local_admin("tester"))
    services.close()
    name = summary.name

    assert cli(data_dir, "alias", "set", name, "production", "1")[0] == 0
    code, out, error = cli(data_dir, "alias", "move", name, "prodction", "2")  # a typo
    assert code != 0 and isinstance(error, NotFoundError) and "production" in str(error)
    code, out, _ = cli(data_dir, "alias", "move", name, "production", "2")
    assert code == 0 and "production -> v2" in out, out
    code, out, _ = cli(data_dir, "alias", "list", name)
    assert code == 0 and "production" in out and "v2" in out and "v1" not in out
    assert cli(data_dir, "alias", "remove", name, "production")[0] == 0
    assert "production" not in cli(data_dir, "alias", "list", name)[1]

    code, out, _ = cli(data_dir, "alias", "list", name, "--history")
    assert code == 0, out
    moves = [line for line in out.splitlines() if "production" in line]
    assert len(moves) == 3  # newest first: removed, moved to v2, set to v1
    assert "removed" in moves[0] and "v2" in moves[1] and "v1" in moves[2]
    assert all("tester" in line for line in moves)
    services = start(Settings(data_dir=data_dir, user="tester"))
    assert [m.version_number for m in services.ci.alias_history(summary.id)] == [None, 2, 1]
    services.close()
