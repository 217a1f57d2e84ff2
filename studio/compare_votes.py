"""The votes view of the Compare tab: who voted what on each pair, the disputed pairs, and the
adjudication of a disagreement by an editor (issue 16 point 7). Names and reasons are escaped."""

from __future__ import annotations

from typing import Any

import gradio as gr

from backend.errors import StudioError
from backend.services.comparison_votes import PairVotes
from backend.services.container import Services
from studio.render import escape_md
from studio.session import principal

SIDE = {1.0: "A", 0.0: "B", 0.5: "tie"}


def _side(label: float) -> str:
    return SIDE.get(label, "A" if label > 0.5 else "B" if label < 0.5 else "tie")


def _row(p: PairVotes) -> str:
    votes = ", ".join(f"{escape_md(v)}: {_side(x)}" for v, x in sorted(p.votes.items()))
    if p.ruling is not None:
        ruled = (f"**{_side(p.ruling)}** (adjudicated by {escape_md(p.adjudicator or '')}"
                 + (f": {escape_md(p.reason)}" if p.reason else "") + ")")
    else:
        ruled = _side(p.label) + (" (mean of votes)" if len(p.votes) > 1 else "")
    state = "**disputed**" if p.disputed else "agreed" if len(p.votes) > 1 else "one vote"
    return f"| #{p.verdict_id} | {votes} | {state} | {ruled} |"


class CompareVoteHandlers:
    def __init__(self, services: Services) -> None:
        self.s = services

    def view(self, run_id: int | None) -> str:
        if run_id is None:
            return "Pick a comparison."
        try:
            pairs = self.s.comparison_votes.pair_votes(int(run_id))
        except StudioError as exc:
            return escape_md(exc.message)
        if not pairs:
            return "No votes on this comparison yet."
        disputed = sum(1 for p in pairs if p.disputed)
        open_ = sum(1 for p in pairs if p.disputed and p.ruling is None)
        head = (f"**{len(pairs)} voted pairs**, {disputed} disputed ({open_} not yet "
                "adjudicated). The dataset label is the adjudicated one where there is one.")
        return "\n".join([head, "", "| pair | votes | | dataset label |", "|---|---|---|---|",
                          *(_row(p) for p in pairs)])

    def adjudicate(self, request: gr.Request, run_id: int | None, pair: float | None,
                   label: str, reason: str) -> tuple[Any, str]:
        if run_id is None or not pair:
            return ("**Pick a comparison and give the number of a disputed pair.**",
                    self.view(run_id))
        try:
            ruled = self.s.comparison_votes.adjudicate(int(run_id), int(pair), str(label),
                                                       actor=principal(self.s, request),
                                                       reason=str(reason or ""))
        except StudioError as exc:
            return f"**Not adjudicated.** {escape_md(exc.message)}", self.view(run_id)
        return (f"Adjudicated pair #{ruled.verdict_id} as **{escape_md(str(label))}**; it is "
                "the pair's label in the votes dataset.", self.view(run_id))
