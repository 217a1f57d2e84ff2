"""Plotly figures and Markdown tables for comparison reports. Policy labels and principle keys
are user text: tables escape them (escape_md); figures get them with angle brackets replaced,
so Plotly's HTML-like label markup (links, tags) cannot apply."""

from __future__ import annotations

import math
from urllib.parse import quote

import plotly.graph_objects as go

from backend.cai.ratings import Interval
from backend.services.comparison_report import ComparisonReport, RatingChange
from studio.judge_marks import judge_line
from studio.render import escape_md


def plain_label(text: str, limit: int = 60) -> str:
    flat = " ".join(text.split()).replace("<", "‹").replace(">", "›").replace("&", "＆")
    return flat if len(flat) <= limit else flat[:limit - 1] + "…"


def fmt(iv: Interval, digits: int = 0, pct: bool = False) -> str:
    if math.isnan(iv.value):
        return "undefined"
    scale, unit = (100.0, " %") if pct else (1.0, "")
    v, lo, hi = iv.value * scale, iv.low * scale, iv.high * scale
    interval = "" if math.isnan(iv.low) else f" [{lo:.{digits}f}, {hi:.{digits}f}]"
    return f"{v:.{digits}f}{unit}{interval}"


def ratings_rows(report: ComparisonReport) -> list[tuple[str, str, str, str]]:
    """(policy, win rate, Elo, Bradley–Terry) per policy, plain text."""
    return [(r.label, fmt(r.win_rate, 1, pct=True), fmt(r.elo), fmt(r.bt, 2))
            for r in report.ratings]


def playground_link(ref: str, label: str) -> str | None:
    """A link that opens the Playground on a policy (None for a model folder: those are not
    opened from a link)."""
    if not (ref == "base" or ref.startswith(("job:", "server:"))):
        return None
    return f"[{escape_md(label)}](?policy={quote(ref, safe='')})"


def playground_links(policies: list[tuple[str, str]]) -> str:
    """``Open in the Playground: [base …](?policy=base) · …`` for (ref, label) pairs."""
    links = [link for ref, label in policies if (link := playground_link(ref, label))]
    return ("Open in the Playground (chat, critique → revision and verdicts with that model): "
            + " · ".join(links)) if links else ""


def summary_md(report: ComparisonReport) -> str:
    c = report.comparison
    lines = [f"**{report.verdicts} judged pairs** on {len(c.prompts)} prompts · judge "
             f"{escape_md(c.judge_model)} · 95 % bootstrap intervals over prompts "
             f"({report.n_boot} resamples) · Elo relative to {escape_md(c.policies[0].label)}"
             + judge_line(report.judge, report.unparsed, report.verdicts),
             "", "| policy | win rate | Elo | Bradley–Terry |", "|---|---|---|---|"]
    lines += [f"| {escape_md(p)} | {w} | {e} | {b} |" for p, w, e, b in ratings_rows(report)]
    if report.pairwise:
        lines += ["", "| pair | first wins |", "|---|---|"]
        labels = [p.label for p in c.policies]
        lines += [f"| {escape_md(labels[p.a])} vs {escape_md(labels[p.b])} | "
                  f"{fmt(p.win_rate, 1, pct=True)} |" for p in report.pairwise]
    for ref, ivs in report.rewards.items():
        lines += ["", f"| policy | mean reward ({escape_md(ref)}) |", "|---|---|"]
        lines += [f"| {escape_md(p.label)} | {fmt(iv, 3)} |"
                  for p, iv in zip(c.policies, ivs, strict=True)]
    links = playground_links([(p.ref, p.label) for p in c.policies])
    return "\n".join(lines + (["", links] if links else []))


def _errors(ivs: list[Interval]) -> dict[str, object]:
    return {"type": "data", "symmetric": False,
            "array": [0.0 if math.isnan(i.high) else i.high - i.value for i in ivs],
            "arrayminus": [0.0 if math.isnan(i.low) else i.value - i.low for i in ivs]}


def win_rate_figure(report: ComparisonReport) -> go.Figure:
    labels = [plain_label(r.label) for r in report.ratings]
    ivs = [r.win_rate for r in report.ratings]
    fig = go.Figure(go.Bar(x=labels, y=[i.value for i in ivs], error_y=_errors(ivs),
                           marker_color="#4c78a8"))
    fig.add_hline(y=0.5, line_dash="dot", line_color="grey")
    fig.update_layout(title="Win rate against the other policies (95 % interval)",
                      yaxis={"range": [0, 1], "title": "win rate"}, height=360,
                      margin={"t": 50, "b": 40})
    return fig


def harmless_helpful_figure(report: ComparisonReport) -> go.Figure:
    """The paper's chart: helpfulness Elo (x) against harmlessness Elo (y) per policy; with
    only one kind of prompt, that axis's Elo per policy; with untagged prompts, overall Elo."""
    labels = [plain_label(r.label) for r in report.ratings]
    harmless, helpful = report.by_axis.get("harmless"), report.by_axis.get("helpful")
    fig = go.Figure()
    if harmless and helpful:
        fig.add_trace(go.Scatter(
            x=[i.value for i in helpful], y=[i.value for i in harmless], text=labels,
            mode="markers+text", textposition="top center", error_x=_errors(helpful),
            error_y=_errors(harmless), marker={"size": 11}))
        fig.update_layout(title="Harmlessness vs helpfulness Elo (95 % intervals)",
                          xaxis_title="helpfulness Elo", yaxis_title="harmlessness Elo")
    else:
        axis, ivs = (("harmlessness", harmless) if harmless else
                     ("helpfulness", helpful) if helpful else
                     ("overall", [r.elo for r in report.ratings]))
        fig.add_trace(go.Bar(x=labels, y=[i.value for i in ivs], error_y=_errors(ivs),
                             marker_color="#54a24b"))
        fig.update_layout(title=f"{axis.capitalize()} Elo (95 % interval)",
                          yaxis_title=f"{axis} Elo")
    fig.update_layout(height=380, margin={"t": 50, "b": 40})
    return fig


def principle_figure(report: ComparisonReport) -> go.Figure:
    """Elo of each policy (against the first) from each principle's verdicts alone."""
    keys = list(report.by_principle)
    fig = go.Figure()
    for idx, r in enumerate(report.ratings):
        if idx == 0:
            continue
        ivs = [report.by_principle[k][idx] for k in keys]
        fig.add_trace(go.Bar(y=[plain_label(k, 40) for k in keys], x=[i.value for i in ivs],
                             error_x=_errors(ivs), orientation="h",
                             name=plain_label(r.label, 40)))
    fig.update_layout(title="Elo per principle (relative to the first policy)",
                      barmode="group", height=max(300, 40 * len(keys) + 120),
                      xaxis_title="Elo", margin={"t": 50, "b": 40})
    return fig


def changes_md(changes: list[RatingChange], now: str, earlier: str) -> str:
    lines = [f"**{escape_md(now)}** against **{escape_md(earlier)}** (Elo relative to each "
             "comparison's first policy)", "",
             "| policy | Elo before | Elo now | change | win rate before | win rate now |",
             "|---|---|---|---|---|---|"]
    for c in changes:
        delta = "new" if c.elo_delta is None else f"{c.elo_delta:+.0f}"
        before = "—" if c.before is None else fmt(c.before)
        wr_before = "—" if c.win_rate_before is None else fmt(c.win_rate_before, 1, pct=True)
        lines.append(f"| {escape_md(c.label)} | {before} | {fmt(c.after)} | {delta} | "
                     f"{wr_before} | {fmt(c.win_rate_after, 1, pct=True)} |")
    return "\n".join(lines)
