"""``cstudio audit verify|export``: the audit trail and evidence exports."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from backend.services.container import build_services
from studio.cli.common import DataDir, DbUrl, cli_actor, err, make_settings, open_services, out

audit_app = typer.Typer(help="Verify and export the audit trail.", no_args_is_help=True)


@audit_app.command("verify")
def audit_verify(
    export: Annotated[Path | None, typer.Option(
        "--export", help="Also verify an evidence export folder against its manifest and the "
        "database.")] = None,
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Verify the audit hash chain, every sealed record, version content hashes and
    critique-log record hashes, and the chain heads anchored outside the database; name the
    first broken link. Read-only: it never seals anything."""
    services = build_services(make_settings(data_dir, database_url))
    report = services.audit.verify()
    failed = not report.ok
    if report.ok:
        out.print(f"OK: {report.events_checked} audit events, {report.rows_checked} sealed "
                  f"rows, {report.versions_checked} versions and {report.records_checked} "
                  f"critique-log records verified against {report.anchors_checked} anchored "
                  f"heads; chain head {report.head_hash}; seal head {report.seal_head}",
                  markup=False, highlight=False)
        if report.unsealed:
            out.print(f"Not sealed (written before rows were sealed as they are written): "
                      f"{report.unsealed}", markup=False, highlight=False)
    else:
        err.print(f"FIRST BROKEN LINK: {report.first_broken}", markup=False, highlight=False)
        for problem in report.problems[1:]:
            err.print(f"BROKEN: {problem}", markup=False, highlight=False)
    if export is not None:
        check = services.evidence.verify(export)
        if check.ok:
            out.print(f"OK: export {export}: files match the manifest and all "
                      f"{check.records_checked} records match the database", markup=False,
                      highlight=False)
        else:
            failed = True
            for problem in check.problems:
                err.print(f"EXPORT BROKEN: {problem}", markup=False, highlight=False)
    if failed:
        raise typer.Exit(1)


@audit_app.command("export")
def audit_export(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder to write (must be new or "
                                          "empty); a .zip of it is written beside it.")],
    query: Annotated[str, typer.Option(help="Full-text search (words, \"phrases\", "
                                       "prefix*).")] = "",
    version_id: Annotated[int | None, typer.Option(help="Constitution version id.")] = None,
    principle: Annotated[str | None, typer.Option(help="Principle key.")] = None,
    kind: Annotated[str | None, typer.Option(help="response, critique, revision, cot or "
                                             "verdict.")] = None,
    model: Annotated[str | None, typer.Option(help="Model name.")] = None,
    evaluation: Annotated[int | None, typer.Option(help="Evaluation (run) id.")] = None,
    flagged: Annotated[bool, typer.Option(help="Only flagged records.")] = False,
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Export a filtered selection of the critique log as JSONL + CSV with a manifest."""
    from db.audit_search_repo import SearchFilters

    services = open_services(data_dir, database_url)
    filters = SearchFilters(query=query, version_id=version_id, principle_key=principle,
                            kind=kind, model=model, evaluation_id=evaluation, flagged=flagged)
    result = services.evidence.export(filters, actor=cli_actor(services), directory=out_dir)
    out.print(f"Exported {result.count} records to {result.directory} ({result.archive.name}); "
              f"manifest sha256s: " + ", ".join(
                  f"{k} {v['sha256'][:12]}" for k, v in result.manifest["files"].items()),
              markup=False, highlight=False)
