"""Plotly figures and Markdown tables for agreement reports (numbers and our own labels only;
principle titles pass through escape_md)."""

from __future__ import annotations

import math

import plotly.graph_objects as go

from backend.cai.metrics import Estimate, RunComparison
from backend.services.agreement import Report
from studio.render import escape_md


def _fmt(e: Estimate, digits: int = 3) -> str:
    if math.isnan(e.value):
        return "undefined"
    interval = ("" if math.isnan(e.low) else
                f" [{e.low:.{digits}f}, {e.high:.{digits}f}]")
    return f"{e.value:.{digits}f}{interval}"


def metrics_table(report: Report) -> str:
    s = report.summary
    rows = [("Accuracy vs human (ties = ½)", s.accuracy), ("Cohen's κ", s.kappa),
            ("Log loss", s.log_loss), ("Brier score", s.brier),
            ("Expected calibration error", s.ece)]
    if report.position_consistency is not None:
        rows.append(("Position consistency (A/B swap)", report.position_consistency))
    lines = [f"**{s.n} items** ({s.n_human_ties} human ties) · "
             f"{int(s.confidence * 100)} % bootstrap intervals from {s.n_boot} resamples",
             "", "| metric | value [interval] |", "|---|---|"]
    lines += [f"| {name} | {_fmt(e)} |" for name, e in rows]
    return "\n".join(lines)


def reliability_figure(report: Report) -> go.Figure:
    r = report.summary.reliability
    centres = [(lo + hi) / 2 for lo, hi in zip(r.edges, r.edges[1:], strict=False)]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0.5, 1.0], y=[0.5, 1.0], mode="lines", name="perfect",
                             line={"dash": "dash", "color": "#9ca3af"}))
    fig.add_trace(go.Scatter(x=[c for c, n in zip(r.confidence, r.count, strict=True) if n],
                             y=[a for a, n in zip(r.accuracy, r.count, strict=True) if n],
                             mode="lines+markers", name="AI labeller",
                             text=[f"{n} items" for n in r.count if n]))
    fig.add_trace(go.Bar(x=centres, y=[n / max(1, report.summary.n) for n in r.count],
                         name="share of items", opacity=0.25, yaxis="y2"))
    fig.update_layout(title=f"Reliability (ECE {r.ece:.3f})", height=380,
                      xaxis={"title": "confidence of the chosen side", "range": [0.5, 1]},
                      yaxis={"title": "agreement with humans", "range": [0, 1]},
                      yaxis2={"overlaying": "y", "side": "right", "range": [0, 1],
                              "showgrid": False, "title": "share"},
                      # the legend sits above the plot, clear of the x axis title
                      margin={"t": 80, "l": 50, "r": 50, "b": 50},
                      legend={"orientation": "h", "yanchor": "bottom", "y": 1.02,
                              "xanchor": "left", "x": 0})
    return fig


def principle_figure(report: Report, titles: dict[str, str]) -> go.Figure:
    items = sorted(report.per_principle, key=lambda p: p.accuracy.value)
    names = [titles.get(p.principle, p.principle) for p in items]
    values = [p.accuracy.value for p in items]
    fig = go.Figure(go.Bar(
        x=values, y=names, orientation="h",
        error_x={"type": "data", "symmetric": False,
                 "array": [max(0.0, p.accuracy.high - p.accuracy.value) for p in items],
                 "arrayminus": [max(0.0, p.accuracy.value - p.accuracy.low) for p in items]},
        text=[f"n={p.n}" for p in items], textposition="inside"))
    fig.update_layout(title="Accuracy per principle (95 % interval)", height=120 + 24 * len(items),
                      xaxis={"range": [0, 1], "title": "accuracy vs human"},
                      margin={"t": 40, "l": 10, "r": 10, "b": 40})
    return fig


def histogram_figure(report: Report) -> go.Figure:
    h = report.summary.histogram
    centres = [(lo + hi) / 2 for lo, hi in zip(h.edges, h.edges[1:], strict=False)]
    fig = go.Figure(go.Bar(x=centres, y=list(h.counts), width=h.edges[1] - h.edges[0]))
    fig.update_layout(title="Distribution of p(A)", height=280,
                      xaxis={"title": "p(A is better)", "range": [0, 1]},
                      yaxis={"title": "items"}, margin={"t": 40, "l": 50, "r": 10, "b": 40})
    return fig


def comparison_table(c: RunComparison, label_a: str, label_b: str) -> str:
    lines = [f"**{escape_md(label_a)} → {escape_md(label_b)}** on {c.n_items} shared items "
             f"({c.n_only_a} only in the first, {c.n_only_b} only in the second).",
             f"Flipped verdicts: **{len(c.flips)}** — {c.n_toward_human} toward the human label, "
             f"{c.n_away_from_human} away from it, {c.n_other} other.",
             "", "| metric | first run | second run | change (second − first) [paired interval] |",
             "|---|---|---|---|"]
    lines += [f"| {escape_md(name)} | {_fmt(c.first[name])} | {_fmt(c.second[name])} | "
              f"{_fmt(e)} |" for name, e in c.deltas.items()]
    return "\n".join(lines)
