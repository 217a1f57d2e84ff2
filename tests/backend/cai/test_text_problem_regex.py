"""The regex text check gives exactly the per-character check's answer for every character."""

from __future__ import annotations

import pytest

from backend.cai.constitution import _chars_problem, text_problem

_EXTRA = [0x10FFFE, 0x10FFFF, 0x1FFFE, 0x1FFFF, 0x1F600, 0xE0001]


@pytest.mark.parametrize("multiline", [True, False])
def test_every_bmp_character_and_plane_noncharacters_agree(multiline: bool) -> None:
    for code in [*range(0x10000), *_EXTRA]:
        text = f"ok {chr(code)} ok"
        assert text_problem(text, multiline=multiline) == _chars_problem(
            text, multiline=multiline), hex(code)


def test_first_problem_is_reported() -> None:
    text = "line\u202eone\x07"
    assert text_problem(text, multiline=True) == _chars_problem(text, multiline=True)
    assert "U+202E" in (text_problem(text, multiline=True) or "")
    assert text_problem("a\tb\nc", multiline=True) is None
    assert text_problem("a\nb", multiline=False) == "contains a line break; use a single line"
