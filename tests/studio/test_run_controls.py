"""The run controls shared by the Agreement and Compare tabs: one progress line that says why
a run stopped, and one cancel/resume path that shows a refusal instead of raising."""

from __future__ import annotations

from backend.errors import ValidationError
from studio.run_controls import progress_line, run_action, safe_progress

TRACE = "Traceback (most recent call last):\n  File x\nRuntimeError: CUDA out of memory <b>"


def test_progress_line_says_why_it_stopped() -> None:
    line = progress_line("Comparison #3", "failed", 0.5, 2, 4, TRACE)
    assert line.startswith("Comparison #3: **failed** `") and line.endswith(
        "**Why it stopped:** RuntimeError\\: CUDA out of memory \\<b\\>")
    assert "2/4" in line and "Why" not in progress_line("Run #1", "done", 1.0, 4, 4, "")


def test_run_action_picks_refuses_and_acts() -> None:
    done: list[int] = []

    def refuse(_: int) -> None:
        raise ValidationError("Only editors may <cancel>.")

    rows = lambda: [["row"]]  # noqa: E731
    progress = lambda i: f"progress {i}"  # noqa: E731
    assert run_action(done.append, None, rows, progress, noun="comparison",
                      refused="cancelled") == ([["row"]], "**Pick a comparison to cancel.**")
    assert run_action(done.append, None, rows, progress, noun="run",
                      refused="resumed")[1] == "**Pick a run to resume.**"
    assert run_action(refuse, 2, rows, progress, noun="run", refused="resumed")[1] == \
        "**Not resumed.** Only editors may \\<cancel\\>\\."
    assert run_action(done.append, 7, rows, progress, noun="run", refused="cancelled") == (
        [["row"]], "progress 7") and done == [7]


def test_safe_progress() -> None:
    def missing(_: int) -> str:
        raise ValidationError("No comparison with id 9.")

    assert safe_progress(missing, None) == ""
    assert safe_progress(missing, 9) == "No comparison with id 9\\."
