"""What the services that judge pairs share (agreement runs, golden cases): the store, the
constitution versions, the active engine and the critique log their verdicts are written to;
and filling a service's answer dataclass from a database row."""

from __future__ import annotations

from dataclasses import fields
from typing import TYPE_CHECKING, Any, TypeVar

from backend.services.constitutions import ConstitutionService
from backend.services.critique_log import CritiqueLogService
from backend.services.engines import EngineManager
from db.engine import Database

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

    Info = TypeVar("Info", bound=DataclassInstance)
else:
    Info = TypeVar("Info")


class JudgingService:
    """The base of a service that judges pairs with the active engine under a constitution
    version, writing every model call to the critique log."""

    def __init__(self, db: Database, constitutions: ConstitutionService, engines: EngineManager,
                 critique_log: CritiqueLogService) -> None:
        self._db = db
        self._constitutions = constitutions
        self._engines = engines
        self._log = critique_log


def info_of(cls: type[Info], row: Any) -> Info:
    """``cls`` (a dataclass) filled from the row's attributes of the same names; a stored row
    always has its id."""
    values = {f.name: getattr(row, f.name) for f in fields(cls)}
    assert values.get("id", 0) is not None, f"{type(row).__name__} has no id yet"
    return cls(**values)
