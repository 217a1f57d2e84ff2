"""backend/services/judging.py: the shared base of the judging services and ``info_of``."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import pytest

from backend.services.evaluations import EvaluationService
from backend.services.golden import GoldenCaseService
from backend.services.judging import JudgingService, info_of


@dataclass(frozen=True)
class _Info:
    id: int
    name: str


def test_info_of_fills_a_dataclass_from_same_named_attributes() -> None:
    assert info_of(_Info, SimpleNamespace(id=3, name="x", other=1)) == _Info(3, "x")


def test_info_of_refuses_a_row_without_id() -> None:
    with pytest.raises(AssertionError, match="has no id yet"):
        info_of(_Info, SimpleNamespace(id=None, name="x"))


def test_the_judging_services_share_their_wiring() -> None:
    assert issubclass(EvaluationService, JudgingService)
    assert issubclass(GoldenCaseService, JudgingService)
    assert "__init__" not in GoldenCaseService.__dict__
