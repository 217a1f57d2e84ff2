"""Issue 18 point 3: the write paths take typed models (TypedDicts checked by mypy at every
call site) instead of ``**fields: Any``; the models name real columns only."""

from __future__ import annotations

from dataclasses import fields
from typing import Any, get_type_hints

from db import critique_log_repo
from db.critique_log_models import CritiqueLogRecord
from db.critique_log_repo import HASHED_FIELDS, NewCritiqueRecord
from db.evaluation_models import Evaluation
from db.evaluation_repo import NewEvaluation
from db.job_models import Job, JobChanges, NewJob


def _columns(model: Any) -> set[str]:
    return set(model.__table__.columns.keys())


def test_job_models_name_job_columns() -> None:
    columns = _columns(Job)
    assert set(get_type_hints(NewJob)) <= columns
    assert set(get_type_hints(JobChanges)) <= columns - {"id", "created_at", "updated_at"}
    assert NewJob.__required_keys__ == {"kind", "created_by"}
    assert not JobChanges.__required_keys__


def test_new_evaluation_names_evaluation_columns() -> None:
    assert set(get_type_hints(NewEvaluation)) <= _columns(Evaluation)


def test_new_critique_record_is_exactly_the_hashed_content() -> None:
    assert tuple(f.name for f in fields(NewCritiqueRecord)) == HASHED_FIELDS
    assert set(HASHED_FIELDS) <= _columns(CritiqueLogRecord)
    assert critique_log_repo.insert_record.__annotations__["new"] == "NewCritiqueRecord"
