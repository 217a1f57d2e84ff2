"""Event handlers of the Playground tab. They call services only."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import gradio as gr
import plotly.graph_objects as go

from backend.cai.critique_loop import LoopConfig, LoopEvent
from backend.cai.labeling import LabelConfig, PairItem, Verdict
from backend.engines.base import GenerationParams
from backend.errors import StudioError
from backend.services.container import Services
from studio.render import escape_md, prose, record_link
from studio.session import principal

SAMPLE = "sample"
BASE_CHOICE = ("base (the active model)", "base")
TIE_MARGIN = 0.05  # a verdict this close to 0.5 is called close to a tie
# While a step streams, the page gets at most one update per STREAM_INTERVAL_S: each update
# re-renders the whole preview's Markdown in the browser, and one per token (a server streams
# 50-100 tokens a second) kept a slow page too busy to take clicks on other tabs. A finished
# step is always sent at once.
STREAM_INTERVAL_S = 0.2
VARIANT_HEADERS = ["principle", "order", "p(A)", "p(first shown)", "clamped", "CoT", "record"]


def _keys(principle: str | None) -> tuple[str, ...] | None:
    """The principle chosen in the UI, or None to sample (also while the list is loading)."""
    return None if principle in (None, "", SAMPLE) else (str(principle),)


def _step_title(event: LoopEvent, titles: dict[str, str]) -> str:
    if event.kind == "response":
        return "Response"
    assert event.principle is not None
    principle = escape_md(titles.get(event.principle.key, event.principle.key))
    return f"Round {event.round} · {event.kind} · principle: *{principle}*"


class PlaygroundHandlers:
    def __init__(self, services: Services) -> None:
        self.s = services

    # --- choosing what to run against --------------------------------------------------------

    def engine_badge(self) -> str:
        try:
            info = self.s.engines.get().info
        except StudioError as exc:
            return f"**Model unavailable:** {escape_md(exc.message)}"
        note = self.s.engines.note
        badge = (f"⚠️ **{escape_md(info.badge)}**" if info.is_demo
                 else f"Model: **{escape_md(info.badge)}**")
        return badge + (f"\n\n{escape_md(note)}" if note else "")

    def versions(self, constitution_id: int | None) -> Any:
        if constitution_id is None:
            return gr.update(choices=[], value=None)
        items = self.s.constitutions.history(int(constitution_id), limit=200)
        choices = [(f"v{v.number}" + (" (head)" if i == 0 else ""), v.id)
                   for i, v in enumerate(items)]
        return gr.update(choices=choices, value=choices[0][1] if choices else None)

    def refresh_versions(self, constitution_id: int | None, version_id: int | None,
                         seen_head: int | None) -> tuple[Any, int | None]:
        """On opening the tab: relist the versions (a save elsewhere may have added one). A
        picker that showed the head follows the new head; an older version picked on purpose
        stays picked. Returns the dropdown update and the head now shown."""
        if constitution_id is None:  # the page is still loading: leave the picker to load()
            return gr.skip(), gr.skip()
        update = self.versions(constitution_id)
        head = update["value"] if isinstance(update, dict) else None
        ids = {v for _, v in update.get("choices", [])} if isinstance(update, dict) else set()
        if version_id is not None and version_id != seen_head and version_id in ids:
            update["value"] = version_id
        return update, head

    def relist_constitutions(self, constitution_id: int | None) -> Any:
        """On opening the tab: constitutions imported or created elsewhere show up; the one
        picked stays picked."""
        if constitution_id is None:  # the page is still loading: leave the picker to load()
            return gr.skip()
        choices = [(c.name, c.id) for c in self.s.constitutions.list_all()]
        return gr.update(choices=choices)

    def principles(self, version_id: int | None) -> Any:
        if version_id is None:
            return gr.update(choices=[("sample at random", SAMPLE)], value=SAMPLE)
        content = self.s.constitutions.version(int(version_id)).content
        choices = [("sample at random", SAMPLE)] + [
            (p.title, p.key) for p in content.principles if p.enabled]
        return gr.update(choices=choices, value=SAMPLE)

    def load(self) -> tuple[Any, ...]:
        constitutions = [(c.name, c.id) for c in self.s.constitutions.list_all()]
        first = constitutions[0][1] if constitutions else None
        versions = self.versions(first)
        version_id = versions["value"] if isinstance(versions, dict) else None
        prompts = self.s.playground.prompt_set()[:300]
        return (self.engine_badge(),
                gr.update(choices=constitutions, value=first),
                versions,
                self.principles(version_id),
                gr.update(choices=prompts, value=None))

    # --- critique → revision preview ---------------------------------------------------------

    def policy_choices(self, request: gr.Request) -> Any:
        """The policies to pick (base, finished SFT/RL/DPO jobs, the server's model); a link
        ``?policy=job:3`` (the Compare tab's "open in Playground") picks that one."""
        try:
            options = [(p.label, p.ref) for p in self.s.playground.policies.options()] \
                if self.s.playground.policies is not None else []
        except StudioError:
            options = []
        if not options:
            options = [BASE_CHOICE]
        params = getattr(request, "query_params", None) or {}
        wanted = str(params.get("policy") or "")
        refs = [ref for _, ref in options]
        value = wanted if wanted in refs else refs[0]
        return (gr.update(choices=options, value=value),
                gr.update(choices=options, value=refs[1] if len(refs) > 1 else refs[0]))

    def _policy_label(self, policy: str | None) -> str:
        try:
            if self.s.playground.policies is not None:
                return self.s.playground.policies.resolve(policy).label
        except StudioError:
            pass
        return str(policy or "base")

    def preview(self, request: gr.Request, version_id: int | None, principle: str | None,
                prompt: str, rounds: float, max_tokens: float, temperature: float, seed: float,
                form: str, policy: str | None = None) -> Iterator[str]:
        yield from self._stream(request, version_id, principle, prompt, rounds, max_tokens,
                                temperature, seed, form, policy)

    def side_by_side(self, request: gr.Request, version_id: int | None, principle: str | None,
                     prompt: str, rounds: float, max_tokens: float, temperature: float,
                     seed: float, form: str, policy_a: str | None, policy_b: str | None
                     ) -> Iterator[tuple[str, str]]:
        """The same prompt, seed and principles for two policies: both responses and their
        revisions, next to each other (the first policy streams, then the second)."""
        a = ""
        for a in self._stream(request, version_id, principle, prompt, rounds, max_tokens,
                              temperature, seed, form, policy_a, header=True):
            yield a, ""
        for b in self._stream(request, version_id, principle, prompt, rounds, max_tokens,
                              temperature, seed, form, policy_b, header=True):
            yield a, b

    def _stream(self, request: gr.Request, version_id: int | None, principle: str | None,
                prompt: str, rounds: float, max_tokens: float, temperature: float, seed: float,
                form: str, policy: str | None, *, header: bool = False) -> Iterator[str]:
        if version_id is None:
            yield "**Pick a constitution version first.**"
            return
        params = GenerationParams(max_tokens=int(max_tokens), temperature=float(temperature),
                                  seed=int(seed))
        config = LoopConfig(rounds=int(rounds), form="raw" if form == "raw" else "chat",
                            seed=int(seed),
                            principle_keys=_keys(principle),
                            response_params=params, critique_params=params,
                            revision_params=params)
        titles = {p.key: p.title
                  for p in self.s.constitutions.version(int(version_id)).content.principles}
        done: list[str] = []
        if header or policy not in (None, "", "base"):
            done.append(f"Policy: **{escape_md(self._policy_label(policy))}**")
        try:
            actor = principal(self.s, request)
            sent = 0.0  # when the page was last updated
            for event in self.s.playground.preview(int(version_id), prompt, config,
                                                   actor=actor, policy=policy):
                if not event.done and time.monotonic() - sent < STREAM_INTERVAL_S:
                    continue  # the next update carries this token too
                block = f"**{_step_title(event, titles)}**\n\n{prose(event.text or '')}"
                if event.done:
                    if event.record_id is not None:
                        block += f"\n\ncritique log record {record_link(event.record_id)}"
                    done.append(block)
                    yield "\n\n".join(done)
                else:
                    yield "\n\n".join([*done, block])
                sent = time.monotonic()
        except StudioError as exc:
            yield "\n\n".join([*done, f"**Stopped:** {escape_md(exc.message)}"])

    # --- A/B verdicts --------------------------------------------------------------------------

    def sample_pair(self, request: gr.Request, prompt: str, max_tokens: float, seed: float,
                    policy: str | None = None) -> tuple[Any, ...]:
        try:
            a, b = self.s.playground.sample_responses(prompt, actor=principal(self.s, request),
                                                      n=2, max_tokens=int(max_tokens),
                                                      seed=int(seed), policy=policy)
        except StudioError as exc:
            return gr.skip(), gr.skip(), f"**Could not sample:** {escape_md(exc.message)}"
        return a, b, "Sampled two responses (temperature 1.0, seeds s and s+1)."

    def judge(self, request: gr.Request, version_id: int | None, principle: str | None,
              prompt: str, response_a: str, response_b: str, cot: bool, both_orders: bool,
              k: float, clamp: bool, seed: float, form: str, few_shots: bool = True,
              policy: str | None = None) -> tuple[Any, ...]:
        if version_id is None:
            return None, "**Pick a constitution version first.**", []
        config = LabelConfig(cot=bool(cot), both_orders=bool(both_orders),
                             k_principles=int(k) if _keys(principle) is None else 1,
                             principle_keys=_keys(principle),
                             cot_clamp=(0.4, 0.6) if clamp else None, seed=int(seed),
                             form="raw" if form == "raw" else "chat",
                             use_few_shots=bool(few_shots))
        try:
            result = self.s.playground.verdict(int(version_id), PairItem(prompt, response_a,
                                                                          response_b),
                                               config, actor=principal(self.s, request),
                                               policy=policy)
        except StudioError as exc:
            return None, f"**No verdict:** {escape_md(exc.message)}", []
        titles = {p.key: p.title for p in result.version.content.principles}
        if not result.verdict.scored:
            return None, _verdict_summary(result.verdict), []
        return (_verdict_plot(result.verdict), _verdict_summary(result.verdict),
                _variant_rows(result.verdict, titles))


def _verdict_plot(verdict: Verdict) -> go.Figure:
    p_a = verdict.p_a
    fig = go.Figure(go.Bar(x=[p_a, 1 - p_a], y=["A", "B"], orientation="h",
                           marker_color=["#2563eb", "#f97316"],
                           text=[f"{p_a:.1%}", f"{1 - p_a:.1%}"], textposition="auto"))
    fig.update_layout(height=180, margin={"l": 30, "r": 10, "t": 30, "b": 30},
                      xaxis={"range": [0, 1], "tickformat": ".0%"},
                      title={"text": "p(A is better) under the constitution", "x": 0})
    return fig


def _verdict_summary(verdict: Verdict) -> str:
    consistent = {True: "yes", False: "**no** (swapping A and B flipped a verdict)",
                  None: "not measured (one order only)"}[verdict.position_consistent]
    records = ", ".join(record_link(v.record_id) for v in verdict.variants)
    if not verdict.scored:
        return f"**Not scorable:** {escape_md(verdict.unscorable or '')}"
    clamp = " (CoT clamp applied to the average)" if verdict.clamped else ""
    winner = f"winner **{verdict.winner}**"
    if abs(verdict.p_a - 0.5) < TIE_MARGIN:
        winner += f" (close to a tie: within {TIE_MARGIN:.2f} of 0.5)"
    return (f"**p(A) = {verdict.p_a:.3f}**{clamp} → {winner} · position consistent: "
            f"{consistent} · critique log records {records}")


def _variant_rows(verdict: Verdict, titles: dict[str, str]) -> list[list[Any]]:
    return [[titles.get(v.principle_key, v.principle_key), v.order, round(v.p_a, 4),
             round(v.p_first, 4), "yes" if v.clamped else "", v.cot or "", f"#{v.record_id}"]
            for v in verdict.variants]
