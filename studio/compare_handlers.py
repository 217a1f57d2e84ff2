"""Event handlers of the Compare tab. They call services only; every text that came from a
model, a prompt file or a user goes through escape_md or a fenced block (never gr.HTML)."""

from __future__ import annotations

from typing import Any

import gradio as gr

from backend.errors import StudioError
from backend.services.comparisons import ComparisonConfig
from backend.services.container import Services
from studio import compare_charts as charts
from studio.judge_marks import hard_mark
from studio.render import escape_md, fenced
from studio.run_controls import progress_line, run_action, safe_progress
from studio.session import principal

RUN_HEADERS = ["id", "name", "status", "progress", "judge", "updated (UTC)"]
PAGE = 5


def _side(p_a: float) -> str:
    return "A" if p_a > 0.5 else "B" if p_a < 0.5 else "tie"


class CompareHandlers:
    def __init__(self, services: Services) -> None:
        self.s = services

    # --- lists -------------------------------------------------------------------------------

    def run_rows(self) -> list[list[Any]]:
        return [[c.id, c.name, c.status, f"{c.done_count}/{c.total_count} ({c.progress:.0%})",
                 c.judge_model, c.updated_at.strftime("%H:%M:%S")]
                for c in self.s.comparisons.list_all()]

    def run_choices(self) -> list[tuple[str, int]]:
        return [(f"#{c.id} {c.name}", c.id) for c in self.s.comparisons.list_all()]

    def policy_choices(self) -> list[tuple[str, str]]:
        try:
            return [(p.label, p.ref) for p in self.s.comparisons.policies.options()]
        except StudioError:  # no engine: the trained models can still be listed
            return []

    def playground_links(self) -> str:
        """Links that open the Playground on each policy that can be compared."""
        try:
            options = self.s.comparisons.policies.options()
        except StudioError:
            return ""
        return charts.playground_links([(p.ref, p.label) for p in options])

    def load(self) -> tuple[Any, ...]:
        policies = self.policy_choices()
        constitutions = [(c.name, c.id) for c in self.s.constitutions.list_all()]
        runs = self.run_choices()
        rewards = self.s.comparisons.policies.reward_options()
        return (gr.update(choices=policies, value=[ref for _, ref in policies[:2]]),
                gr.update(choices=constitutions,
                          value=constitutions[0][1] if constitutions else None),
                self.run_rows(), gr.update(choices=runs, value=runs[0][1] if runs else None),
                gr.update(choices=rewards, value=[]),
                gr.update(choices=runs, value=runs[1][1] if len(runs) > 1 else None))

    def versions(self, constitution_id: int | None) -> Any:
        if constitution_id is None:
            return gr.update(choices=[], value=None)
        items = self.s.constitutions.history(int(constitution_id), limit=200)
        choices = [(f"v{v.number}", v.id) for v in items]
        return gr.update(choices=choices, value=choices[0][1] if choices else None)

    # --- runs --------------------------------------------------------------------------------

    def launch(self, request: gr.Request, policies: list[str] | None, version_id: int | None,
               prompt_set: str, max_prompts: float | None, max_new_tokens: float | None,
               cot: bool, both: bool, k: float, seed: float,
               reward_models: list[str] | None = None, judge: str = "scored"
               ) -> tuple[Any, ...]:
        if not policies or len(policies) < 2 or version_id is None:
            return "**Pick two or more policies and a constitution version.**", gr.skip(), \
                gr.skip()
        try:
            config = ComparisonConfig(max_prompts=int(max_prompts or 20),
                                      max_new_tokens=int(max_new_tokens or 128),
                                      cot=bool(cot), both_orders=bool(both),
                                      k_principles=int(k), seed=int(seed or 0),
                                      reward_models=tuple(reward_models or ()),
                                      judge="parsed" if judge == "parsed" else "scored")
            actor = principal(self.s, request)
            info = self.s.comparisons.create(policies=list(policies), version_id=int(version_id),
                                             config=config, actor=actor,
                                             prompt_set=str(prompt_set or ""))
            self.s.comparisons.start(info.id, actor=actor)
        except StudioError as exc:
            return f"**Not started.** {escape_md(exc.message)}", gr.skip(), gr.skip()
        runs = self.run_choices()
        return (f"Started comparison #{info.id}: {len(info.policies)} policies on "
                f"{len(info.prompts)} prompts ({info.total_count} steps); it continues if you "
                "leave this page.", self.run_rows(), gr.update(choices=runs, value=info.id))

    def cancel(self, request: gr.Request, run_id: int | None) -> tuple[Any, ...]:
        return run_action(lambda i: self.s.comparisons.cancel(i, actor=principal(self.s, request)),
                          run_id, self.run_rows, self.progress, noun="comparison",
                          refused="cancelled")

    def resume(self, request: gr.Request, run_id: int | None) -> tuple[Any, ...]:
        return run_action(lambda i: self.s.comparisons.start(i, actor=principal(self.s, request)),
                          run_id, self.run_rows, self.progress, noun="comparison",
                          refused="resumed")

    def progress(self, run_id: int | None) -> str:
        def line(i: int) -> str:
            c = self.s.comparisons.get(i)
            return progress_line(f"Comparison #{c.id}", c.status, c.progress, c.done_count,
                                 c.total_count, c.error)
        return safe_progress(line, run_id)

    def tick(self, run_id: int | None) -> tuple[Any, ...]:
        return self.run_rows(), self.progress(run_id)

    # --- results -----------------------------------------------------------------------------

    def report(self, run_id: int | None) -> tuple[Any, ...]:
        if run_id is None:
            return "**Pick a comparison.**", None, None, None
        try:
            report = self.s.comparison_reports.report(int(run_id))
        except StudioError as exc:
            return f"**No report.** {escape_md(exc.message)}", None, None, None
        return (charts.summary_md(report), charts.win_rate_figure(report),
                charts.harmless_helpful_figure(report), charts.principle_figure(report))

    def browse(self, run_id: int | None, page: float | None) -> str:
        if run_id is None:
            return "Pick a comparison."
        index = max(0, int(page or 1) - 1)
        try:
            pairs, total = self.s.comparison_reports.pairs(int(run_id), offset=index * PAGE,
                                                           limit=PAGE)
        except StudioError as exc:
            return escape_md(exc.message)
        pages = max(1, -(-total // PAGE))
        out = [f"**{total} judged pairs** · page {index + 1} of {pages}"]
        for p in pairs:
            tags = ", ".join(escape_md(t) for t in p.tags) or "untagged"
            out.append(f"---\n**Pair #{p.verdict_id}** · prompt {p.prompt_index + 1} ({tags}) · "
                       "P(A better) = "
                       f"**{p.p_a:.3f}** → **{_side(p.p_a)}**{hard_mark(p.hard, p.unparsed)}"
                       " · verdict records "
                       + ", ".join(f"#{i}" for i in p.record_ids))
            out.append("Prompt\n\n" + fenced(p.prompt, "text"))
            out.append(f"A · {escape_md(p.policy_a)}\n\n" + fenced(p.response_a, "text"))
            out.append(f"B · {escape_md(p.policy_b)}\n\n" + fenced(p.response_b, "text"))
            principles = " · ".join(f"{escape_md(k)}: {v:.3f}"
                                    for k, v in p.per_principle.items())
            out.append(f"Per principle P(A better): {principles}")
            for v in p.variants:
                cot = v.get("cot")
                if isinstance(cot, str) and cot:
                    out.append(f"Chain of thought ({escape_md(str(v.get('principle', '')))}, "
                               f"order {escape_md(str(v.get('order', '')))})\n\n"
                               + fenced(cot, "text"))
        return "\n\n".join(out)

    def changes(self, run_id: int | None, earlier_id: int | None) -> str:
        if run_id is None or earlier_id is None:
            return "**Pick a comparison and an earlier one.**"
        try:
            found = self.s.comparison_reports.changes(int(run_id), int(earlier_id))
            now, then = self.s.comparisons.get(int(run_id)), self.s.comparisons.get(
                int(earlier_id))
        except StudioError as exc:
            return f"**Cannot compare.** {escape_md(exc.message)}"
        return charts.changes_md(found, f"#{now.id} {now.name}", f"#{then.id} {then.name}")

    # --- human votes -------------------------------------------------------------------------

    def vote(self, request: gr.Request, run_id: int | None, pair: float | None,
             label: str) -> str:
        if run_id is None or not pair:
            return "**Pick a comparison and give the pair number shown in the browser.**"
        try:
            self.s.comparison_votes.vote(int(run_id), int(pair), str(label),
                                         actor=principal(self.s, request))
            votes = self.s.comparison_votes.summary(int(run_id))
        except StudioError as exc:
            return f"**Not recorded.** {escape_md(exc.message)}"
        return (f"Voted {escape_md(str(label))} on pair #{int(pair)}. {votes.pairs_voted} pairs "
                f"have votes ({votes.votes} votes by {votes.voters} people). "
                + self.agreement_line(int(run_id)))

    def agreement_line(self, run_id: int) -> str:
        a = self.s.comparison_votes.agreement(run_id)

        def num(x: float | None, pct: bool = True) -> str:
            return "—" if x is None else (f"{x:.0%}" if pct else f"{x:.2f}")

        return (f"AI judge vs people: **{num(a.ai_vs_human)}**; people vs each other: "
                f"**{num(a.human_vs_human)}** on {a.multi_voted} pairs with several voters "
                f"(Krippendorff's α {num(a.alpha, pct=False)}), the ceiling for the AI.")

    def votes_dataset(self, request: gr.Request, run_id: int | None) -> str:
        if run_id is None:
            return "**Pick a comparison.**"
        try:
            info = self.s.comparison_votes.make_dataset(int(run_id),
                                                        actor=principal(self.s, request))
        except StudioError as exc:
            return f"**No dataset made.** {escape_md(exc.message)}"
        return (f"Made dataset **{escape_md(info.name)}** ({info.item_count} human-labelled "
                "pairs); evaluate it in the Agreement tab.")
