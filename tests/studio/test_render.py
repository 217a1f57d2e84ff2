from __future__ import annotations

import re

from backend.cai.constitution import ConstitutionContent
from backend.cai.diff import diff_contents
from studio.render import diff_md, escape_md, fenced, prose, word_diff
from tests.backend.cai.test_constitution import principle

PAYLOADS = ['<img src=x onerror="alert(1)">', "<script>alert(1)</script>",
            "[click](javascript:alert(1))", "**bold** _it_ `code`"]


def test_escape_md_neutralises_markup() -> None:
    for payload in PAYLOADS:
        escaped = escape_md(payload)
        for ch in "<>[]()*_`":
            assert ch not in escaped.replace("\\" + ch, ""), (payload, escaped)


def test_fenced_blocks_cannot_be_closed_from_inside() -> None:
    body = "```\n<script>x</script>\n```"
    block = fenced(body)
    fence = block.splitlines()[0]
    assert fence.startswith("````") and block.endswith(fence)


def _no_raw_markup(text: str) -> None:
    assert not re.search(r"(?<!\\)[<>\[\]`]", text), text


def test_diff_md_escapes_untrusted_text_and_highlights_words() -> None:
    old = ConstitutionContent((principle("a", "Plain",
                                         critique_request="Find harmful content here."),))
    new = ConstitutionContent((principle("a", PAYLOADS[0],
                                         critique_request="Find " + PAYLOADS[1] + " here."),))
    text = diff_md(diff_contents(old, new), "v1", "v2")
    assert "```" not in text  # no code blocks: long fields wrap like prose
    _no_raw_markup(text)
    assert "\\<img" in text
    # word level: the unchanged words stay plain, removed ones struck, added ones bold
    assert "Find ~~harmful content~~ **\\<script\\>alert\\(1\\)\\</script\\>** here\\." in text


def test_word_diff_marks_added_and_removed_words() -> None:
    assert (word_diff("the quick fox", "the slow fox jumps")
            == "the ~~quick~~ **slow** fox **jumps**")
    assert word_diff("", "") == "*(empty)*"


def test_prose_escapes_and_keeps_line_breaks() -> None:
    text = prose("# not a heading\nline two <b>x</b>\n\n    not code\n1. not a list")
    _no_raw_markup(text)
    assert "```" not in text
    paragraphs = text.split("\n\n")
    assert len(paragraphs) == 2
    assert paragraphs[0].startswith("\\# not a heading  \nline two")
    assert paragraphs[1].startswith("not code  \n1\\. not a list")
