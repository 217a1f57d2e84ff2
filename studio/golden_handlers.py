"""Event handlers of the Constitution tab's "Golden cases" section: pin pairs with the verdict
they should get, list and delete them, and preview how the unsaved draft changes their verdicts.
They call services only; every text shown is escaped."""

from __future__ import annotations

from typing import Any

import gradio as gr

from backend.errors import StudioError, ValidationError
from backend.services.container import Services
from backend.services.golden import CaseImpact, ImpactPreview
from studio import constitution_draft as drafts
from studio.constitution_draft import Draft
from studio.render import escape_md, problems_md
from studio.session import principal

CASE_HEADERS = ["id", "expected", "prompt", "note"]
PROMPT_PREVIEW_CHARS = 60


def _start(text: str, limit: int = PROMPT_PREVIEW_CHARS) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit - 1] + "…"


def _side(p_a: float, winner: str) -> str:
    return f"{winner} ({p_a:.2f})"


def _outcome(c: CaseImpact) -> str:
    if c.expected is None:
        return "flipped" if c.flipped else "same"
    if c.now_right:
        return "**now right**"
    if c.now_wrong:
        return "**now wrong**"
    return "still right" if c.after == c.expected else "still wrong"


def impact_md(preview: ImpactPreview) -> str:
    """The preview as a Markdown table; prompts and notes are escaped."""
    head = f"### Impact of your draft on v{preview.base_number}"
    if not preview.cases:
        return f"{head}\n\nNo golden cases are pinned to this constitution yet; pin some first."
    engine = preview.engine
    lines = [head, "", f"**{preview.summary}** · {len(preview.cases)} pairs judged"
             + (f" with {escape_md(engine.model)}" if engine else "")
             + (" (demo model with random weights: verdicts are meaningless)"
                if engine and engine.is_demo else ""),
             "", "| case | prompt | expected | before P(A) | after P(A) | flipped | result |",
             "|---|---|---|---|---|---|---|"]
    for c in preview.cases:
        label = f"#{c.case_id}" if c.case_id is not None else "sample"
        lines.append(
            f"| {label} | {escape_md(_start(c.item.prompt))} | {c.expected or '–'} | "
            f"{_side(c.p_a_before, c.before)} | {_side(c.p_a_after, c.after)} | "
            f"{'yes' if c.flipped else 'no'} | {_outcome(c)} |")
    return "\n".join(lines)


class GoldenHandlers:
    def __init__(self, services: Services) -> None:
        self.s = services

    def rows(self, draft: Draft | None) -> list[list[Any]]:
        if not draft:
            return []
        return [[c.id, c.expected, _start(c.prompt), _start(c.note)]
                for c in self.s.golden.list_all(draft["constitution_id"])]

    def pin(self, request: gr.Request, draft: Draft | None, prompt: str, response_a: str,
            response_b: str, expected: str | None, note: str) -> tuple[Any, ...]:
        """Returns (result, case table, prompt, response A, response B, note)."""
        keep = (gr.skip(),) * 4
        if not draft:
            return ("**Load a constitution first.**", gr.skip(), *keep)
        try:
            case = self.s.golden.add(draft["constitution_id"], prompt or "", response_a or "",
                                     response_b or "", expected or "", note or "",
                                     actor=principal(self.s, request))
        except ValidationError as exc:
            return (problems_md("Not pinned.", exc.problems or [exc.message]), gr.skip(), *keep)
        except StudioError as exc:
            return (f"**Not pinned.** {escape_md(exc.message)}", gr.skip(), *keep)
        return (f"Pinned case **#{case.id}** (expected {case.expected}).", self.rows(draft),
                "", "", "", "")

    def delete(self, request: gr.Request, draft: Draft | None, case_id: float | None
               ) -> tuple[Any, ...]:
        """Returns (result, case table)."""
        if not draft:
            return "**Load a constitution first.**", gr.skip()
        if case_id is None:
            return "**Type the id of the case to delete.**", gr.skip()
        ids = {c.id for c in self.s.golden.list_all(draft["constitution_id"])}
        try:
            actor = principal(self.s, request)
            if int(case_id) not in ids:
                return (f"**Not deleted.** This constitution has no golden case "
                        f"#{int(case_id)}.", gr.skip())
            self.s.golden.delete(int(case_id), actor=actor)
        except StudioError as exc:
            return f"**Not deleted.** {escape_md(exc.message)}", gr.skip()
        return f"Deleted case **#{int(case_id)}**.", self.rows(draft)

    def preview(self, request: gr.Request, draft: Draft | None, *values: Any) -> str:
        """Re-judge the golden cases under the base version and under the draft as edited."""
        if not draft:
            return "**Load a constitution first.**"
        draft = drafts.apply_editor(draft, values)
        try:
            result = self.s.golden.impact(draft["constitution_id"], draft["base_version_id"],
                                          drafts.to_content(draft),
                                          actor=principal(self.s, request))
        except ValidationError as exc:
            return problems_md("No preview.", exc.problems or [exc.message])
        except StudioError as exc:
            return f"**No preview.** {escape_md(exc.message)}"
        return impact_md(result)
