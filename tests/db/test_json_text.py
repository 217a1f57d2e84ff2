"""JSON columns' text (db.engine.json_text): orjson's where it reads back the same values,
json.dumps's otherwise; a stored value always reads back as it was given."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum

import pytest
from hypothesis import given
from hypothesis import strategies as st

from db.engine import json_text

VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats()
    | st.text(st.characters(exclude_categories=("Cs",))),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12)


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


@given(VALUES)
def test_every_value_reads_back_as_json_dumps_writes_it(value: object) -> None:
    assert _same(json.loads(json_text(value)), json.loads(json.dumps(value)))


class Level(IntEnum):
    HIGH = 2


@dataclass
class Point:
    x: int


@pytest.mark.parametrize("value", [
    {"p": float("nan")}, [float("inf")], {1: "int key"}, 2**70, "lone \ud800"])
def test_what_orjson_writes_otherwise_is_written_by_json_dumps(value: object) -> None:
    assert json_text(value) == json.dumps(value)


def test_an_int_enum_reads_back_as_its_number() -> None:
    assert json.loads(json_text({"k": Level.HIGH})) == {"k": 2}


@pytest.mark.parametrize("value", [{"at": datetime.now(UTC)}, Point(1)])
def test_what_json_dumps_refuses_is_still_refused(value: object) -> None:
    with pytest.raises(TypeError):
        json_text(value)
