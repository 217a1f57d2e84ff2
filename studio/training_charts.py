"""Plotly figures for training jobs: one panel per metric, one line per job (numbers and our
own labels; job names become trace names with the characters Plotly reads as markup
replaced)."""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from backend.services.jobs import JobMetrics

PANELS = (("loss", "loss"), ("reward", "reward"), ("kl", "KL"),
          ("learning_rate", "learning rate"), ("samples_per_second", "throughput (samples/s)"),
          ("eval_accuracy", "held-out accuracy"), ("grad_norm", "gradient norm"),
          ("progress", "progress"))


def plain_label(text: str) -> str:
    """A trace name Plotly will not read as markup (it renders a few HTML tags in names)."""
    return text.replace("<", "‹").replace(">", "›").replace("&", "＆")


def curves_figure(runs: dict[str, JobMetrics], title: str = "") -> go.Figure | None:
    """Panels for the metrics any of ``runs`` logged (label -> metrics); None if none did."""
    names = [(key, label) for key, label in PANELS
             if any(key in m.series and m.series[key].steps for m in runs.values())]
    if not names:
        return None
    cols = 2 if len(names) > 1 else 1
    rows = -(-len(names) // cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[label for _, label in names],
                        horizontal_spacing=0.08, vertical_spacing=0.12 if rows > 1 else 0.1)
    palette = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2")
    for i, (label, metrics) in enumerate(runs.items()):
        run_label = plain_label(label)
        colour = palette[i % len(palette)]
        for j, (key, _) in enumerate(names):
            series = metrics.series.get(key)
            if series is None or not series.steps:
                continue
            fig.add_trace(go.Scatter(
                x=series.steps, y=series.values, mode="lines+markers" if len(series.steps) < 30
                else "lines", name=run_label, legendgroup=run_label, showlegend=j == 0,
                line={"color": colour}, marker={"size": 4}),
                row=j // cols + 1, col=j % cols + 1)
    for j, (key, _) in enumerate(names):
        where = {"row": j // cols + 1, "col": j % cols + 1}
        fig.update_xaxes(title_text="step", **where)
        values = [v for m in runs.values() if key in m.series for v in m.series[key].values]
        if key == "learning_rate":
            fig.update_yaxes(exponentformat="e", **where)
        if values and min(values) == max(values):  # a flat line: centre it, do not zoom to 0
            pad = abs(values[0]) * 0.5 or 1.0
            fig.update_yaxes(range=[values[0] - pad, values[0] + pad], **where)
    fig.update_layout(title=title or None, height=260 * rows + 60,
                      margin={"t": 60, "l": 50, "r": 20, "b": 40},
                      legend={"orientation": "h", "y": -0.08})
    return fig


def summary_table(runs: dict[str, JobMetrics]) -> str:
    """Markdown: the last value of each metric per run (labels must be escaped by the
    caller)."""
    keys = [key for key, _ in PANELS if any(key in m.series for m in runs.values())]
    if not runs or not keys:
        return "No metrics recorded yet."
    head = "| run | last step | " + " | ".join(keys) + " |"
    lines = [head, "|" + "---|" * (len(keys) + 2)]
    for label, m in runs.items():
        cells = []
        for key in keys:
            s = m.series.get(key)
            cells.append(f"{s.values[-1]:.4g}" if s and s.values else "–")
        lines.append(f"| {label} | {m.last_step if m.last_step is not None else '–'} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines)
