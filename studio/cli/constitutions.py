"""``cstudio constitution list|show|import|export|diff``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from backend.errors import StudioError
from backend.services.constitution_io import ExportFormat
from studio.cli.common import DataDir, DbUrl, NameOrId, VersionOpt, cli_actor, open_services, out

constitution_app = typer.Typer(help="List, show, import, export and diff constitutions.",
                               no_args_is_help=True)


@constitution_app.command("list")
def constitution_list(data_dir: DataDir = None, database_url: DbUrl = None) -> None:
    """List constitutions with their head version."""
    services = open_services(data_dir, database_url)
    table = Table("id", "name", "head", "content hash", "saved by", "saved at")
    for c in services.constitutions.list_all():
        table.add_row(str(c.id), c.name, c.head.label, c.head.content_hash[:12], c.head.author,
                      c.head.created_at.strftime("%Y-%m-%d %H:%M"))
    out.print(table)


@constitution_app.command("show")
def constitution_show(
    name: NameOrId,
    version: VersionOpt = None,
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Print one version as YAML."""
    services = open_services(data_dir, database_url)
    summary = services.constitutions.find(name)
    number = version or summary.head.number
    detail = services.constitutions.version_by_number(summary.id, number)
    exported = services.constitution_io.export(detail.info.id, "yaml")
    sys.stdout.write(exported.data.decode("utf-8"))


@constitution_app.command("import")
def constitution_import(
    paths: Annotated[list[Path], typer.Argument(help="A .yaml/.json file, the paper's JSON "
                                                "files, or a folder holding them.")],
    name: Annotated[str | None, typer.Option(help="Name for the new constitution.")] = None,
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Import a constitution file (or the paper's files) as a new constitution."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.suffix.lower() == ".json"
                                and p.name in _paper_names()))
        else:
            files.append(path)
    if not files:
        raise StudioError("No importable files found; give a .yaml/.json file or the paper's "
                          "JSON files.")
    services = open_services(data_dir, database_url)
    limit = services.settings.max_import_bytes
    loaded = []
    for f in files:
        if not f.is_file():
            raise StudioError(f"{f} does not exist or is not a file.")
        if f.stat().st_size > limit:
            raise StudioError(f"{f} is {f.stat().st_size:,} bytes; the import limit is "
                              f"{limit:,} bytes (CSTUDIO_MAX_IMPORT_BYTES).")
        loaded.append((f.name, f.read_bytes()))
    detail = services.constitution_io.import_files(loaded, actor=cli_actor(services),
                                                   name=name)
    out.print(f"Imported {detail.constitution.name!r}: {len(detail.content.principles)} "
              f"principles, {len(detail.content.few_shots)} few-shot examples, "
              f"content hash {detail.info.content_hash}")


def _paper_names() -> set[str]:
    from backend.cai import formats

    return {formats.PAPER_CRITIQUES, formats.PAPER_CHOICES, *formats.PAPER_FEW_SHOT_FILES}


@constitution_app.command("export")
def constitution_export(
    name: NameOrId,
    out_path: Annotated[Path, typer.Option("--out", help="File to write (a folder for "
                                           "--format paper).")],
    fmt: Annotated[str, typer.Option("--format", help="yaml, json or paper.")] = "yaml",
    version: VersionOpt = None,
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Export a version in the studio's format or as the paper's files."""
    if fmt not in ("yaml", "json", "paper"):
        raise StudioError(f"Unknown format {fmt!r}; use yaml, json or paper.")
    services = open_services(data_dir, database_url)
    summary = services.constitutions.find(name)
    detail = services.constitutions.version_by_number(summary.id, version or summary.head.number)
    if fmt == "paper":
        out_path.mkdir(parents=True, exist_ok=True)
        for filename, body in services.constitution_io.paper_files(detail.info.id).items():
            (out_path / filename).write_text(body, encoding="utf-8")
        out.print(f"Wrote the paper's files for {summary.name} v{detail.info.number} to "
                  f"{out_path}/")
        return
    fmt_typed: ExportFormat = "yaml" if fmt == "yaml" else "json"
    exported = services.constitution_io.export(detail.info.id, fmt_typed)
    out_path.write_bytes(exported.data)
    out.print(f"Wrote {summary.name} v{detail.info.number} to {out_path}")


@constitution_app.command("diff")
def constitution_diff(
    name: NameOrId,
    old: Annotated[int, typer.Argument(help="Old version number.")],
    new: Annotated[int, typer.Argument(help="New version number.")],
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Show what changed between two versions, principle by principle."""
    services = open_services(data_dir, database_url)
    summary = services.constitutions.find(name)
    a = services.constitutions.version_by_number(summary.id, old)
    b = services.constitutions.version_by_number(summary.id, new)
    diff = services.constitutions.diff(a.info.id, b.info.id)
    if diff.is_empty:
        out.print(f"v{old} and v{new} have the same content.")
        return
    for change in diff.changes:
        where = change.new_position or change.old_position
        out.print(f"[bold]{change.kind.upper()}[/bold] #{where} {escape(change.key)}: "
                  f"{escape(change.title)}", markup=True, highlight=False)
        for f in change.fields:
            out.print(f.unified() or f"- {f.old}\n+ {f.new}", markup=False, highlight=False)
    if diff.few_shots_changed:
        out.print("Few-shot examples changed.")
