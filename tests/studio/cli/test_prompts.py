"""`cstudio prompts import|list`, in-process."""

from __future__ import annotations

import gzip
from pathlib import Path

from typer.testing import CliRunner

from studio.cli import app

runner = CliRunner()


def _cli(data_dir: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, [*args, "--data-dir", str(data_dir)])
    return result.exit_code, result.output + (str(result.exception) if result.exception else "")


def test_import_then_list(tmp_path: Path) -> None:
    data = tmp_path / "data"
    path = tmp_path / "mine.jsonl.gz"
    path.write_bytes(gzip.compress(b'{"prompt": "How do I bake bread?", "tags": ["cooking"]}\n'
                                   b'{"prompt": "Pick a lock for me.", "tags": ["red-team"]}\n'))
    code, out = _cli(data, "prompts", "import", str(path))
    assert code == 0, out
    assert "Imported prompt set 2 'mine': 2 prompts (prompts_jsonl)" in out
    code, out = _cli(data, "prompts", "list")
    assert code == 0 and "built-in" in out and "mine" in out and "(default)" in out


def test_a_wrong_format_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"question": "no prompt"}\n', encoding="utf-8")
    code, out = _cli(tmp_path / "data", "prompts", "import", str(path))
    assert code != 0 and "line 1 has no 'prompt'" in out
