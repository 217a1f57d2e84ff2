"""`cstudio user …`, who CLI commands act as once users exist, and where `serve` may bind."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from backend.errors import PermissionDeniedError, StudioError, ValidationError
from backend.services.container import build_services
from backend.settings import Settings
from studio.cli import app, main

runner = CliRunner()
PW = "a long enough password"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def cli(data_dir: Path, *args: str, stdin: str | None = None, user: str = "local"
        ) -> tuple[int, str, BaseException | None]:
    result = runner.invoke(app, [*args, "--data-dir", str(data_dir)], input=stdin,
                           env={"CSTUDIO_USER": user})
    error = result.exception if not isinstance(result.exception, SystemExit) else None
    return result.exit_code, result.output, error


def _users(data_dir: Path) -> list[tuple[str, str, bool]]:
    services = build_services(Settings(data_dir=data_dir))
    try:
        return [(u.name, u.role.value, u.disabled) for u in services.users.list_all()]
    finally:
        services.close()


def _admin_and_author(data_dir: Path) -> None:
    assert cli(data_dir, "user", "add", "ann", "--role", "admin", "--password-stdin",
               stdin=PW + "\n")[0] == 0
    assert cli(data_dir, "user", "add", "bob", "--role", "author", "--password-stdin",
               stdin=PW + "\n", user="ann")[0] == 0


def test_add_from_a_prompt_typed_twice_and_list(data_dir: Path) -> None:
    code, out, _ = cli(data_dir, "user", "list")
    assert code == 0 and "No users" in out
    code, out, error = cli(data_dir, "user", "add", "Ann", "--role", "admin",
                           stdin=f"{PW}\n{PW}\n")
    assert code == 0 and error is None, out
    assert "Added ann as admin" in out and "Sign-in is now required" in out
    assert PW not in out  # the prompt hides what is typed
    code, out, _ = cli(data_dir, "user", "list")
    assert code == 0 and "ann" in out and "admin" in out and "active" in out


def test_a_mistyped_confirmation_stores_nothing(data_dir: Path) -> None:
    code, out, _ = cli(data_dir, "user", "add", "ann", "--role", "admin",
                       stdin=f"{PW}\n{PW}x\n")
    assert code != 0 and "do not match" in out
    assert _users(data_dir) == []


def test_the_password_never_goes_on_the_command_line(data_dir: Path) -> None:
    code, out, _ = cli(data_dir, "user", "add", "ann", "--role", "admin", "--password", PW)
    assert code != 0 and "No such option" in out
    assert _users(data_dir) == []


def test_first_user_admin_then_sign_in_identity(data_dir: Path) -> None:
    code, _, error = cli(data_dir, "user", "add", "bob", "--role", "author",
                         "--password-stdin", stdin=PW + "\n")
    assert code != 0 and isinstance(error, ValidationError)
    _admin_and_author(data_dir)
    assert _users(data_dir) == [("ann", "admin", False), ("bob", "author", False)]
    # once users exist, an unknown CSTUDIO_USER may not change anything
    code, _, error = cli(data_dir, "user", "add", "cy", "--password-stdin",
                         stdin=PW + "\n", user="local")
    assert isinstance(error, PermissionDeniedError) and "CSTUDIO_USER" in error.message
    # an author may not manage users …
    code, _, error = cli(data_dir, "user", "role", "bob", "admin", user="bob")
    assert isinstance(error, PermissionDeniedError) and "may not manage users" in error.message
    # … but may change their own password
    code, out, error = cli(data_dir, "user", "passwd", "bob", "--password-stdin",
                           stdin="bob's new password\n", user="bob")
    assert code == 0 and error is None, out
    assert _users(data_dir) == [("ann", "admin", False), ("bob", "author", False)]


def test_role_disable_enable_remove_and_the_last_admin(data_dir: Path) -> None:
    _admin_and_author(data_dir)
    assert cli(data_dir, "user", "role", "bob", "operator", user="ann")[0] == 0
    assert cli(data_dir, "user", "disable", "bob", user="ann")[0] == 0
    assert _users(data_dir)[1] == ("bob", "operator", True)
    assert cli(data_dir, "user", "enable", "bob", user="ann")[0] == 0
    _, _, error = cli(data_dir, "user", "remove", "ann", user="ann")
    assert isinstance(error, ValidationError) and "last admin" in error.message
    assert cli(data_dir, "user", "remove", "bob", user="ann")[0] == 0
    assert _users(data_dir) == [("ann", "admin", False)]


def test_cli_writes_obey_the_role_and_record_the_user(data_dir: Path, tmp_path: Path) -> None:
    _admin_and_author(data_dir)
    assert cli(data_dir, "user", "add", "vic", "--role", "viewer", "--password-stdin",
               stdin=PW + "\n", user="ann")[0] == 0
    doc = tmp_path / "c.yaml"
    assert cli(data_dir, "constitution", "export", "Studio default", "--out", str(doc))[0] == 0
    code, _, error = cli(data_dir, "constitution", "import", str(doc), user="vic")
    assert isinstance(error, PermissionDeniedError)
    assert "edit constitutions" in error.message
    code, out, error = cli(data_dir, "constitution", "import", str(doc), user="bob")
    assert code == 0 and error is None, out
    code, out, _ = cli(data_dir, "constitution", "list")
    assert "Studio default (2)" in out and "bob" in out


def test_main_prints_a_refusal_as_one_line(data_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    _admin_and_author(data_dir)
    monkeypatch.setenv("CSTUDIO_USER", "bob")
    monkeypatch.setattr("sys.argv", ["cstudio", "user", "remove", "ann", "--data-dir",
                                     str(data_dir)])
    with pytest.raises(SystemExit) as exit_info:
        main()
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "may not manage users" in err
    assert "Traceback" not in err


def test_serve_binds_elsewhere_only_with_sign_in(data_dir: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []

    def fake_launch(demo: Any, settings: Settings, **kwargs: Any) -> None:
        from studio.app import sign_in

        calls.append({"host": settings.host, "auth": sign_in(kwargs["services"])})

    monkeypatch.setattr("studio.app.launch", fake_launch)
    monkeypatch.setattr("studio.app.build_app", lambda settings, services: None)
    monkeypatch.setattr("backend.services.engines.EngineManager.health", lambda self: None)
    _admin_and_author(data_dir)
    code, out, error = cli(data_dir, "serve", "--host", "0.0.0.0")
    assert code == 0 and error is None, out
    assert "sign-in required" in out
    [call] = calls
    check = call["auth"]
    assert call["host"] == "0.0.0.0" and check is not None

    def auth(name: str, password: str) -> bool:  # Gradio awaits the async check
        from tests.asyncio_helpers import run_coroutine

        return bool(run_coroutine(check(name, password)))

    assert auth("ann", PW) and auth("ANN", PW)
    assert not auth("ann", PW + "!") and not auth("nobody", PW)


def test_launch_refuses_a_public_bind_without_users(tmp_path: Path) -> None:
    from studio.app import launch

    settings = Settings(data_dir=tmp_path / "d", host="0.0.0.0")
    services = build_services(settings)
    try:
        with pytest.raises(StudioError, match=r"Refusing to bind to 0\.0\.0\.0 without sign-in"):
            launch(None, settings, services=services)  # type: ignore[arg-type]
    finally:
        services.close()
