"""canonical_json (the JSON every hash in the store is over) takes orjson's fast path only
where its text is byte for byte the standard encoder's; stored hashes depend on it."""

from __future__ import annotations

import json
import math
import random
import struct
from enum import IntEnum
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from db.audit_chain import canonical_json

REFERENCE = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def test_every_character_is_written_the_same() -> None:
    chars = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    for lo in range(0, len(chars), 4096):
        text = "".join(chars[lo:lo + 4096])
        assert canonical_json({text: text}) == REFERENCE.encode({text: text})


def _floats() -> list[float]:
    rng = random.Random(7)
    found = [struct.unpack("d", struct.pack("Q", rng.getrandbits(64)))[0]
             for _ in range(100_000)]
    found += [rng.random() * 10.0 ** rng.randint(-12, 20) * rng.choice((1, -1))
              for _ in range(100_000)]
    for edge in (1e-4, 1e16):  # the fast path's bounds and their neighbours
        found += [edge, math.nextafter(edge, 0), math.nextafter(edge, math.inf), -edge]
    return [*found, 0.0, -0.0, math.nan, math.inf, -math.inf, 5e-324, 1.7976931348623157e308]


def test_floats_of_every_magnitude_are_written_the_same() -> None:
    floats = _floats()
    for lo in range(0, len(floats), 1000):
        batch = floats[lo:lo + 1000]
        assert canonical_json(batch) == REFERENCE.encode(batch)
        for value in batch[:20]:
            assert canonical_json({"p": value}) == REFERENCE.encode({"p": value})


class Level(IntEnum):
    HIGH = 2


class Text(str):
    pass


@pytest.mark.parametrize("value", [
    2**64, -2**63 - 1, 2**63, {1: "int key"}, {"a": Level.HIGH}, Text("sub"), ("a", [1.5e-5]),
    {"b": {"nan": math.nan}}, "lone \ud800"])
def test_what_orjson_cannot_match_is_written_by_the_standard_encoder(value: Any) -> None:
    assert canonical_json(value) == REFERENCE.encode(value)


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats()
    | st.text(st.characters(exclude_categories=("Cs",))),
    lambda inner: st.lists(inner, max_size=5) | st.tuples(inner, inner)
    | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=20)


@settings(max_examples=400)
@given(JSONISH)
def test_any_nested_value_is_written_the_same(value: Any) -> None:
    assert canonical_json(value) == REFERENCE.encode(value)
