"""The tables' one naming rule (docs/architecture.md, issue 18 point 3): a domain's tables live
in ``db/<domain>_models.py``, table names are singular snake_case, and the Alembic environment
and the migration test load every such module."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

from sqlmodel import SQLModel

DB = Path(__file__).resolve().parents[2] / "db"
MODULES = sorted(p.stem for p in DB.glob("*_models.py"))


def test_every_table_lives_in_a_domain_models_module_and_is_named_singular_snake_case() -> None:
    for name in MODULES:
        importlib.import_module(f"db.{name}")
    assert not (DB / "models.py").exists()
    for mapper in SQLModel._sa_registry.mappers:  # type: ignore[attr-defined]
        cls = mapper.class_
        if not cls.__module__.startswith("db."):
            continue  # a test's own table
        table = cls.__tablename__
        assert re.fullmatch(r"[a-z]+(_[a-z]+)*", table), table
        plural = table.endswith("s") and not table.endswith(("as", "ss", "us", "is"))
        assert not plural, f"{table}: table names are singular"
        assert re.fullmatch(r"db\.[a-z_]+_models", cls.__module__), cls.__module__


def test_the_migration_environment_loads_every_models_module() -> None:
    env = (DB / "migrations" / "env.py").read_text(encoding="utf-8")
    missing = [m for m in MODULES if f"import db.{m}" not in env]
    assert missing == []
