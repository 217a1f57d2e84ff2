from __future__ import annotations

import dataclasses

import pytest

from backend.cai.constitution import (
    MAX_TEXT_CHARS,
    ConstitutionContent,
    Principle,
    clean_principle,
    text_problem,
    validate_content,
)
from backend.cai.default_constitution import default_constitution
from backend.errors import ValidationError


def principle(key: str = "p1", title: str = "Be kind", **kw: object) -> Principle:
    fields: dict[str, object] = {"critique_request": f"Critique {key}",
                                 "revision_request": f"Revise {key}",
                                 "choice_instruction": f"Choose {key}?"}
    fields.update(kw)
    return Principle(key=key, title=title, **fields)  # type: ignore[arg-type]


def test_default_constitution_is_valid_and_has_sixteen_principles() -> None:
    content = default_constitution()
    validate_content(content)
    assert len(content.principles) == 16
    assert content.content_hash() == default_constitution().content_hash()


def test_hash_depends_on_order_text_and_flags() -> None:
    a, b = principle("a", "A"), principle("b", "B")
    base = ConstitutionContent((a, b))
    assert base.content_hash() != ConstitutionContent((b, a)).content_hash()
    edited = dataclasses.replace(a, critique_request="Critique a!")
    assert base.content_hash() != ConstitutionContent((edited, b)).content_hash()
    disabled = dataclasses.replace(a, enabled=False)
    assert base.content_hash() != ConstitutionContent((disabled, b)).content_hash()


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (ConstitutionContent(()), "at least one principle"),
        (ConstitutionContent((principle(title="  "),)), "title: is empty"),
        (ConstitutionContent((principle(critique_request="x" * (MAX_TEXT_CHARS + 1)),)),
         "limit is 4000"),
        (ConstitutionContent((principle("a", "Same"), principle("b", "same"))),
         "same title as principle 1"),
        (ConstitutionContent((principle("a", "A"), principle("a", "B"))),
         "same key as principle 1"),
        (ConstitutionContent((principle("a", "A"),
                              principle("b", "B", critique_request="Critique a",
                                        revision_request="Revise a",
                                        choice_instruction="Choose a?"))),
         "same texts as principle 1"),
        (ConstitutionContent((principle(title="bell\x07"),)), "U+0007"),
        (ConstitutionContent((principle(revision_request="evil \u202e text"),)), "bidirectional"),
        (ConstitutionContent((principle(title="two\nlines"),)), "line break"),
        (ConstitutionContent((principle(key="has space"),)), "key"),
        (ConstitutionContent((principle(enabled=False),)), "all are disabled"),
        (ConstitutionContent((principle(tags=("<b>",)),)), "tag"),
    ],
)
def test_validation_names_each_problem(content: ConstitutionContent, fragment: str) -> None:
    with pytest.raises(ValidationError) as info:
        validate_content(content)
    assert any(fragment in p for p in info.value.problems), info.value.problems


def test_text_problem_allows_ordinary_unicode() -> None:
    assert text_problem("Ça va? 你好 — 🙂\n\tindented", multiline=True) is None
    assert text_problem("\ufffe", multiline=True) is not None


def test_clean_principle_normalises_newlines_and_whitespace() -> None:
    cleaned = clean_principle(principle(title="  Be   kind ", critique_request="a\r\nb\rc",
                                        tags=(" x ", "x", "", "y")))
    assert cleaned.title == "Be kind"
    assert cleaned.critique_request == "a\nb\nc"
    assert cleaned.tags == ("x", "y")
