"""A built wheel works on its own: it carries the CSS and the migrations, and ``cstudio serve``
from a fresh virtual environment (outside the source tree) migrates a new store and serves the
studio's CSS (issue 18 point 6: ``static/`` outside the package left a wheel without styling).

The fresh venv gets the wheel only (``--no-deps``); the heavy dependencies (gradio, torch, …)
come from the test's own environment through a ``.pth`` line naming its site-packages (a plain
path, so the editable install of the source tree living there is *not* activated)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
CSS = ROOT / "studio" / "static" / "studio.css"
SOURCES = ("pyproject.toml", "README.md", "backend", "db", "studio")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV") and not k.startswith("CSTUDIO_")}
    env.update(HF_HUB_OFFLINE="1", **extra)
    return env


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from a copy of the sources (the build writes nothing into the tree)."""
    src = tmp_path_factory.mktemp("src")
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(path, src / name)
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "--quiet", "-w", str(out), str(src)], check=True, env=_clean_env(),
                   cwd=out, timeout=600)
    [built] = out.glob("constitution_studio-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel installed (no dependencies) and this environment's
    site-packages readable through a plain .pth line."""
    root = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip",
                    str(root)], check=True, timeout=300)
    python = root / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install",
                    "--no-deps", "--quiet", str(wheel)], check=True, env=_clean_env(),
                   timeout=600)
    purelib = subprocess.run([str(python), "-c", "import sysconfig; "
                              "print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    (Path(purelib) / "_outer_site.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return root


@pytest.mark.slow
def test_the_wheel_carries_the_css_and_the_migrations(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "studio/static/studio.css" in names
    assert {"db/migrations/env.py", "db/migrations/script.py.mako"} <= names
    shipped = {n.rsplit("/", 1)[1] for n in names if n.startswith("db/migrations/versions/")}
    in_tree = {p.name for p in (ROOT / "db" / "migrations" / "versions").glob("*.py")}
    assert in_tree and in_tree <= shipped


@pytest.fixture
def served(venv: Path, tmp_path: Path) -> Iterator[str]:
    """``cstudio serve`` of the installed wheel, started from a folder outside the repo."""
    port = _free_port()
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(
        [str(venv / "bin" / "cstudio"), "serve", "--data-dir", str(tmp_path / "data"),
         "--port", str(port), "--no-worker"],
        cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
        env=_clean_env(CSTUDIO_ENGINE="scripted"))
    url = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(600):  # up to ~5 minutes on a loaded machine
            if proc.poll() is not None:
                break
            try:
                httpx.get(url, timeout=2.0)
                break
            except httpx.HTTPError:
                time.sleep(0.5)
        assert proc.poll() is None, (tmp_path / "serve.log").read_text(errors="replace")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.mark.slow
def test_cstudio_serve_from_the_installed_wheel_serves_the_css(venv: Path, served: str) -> None:
    located = subprocess.run(
        [str(venv / "bin" / "python"), "-c",
         "import studio.app, db.migrate; print(studio.app.STATIC_DIR); "
         "print(db.migrate.MIGRATIONS_DIR)"],
        check=True, capture_output=True, text=True, env=_clean_env(), cwd=venv).stdout.split()
    assert all(str(venv) in path for path in located), located  # the wheel's copy, not the tree
    page = httpx.get(served, timeout=30.0)
    assert page.status_code == 200
    rules = [line for line in CSS.read_text(encoding="utf-8").splitlines()
             if line.startswith("#")]
    assert rules and all(rule.split("{", 1)[0].strip() in page.text for rule in rules[:5])
    assert "#studio-header { border-bottom" in page.text
