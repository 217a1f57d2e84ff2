"""Constitution CI from the command line: ``cstudio alias set|move|remove|list``, ``cstudio golden
check`` and ``cstudio eval compare --fail-on-regression`` (backend/services/constitution_ci.py).
The checks exit 1 when they fail, so a pipeline stops."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from backend.errors import NotFoundError
from studio.cli.common import DataDir, DbUrl, NameOrId, cli_actor, open_services, out

alias_app: typer.Typer = typer.Typer(help="Named aliases of constitution versions "
                                     "(production, staging, ...).", no_args_is_help=True)
golden_app: typer.Typer = typer.Typer(help="Golden-case checks for pipelines.",
                                      no_args_is_help=True)


@alias_app.command("set")
def alias_set(
    constitution: NameOrId,
    name: Annotated[str, typer.Argument(help="Alias, e.g. production.")],
    version: Annotated[int, typer.Argument(help="Version number.")],
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Point an alias at a version (moving it if it exists)."""
    _set_alias(constitution, name, version, data_dir, database_url)


def _set_alias(constitution: str, name: str, version: int | None, data_dir: Path | None,
               database_url: str | None) -> None:
    """Point ``name`` at version number ``version``, or remove it (``None``)."""
    services = open_services(data_dir, database_url)
    summary = services.constitutions.find(constitution)
    services.ci.set_alias(summary.id, name, version, actor=cli_actor(services))
    where = "removed" if version is None else f"-> v{version}"
    out.print(f"{summary.name}: {name} {where}", markup=False, highlight=False)


@alias_app.command("move")
def alias_move(
    constitution: NameOrId,
    name: Annotated[str, typer.Argument(help="An existing alias.")],
    version: Annotated[int, typer.Argument(help="Version number.")],
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Move an existing alias to another version (unlike `set`, a mistyped alias is an error,
    not a new alias)."""
    services = open_services(data_dir, database_url)
    summary = services.constitutions.find(constitution)
    names = [a.name for a in services.ci.aliases(summary.id)]
    if name not in names:
        raise NotFoundError(f"{summary.name} has no alias {name!r} (aliases: "
                            f"{', '.join(names) or 'none'}); create it with `cstudio alias set`.")
    _set_alias(constitution, name, version, data_dir, database_url)


@alias_app.command("remove")
def alias_remove(
    constitution: NameOrId,
    name: Annotated[str, typer.Argument(help="Alias.")],
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Remove an alias (its history stays)."""
    _set_alias(constitution, name, None, data_dir, database_url)


@alias_app.command("list")
def alias_list(
    constitution: NameOrId,
    history: Annotated[bool, typer.Option(
        "--history", help="Every setting, move and removal, newest first.")] = False,
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Aliases and the versions they point at (or, with --history, how they moved)."""
    services = open_services(data_dir, database_url)
    summary = services.constitutions.find(constitution)
    if history:
        moves = Table("when", "alias", "version", "set by")
        for m in services.ci.alias_history(summary.id):
            moves.add_row(f"{m.at:%Y-%m-%d %H:%M:%S}", escape(m.name),
                          "removed" if m.version_number is None else f"v{m.version_number}",
                          escape(m.set_by))
        out.print(moves)
        return
    table = Table("alias", "version", "set by")
    for a in services.ci.aliases(summary.id):
        table.add_row(escape(a.name), f"v{a.version_number}", escape(a.set_by))
    out.print(table)


@golden_app.command("check")
def golden_check(
    constitution: NameOrId,
    version: Annotated[str | None, typer.Option(
        help="Version number or alias (default: head).")] = None,
    k: Annotated[int, typer.Option(help="Principles per verdict (64: all of them, the same "
                                   "for every case).")] = 1,
    cot: bool = False,
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Judge every golden case under a version; exit 1 if any verdict is not the expected."""
    from backend.cai.labeling import LabelConfig

    services = open_services(data_dir, database_url)
    summary = services.constitutions.find(constitution)
    detail = services.ci.resolve(summary.id, version)
    result = services.ci.golden_check(summary.id, detail, actor=cli_actor(services),
                                      config=LabelConfig(k_principles=k, cot=cot))
    for f in result.failures:
        out.print(f"FAIL case {f.case_id}: expected {f.expected}, got {f.got} "
                  f"(p(A) = {f.p_a:.3f})", markup=False, highlight=False)
    out.print(f"{summary.name} v{result.version_number}: {result.cases - len(result.failures)}"
              f"/{result.cases} golden cases pass", markup=False, highlight=False)
    if not result.passed:
        raise typer.Exit(1)


def eval_compare(
    first: Annotated[int, typer.Argument(help="The earlier (reference) run id.")],
    second: Annotated[int, typer.Argument(help="The new run id.")],
    metric: str = "accuracy",
    fail_on_regression: Annotated[bool, typer.Option(
        "--fail-on-regression", help="Exit 1 when the metric got worse beyond its paired "
        "95 % interval.")] = False,
    n_boot: int = 1000,
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """The change of an agreement metric between two runs over the same pairs (registered as
    `cstudio eval compare` by the CLI root)."""
    services = open_services(data_dir, database_url)
    check = services.ci.regression(first, second, metric=metric, n_boot=n_boot)
    d = check.delta
    verdict = "REGRESSION" if check.regressed else "no regression"
    out.print(f"{metric}: {d.value:+.4f} [{d.low:+.4f}, {d.high:+.4f}] (run {second} − run "
              f"{first}): {verdict}", markup=False, highlight=False)
    if fail_on_regression and check.regressed:
        raise typer.Exit(1)
