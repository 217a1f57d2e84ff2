"""``cstudio prompts import|import-hub|list``: prompt sets as stored objects (issue 13 point 6).

A file is checked (format, size, gzip unpacking bounded) and stored; jobs then refer to it by
id (``prompt_set: 3``). The project's own set is seeded at start as ``built-in`` (``default``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from backend.errors import StudioError
from studio.cli.common import DataDir, DbUrl, HubDataDir, cli_actor, open_services, out, print_table
from studio.cli.files import read_import

prompts_app = typer.Typer(help="Prompt sets for the Playground and the training stages.",
                          no_args_is_help=True)


@prompts_app.command("import")
def prompts_import(
    path: Annotated[Path, typer.Argument(help="JSON lines ({\"prompt\", \"tags\"}), HH-RLHF "
                                         "dialogues ({\"chosen\"}) or one prompt per line; "
                                         "may be .gz.")],
    fmt: Annotated[str, typer.Option("--format", help="auto, prompts_jsonl, hh_rlhf or text.")
                   ] = "auto",
    name: Annotated[str | None, typer.Option(help="Name (default: the file name).")] = None,
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Import a prompt set from a file."""
    if not path.is_file():
        raise StudioError(f"{path} does not exist or is not a file.")
    services = open_services(data_dir, database_url)
    raw = read_import(path, services)
    info = services.prompt_sets.import_bytes(path.name, raw, actor=cli_actor(services),
                                             fmt=fmt, name=name)
    out.print(f"Imported prompt set {info.id} {info.name!r}: {info.prompt_count} prompts "
              f"({info.source_format}); use prompt_set: {info.id} in a job.", markup=False,
              highlight=False)


@prompts_app.command("import-hub")
def prompts_import_hub(
    repo_id: Annotated[str, typer.Argument(help="Hub dataset.")] = "Anthropic/hh-rlhf",
    hub_data_dir: HubDataDir = "harmless-base",
    split: str = "test",
    limit: Annotated[int, typer.Option(help="At most N prompts.")] = 2000,
    name: str | None = None,
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Import the first human turns of HH-RLHF from the Hugging Face Hub (needs network and
    the train extra)."""
    services = open_services(data_dir, database_url)
    info = services.prompt_sets.import_hub(actor=cli_actor(services), repo_id=repo_id,
                                           data_dir=hub_data_dir, split=split, limit=limit,
                                           name=name)
    done = f"Imported prompt set {info.id} {info.name!r}: {info.prompt_count} prompts"
    out.print(done, markup=False, highlight=False)


@prompts_app.command("list")
def prompts_list(data_dir: DataDir = None, database_url: DbUrl = None) -> None:
    """List prompt sets (the built-in one is `default`)."""
    services = open_services(data_dir, database_url)
    print_table(("id", "name", "format", "prompts", "by", "sha256"),
                ((str(p.id) + (" (default)" if p.builtin else ""), escape(p.name),
                  p.source_format, str(p.prompt_count), escape(p.created_by),
                  p.source_sha256[:12]) for p in services.prompt_sets.list_all()))
