from __future__ import annotations

import re

from backend.cai.constitution import ConstitutionContent
from backend.cai.diff import diff_contents
from studio.render import diff_md, escape_md, fenced
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


def test_diff_md_keeps_untrusted_text_in_code_or_escaped() -> None:
    old = ConstitutionContent((principle("a", "Plain"),))
    new = ConstitutionContent((principle("a", PAYLOADS[0],
                                         critique_request=PAYLOADS[1] + PAYLOADS[2]),))
    text = diff_md(diff_contents(old, new), "v1", "v2")
    outside_code = text.split("```diff")[0]
    assert "\\<img" in outside_code and not re.search(r"(?<!\\)<", outside_code)
    assert "+<script>alert(1)</script>[click](javascript:alert(1))" in text  # inside the fence
