"""What every ``cstudio`` command shares: the consoles, the store options, Settings built once
from them, the services, who a command acts as, and how a listing is printed.

The command-group modules of ``studio/cli/`` import this module, never the package root
(``studio/cli/__init__.py``, which composes them into one Typer app).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError as SettingsError
from rich.console import Console
from rich.table import Table

from backend.access import Principal, local_admin
from backend.errors import PermissionDeniedError, StudioError
from backend.services.container import Services, start
from backend.settings import Settings

out = Console()
err = Console(stderr=True)

DataDir = Annotated[Path | None, typer.Option("--data-dir", help="Data directory "
                                              "(default: $CSTUDIO_DATA_DIR or ~/.local/share).")]
DbUrl = Annotated[str | None, typer.Option("--database-url", help="SQLAlchemy URL (default: "
                                           "$DATABASE_URL or SQLite in the data directory).")]

NameOrId = Annotated[str, typer.Argument(help="Constitution name or id.")]
VersionOpt = Annotated[int | None, typer.Option(help="Version number (default: head).")]
HubDataDir = Annotated[str | None, typer.Option("--hub-data-dir", help="Subset folder, e.g. "
                                                "harmless-base.")]


def make_settings(data_dir: Path | None = None, database_url: str | None = None,
                  **overrides: Any) -> Settings:
    values: dict[str, Any] = {k: v for k, v in overrides.items() if v is not None}
    if data_dir is not None:
        values["data_dir"] = data_dir
    if database_url is not None:
        values["database_url"] = database_url
    try:
        settings = Settings(**values)
    except SettingsError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise StudioError(f"Invalid setting: {problems}") from exc
    _private_data_dir(settings)
    return settings


def _private_data_dir(settings: Settings) -> None:
    """Data directory 0700, new files 0600; warn once if something in it is wider."""
    from backend.services.private_files import make_private, warning_for

    try:
        make_private(settings.data_dir)
    except OSError as exc:
        raise StudioError(f"Cannot create the data directory {settings.data_dir}: "
                          f"{exc.strerror}. Set CSTUDIO_DATA_DIR to a folder you own.") from exc
    warning = warning_for(settings.data_dir)
    if warning:
        err.print(warning, markup=False, highlight=False, soft_wrap=True)



def open_services(data_dir: Path | None, database_url: str | None) -> Services:
    """Settings from the store options, then the started services (migrated and seeded)."""
    return start(make_settings(data_dir, database_url))


def cli_actor(services: Services) -> Principal:
    """Who a CLI command acts as: the local user (CSTUDIO_USER, default $USER) as admin while
    no users exist; once users exist, the studio user of that name, with that user's role."""
    name = services.settings.user
    if not services.users.any_users():
        return local_admin(name)
    found = services.users.active_principal(name)
    if found is None:
        raise PermissionDeniedError(
            f"Users are configured and {name!r} is not an active one, so this command may not "
            "change anything. Run it as your studio user: CSTUDIO_USER=NAME cstudio ...")
    return found


def print_table(columns: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    """A listing: one row per item under the given column names."""
    table = Table(*columns)
    for row in rows:
        table.add_row(*row)
    out.print(table)
