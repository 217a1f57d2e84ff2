"""What the Agreement and Compare tabs share about background runs: the run picker with Cancel
and Resume, the progress line (with why a run stopped) and the runs table refreshed by a
timer. One place, so both tabs say the same things the same way."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gradio as gr

from backend.errors import StudioError
from studio.render import error_cause, escape_md, progress_bar


def progress_line(title: str, status: str, fraction: float, done: int, total: int,
                  error: str) -> str:
    """``Run #3: **running** `███…` 4/10``, and the one line that says why it stopped."""
    why = f"\n\n**Why it stopped:** {escape_md(error_cause(error))}" if error else ""
    return f"{title}: **{status}** `{progress_bar(fraction)}` {done}/{total}" + why


def run_action(action: Callable[[int], object], run_id: int | None, rows: Callable[[], Any],
               progress: Callable[[int | None], str], *, noun: str, refused: str
               ) -> tuple[Any, str]:
    """Cancel or resume: (runs table, progress line); a refusal is shown in the progress line.
    ``refused`` is the word for a refusal ("cancelled", "resumed")."""
    if run_id is None:
        verb = "cancel" if refused == "cancelled" else "resume"
        return rows(), f"**Pick a {noun} to {verb}.**"
    try:
        action(int(run_id))
    except StudioError as exc:
        return rows(), f"**Not {refused}.** {escape_md(exc.message)}"
    return rows(), progress(run_id)


def safe_progress(get_line: Callable[[int], str], run_id: int | None) -> str:
    if run_id is None:
        return ""
    try:
        return get_line(int(run_id))
    except StudioError as exc:
        return escape_md(exc.message)


@dataclass
class RunControls:
    run: gr.Dropdown
    cancel: gr.Button
    resume: gr.Button
    progress: gr.Markdown
    runs: gr.Dataframe
    timer: gr.Timer


def build_run_controls(prefix: str, label: str, headers: list[str]) -> RunControls:
    """The run picker, Cancel/Resume, progress line, runs table and 2 s timer (elem ids
    ``{prefix}-run``, ``-cancel``, ``-resume``, ``-progress``, ``-runs``)."""
    with gr.Row():
        run = gr.Dropdown(label=label, choices=[], elem_id=f"{prefix}-run", scale=3)
        cancel = gr.Button("Cancel", elem_id=f"{prefix}-cancel", scale=1)
        resume = gr.Button("Resume", elem_id=f"{prefix}-resume", scale=1)
    progress = gr.Markdown(elem_id=f"{prefix}-progress")
    runs = gr.Dataframe(headers=headers, datatype="str", interactive=False,
                        elem_id=f"{prefix}-runs")
    return RunControls(run, cancel, resume, progress, runs, gr.Timer(2.0))


def wire_run_controls(c: RunControls, api: str, *, cancel: Callable[..., Any],
                      resume: Callable[..., Any], progress: Callable[..., Any],
                      tick: Callable[..., Any]) -> None:
    """Cancel/Resume/progress/tick events, named ``{api}_cancel`` etc."""
    c.cancel.click(cancel, inputs=c.run, outputs=[c.runs, c.progress], api_name=f"{api}_cancel")
    c.resume.click(resume, inputs=c.run, outputs=[c.runs, c.progress], api_name=f"{api}_resume")
    c.run.change(progress, inputs=c.run, outputs=c.progress, api_name=f"{api}_progress")
    c.timer.tick(tick, inputs=c.run, outputs=[c.runs, c.progress], show_progress="hidden",
                 api_name=f"{api}_tick")
