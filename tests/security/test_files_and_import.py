"""Issue 13 points 7 and 9: files only the studio's account can read; bounded reading of an
import, and one clear line (store intact) when the disk is full."""

from __future__ import annotations

import errno
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from backend.services.container import build_services
from backend.services.datasets import DatasetService
from backend.settings import Settings
from studio import cli as cli_module

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]


def _cstudio(*args: str) -> subprocess.CompletedProcess[str]:
    """The real console entry (main(), which sets the umask), in a fresh process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-c", "from studio.cli import main; main()", *args],
                          capture_output=True, text=True, env=env, timeout=300, check=False)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_data_directory_and_its_files_are_private(tmp_path: Path) -> None:
    data = tmp_path / "data"
    done = _cstudio("constitution", "list", "--data-dir", str(data))
    assert done.returncode == 0, done.stderr
    assert _mode(data) == 0o700
    files = [p for p in data.rglob("*") if p.is_file()]
    assert any(p.name == "studio.db" for p in files)
    for path in files:
        assert _mode(path) & 0o077 == 0, f"{path} is {oct(_mode(path))}"
    assert "other accounts" not in done.stderr


def test_start_warns_about_a_file_others_can_read(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    leaked = data / "old-backup.db"
    leaked.write_bytes(b"x")
    leaked.chmod(0o644)
    done = _cstudio("constitution", "list", "--data-dir", str(data))
    assert done.returncode == 0, done.stderr
    assert "other accounts on this machine can read" in done.stderr
    assert str(leaked) in done.stderr
    assert _mode(data) == 0o700  # the folder itself is narrowed


def test_an_oversized_import_is_refused_before_it_is_read(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    big = tmp_path / "big.jsonl"
    with big.open("wb") as fh:  # sparse: 1.2 GB on paper, nothing on disk
        fh.truncate(1_200_000_000)
    opened: list[Path] = []
    real_open = Path.open

    def spy(self: Path, *args: object, **kwargs: object) -> object:
        if self == big:
            opened.append(self)
        return real_open(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "open", spy)
    real_read = Path.read_bytes

    def no_whole_read(self: Path) -> bytes:
        if self == big:
            pytest.fail("read the whole file")
        return real_read(self)

    monkeypatch.setattr(Path, "read_bytes", no_whole_read)
    result = runner.invoke(cli_module.app, ["dataset", "import", str(big), "--data-dir",
                                            str(tmp_path / "data")])
    assert result.exit_code != 0
    assert "1,200,000,000 bytes; the import limit is 200,000,000" in str(result.exception)
    assert opened == []


def test_a_full_disk_gives_one_line_and_keeps_the_store(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    data = tmp_path / "data"
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(json.dumps({"chosen": "\n\nHuman: hi\n\nAssistant: hello",
                                 "rejected": "\n\nHuman: hi\n\nAssistant: go away"}) + "\n",
                     encoding="utf-8")
    real_store = DatasetService._store

    def full(self: DatasetService, *args: object, **kwargs: object) -> object:
        raise OSError(errno.ENOSPC, "No space left on device", str(data / "studio.db-wal"))

    monkeypatch.setattr(DatasetService, "_store", full)
    monkeypatch.setattr(sys, "argv", ["cstudio", "dataset", "import", str(pairs),
                                      "--data-dir", str(data)])
    with pytest.raises(SystemExit) as stopped:
        cli_module.main()
    assert stopped.value.code == 3
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert "no space left on the disk holding" in lines[0]
    assert "studio.db-wal" in lines[0] and "store is intact" in lines[0]
    monkeypatch.setattr(DatasetService, "_store", real_store)
    services = build_services(Settings(data_dir=data))
    try:
        assert services.datasets.list_all() == []
        assert services.audit.verify().ok
    finally:
        services.close()
