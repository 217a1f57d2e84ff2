"""The CLI package's shape (issue 18 point 3): the root composes the command groups, and no group
imports the root, so the old circle ``cli ↔ cli_backup / cli_users`` cannot come back."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import typer

import studio.cli
from studio.cli import app

PACKAGE = Path(studio.cli.__file__).resolve().parent
ROOT = PACKAGE.parents[1]


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_no_command_group_imports_the_package_root() -> None:
    groups = [p for p in PACKAGE.glob("*.py") if p.name != "__init__.py"]
    assert len(groups) >= 10
    offenders = {p.name: "studio.cli" for p in groups if "studio.cli" in _imports(p)}
    assert offenders == {}


def test_every_command_and_group_is_on_the_console_script() -> None:
    click = typer.main.get_command(app)
    commands = set(click.commands)  # type: ignore[attr-defined]
    assert commands == {"serve", "worker", "backup", "restore", "db", "constitution", "audit",
                        "dataset", "eval", "user", "prompts", "compare", "job", "alias",
                        "golden", "pipeline"}
    evals = click.commands["eval"].commands  # type: ignore[attr-defined]
    assert set(evals) == {"create", "run", "report", "compare"}
    pipelines = click.commands["pipeline"].commands  # type: ignore[attr-defined]
    assert set(pipelines) == {"launch", "list", "show", "cancel", "resume"}
    jobs = click.commands["job"].commands  # type: ignore[attr-defined]
    assert set(jobs) == {"submit", "list", "show", "logs", "cancel", "resume", "export-data"}
    compare = click.commands["compare"].commands  # type: ignore[attr-defined]
    assert set(compare) == {"policies", "create", "run", "list", "report", "vote", "votes",
                            "adjudicate"}
    aliases = click.commands["alias"].commands  # type: ignore[attr-defined]
    assert set(aliases) == {"set", "move", "remove", "list"}
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert 'cstudio = "studio.cli:main"' in pyproject


def test_a_command_group_module_imports_on_its_own() -> None:
    """Importing one group first (as a test or a tool may) works: the root then loads it."""
    for name in ("users", "backup", "ci", "jobs"):
        result = subprocess.run([sys.executable, "-c", f"import studio.cli.{name}"],
                                capture_output=True, text=True, cwd=ROOT)
        assert result.returncode == 0, result.stderr
