"""``cstudio backup PATH`` and ``cstudio restore PATH [--force]`` (backend/services/backup.py).

Both act as ``cli_actor`` (studio/cli/common.py) and need the admin role once users exist. Neither
seeds the default constitution, so restoring into a fresh data directory finds it empty.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from backend.services.backup import BackupService
from backend.services.container import build_services
from studio.cli.common import DataDir, DbUrl, cli_actor, make_settings, out


def backup(
    path: Annotated[Path, typer.Argument(help="File to write (replaced if it exists).")],
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Back up the whole store: SQLite's online backup (safe while the studio runs) or
    pg_dump's custom format for PostgreSQL."""
    services = build_services(make_settings(data_dir, database_url))
    try:
        service = BackupService(services.db, services.settings.data_dir)
        info = service.backup(path, actor=cli_actor(services))
    finally:
        services.close()
    out.print(f"Backed up the {info.kind} store (schema {info.schema_revision}) to {info.path} "
              f"({info.size_bytes:,} bytes).", markup=False, highlight=False)


def restore(
    path: Annotated[Path, typer.Argument(help="A file written by `cstudio backup`.")],
    force: Annotated[bool, typer.Option(
        "--force", help="Replace a store that already holds data (it is saved to "
        "<data dir>/backups/ first).")] = False,
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Restore a backup into the store (stop the studio and workers first), migrate it to the
    newest schema and verify its audit chain."""
    services = build_services(make_settings(data_dir, database_url))  # migrated, not seeded
    try:
        service = BackupService(services.db, services.settings.data_dir)
        info = service.restore(path, actor=cli_actor(services), force=force)
    finally:
        services.close()
    if info.saved_previous is not None:
        out.print(f"The store it replaced was saved to {info.saved_previous}.", markup=False,
                  highlight=False)
    out.print(f"Restored {info.path} into the {info.kind} store (schema "
              f"{info.schema_revision}). Verified: {info.events_checked} audit events, "
              f"{info.versions_checked} versions, {info.records_checked} critique-log records; "
              f"chain head {info.audit_head}", markup=False, highlight=False)
