"""How the Agreement and Compare tabs mark verdicts of the parsed judge (hard labels)."""

from __future__ import annotations

from backend.services.comparison_report import judge_note

JUDGE_CHOICES = [("scored (logprobs, soft labels)", "scored"),
                 ("parsed answer (no logprobs, hard labels)", "parsed")]


def judge_line(judge: str, unparsed: int, verdicts: int) -> str:
    """A paragraph under a report; nothing for the usual soft labels."""
    if judge != "parsed":
        return ""
    return f"\n\n**Judge: parsed answers.** {judge_note(judge, unparsed, verdicts)}."


def hard_mark(hard: bool, unparsed: int) -> str:
    """A tag after a verdict's p(A) in a browser."""
    if not hard:
        return ""
    if unparsed:
        return f" · **hard label (parsed)**, **{unparsed} answer(s) unparseable → tie**"
    return " · **hard label (parsed)**"
