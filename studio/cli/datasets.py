"""``cstudio dataset import|import-hub|list``: human-labelled pair datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from backend.errors import StudioError
from backend.services.datasets import import_report
from studio.cli.common import DataDir, DbUrl, HubDataDir, cli_actor, open_services, out, print_table
from studio.cli.files import read_import

dataset_app = typer.Typer(help="Import and list human-labelled pair datasets.",
                          no_args_is_help=True)


@dataset_app.command("import")
def dataset_import(
    path: Annotated[Path, typer.Argument(help="The pairs file.")],
    fmt: Annotated[str, typer.Option("--format", help="hh_rlhf, hhh_eval, harmful_vs_ethical, "
                                     "jsonl or csv.")] = "hh_rlhf",
    name: Annotated[str | None, typer.Option(help="Dataset name (default: the file name).")
                    ] = None,
    column: Annotated[list[str] | None, typer.Option(
        "--column", help="For jsonl/csv: FIELD=COLUMN for prompt, response_a, response_b, "
        "label (repeat the option).")] = None,
    label_values: Annotated[str | None, typer.Option(
        "--label-values", help="For jsonl/csv: what the label column's values mean, e.g. "
        "'1=A, 2=B, 0=tie' (needed for 0/1 labels).")] = None,
    swap_seed: Annotated[int, typer.Option(help="Seed for which side is shown as A.")] = 0,
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Import a file of human-labelled preference pairs."""
    mapping: dict[str, str] | None = None
    if column:
        mapping = {}
        for item in column:
            field, sep, col = item.partition("=")
            if not sep or not field or not col:
                raise StudioError(f"--column {item!r}: write FIELD=COLUMN, e.g. prompt=question")
            mapping[field.strip()] = col.strip()
    if label_values:
        if mapping is None:
            raise StudioError("--label-values goes with --column (the jsonl/csv formats).")
        mapping["label_values"] = label_values
    if not path.is_file():
        raise StudioError(f"{path} does not exist or is not a file.")
    services = open_services(data_dir, database_url)
    info = services.datasets.import_file(path.name, read_import(path, services), fmt,
                                         actor=cli_actor(services), name=name,
                                         mapping=mapping, swap_seed=swap_seed)
    out.print(f"Imported dataset {info.id} {info.name!r}: {import_report(info)} "
              f"sha256 {info.source_sha256}", markup=False, highlight=False)


@dataset_app.command("import-hub")
def dataset_import_hub(
    repo_id: Annotated[str, typer.Argument(help="Hub dataset, e.g. Anthropic/hh-rlhf.")],
    hub_data_dir: HubDataDir = None, split: str = "test",
    limit: Annotated[int | None, typer.Option(help="Import at most N pairs.")] = None,
    name: str | None = None, data_dir: DataDir = None, database_url: DbUrl = None,
) -> None:
    """Import HH-RLHF-style pairs from the Hugging Face Hub (needs network and the train
    extra)."""
    services = open_services(data_dir, database_url)
    info = services.datasets.import_hub(repo_id, actor=cli_actor(services), data_dir=hub_data_dir,
                                        split=split, name=name, limit=limit)
    out.print(f"Imported dataset {info.id} {info.name!r}: {import_report(info)}",
              markup=False, highlight=False)


@dataset_app.command("list")
def dataset_list(data_dir: DataDir = None, database_url: DbUrl = None) -> None:
    """List datasets."""
    services = open_services(data_dir, database_url)
    print_table(("id", "name", "format", "items", "duplicates", "sha256"),
                ((str(d.id), escape(d.name), d.source_format, str(d.item_count),
                  str(d.skipped_duplicates), d.source_sha256[:12])
                 for d in services.datasets.list_all()))
