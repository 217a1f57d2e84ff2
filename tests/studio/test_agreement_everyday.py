"""Agreement tab, issue 14: an empty sample size means all items (not 0), the reliability
chart's legend stays clear of its axis title, and the disagreement browser shows long text
as wrapped prose with responses A and B side by side."""

from __future__ import annotations

import numpy as np

from backend.cai import metrics
from backend.services.agreement import Report
from studio.agreement_charts import reliability_figure
from studio.agreement_handlers import sample_size
from studio.render import side_by_side


def test_sample_size_box() -> None:
    assert sample_size("") is None and sample_size(None) is None and sample_size(" ") is None
    assert sample_size("50") == 50 and sample_size(50.0) == 50
    for bad in ("0", "-3", "2.5", "lots"):
        message = sample_size(bad)
        assert isinstance(message, str) and "empty for all" in message


def test_reliability_legend_is_above_the_plot() -> None:
    summary = metrics.agreement_report(np.array([0.9, 0.2, 0.7, 0.4]),
                                       np.array([1.0, 0.0, 0.0, 1.0]), n_boot=20, seed=0)
    fig = reliability_figure(Report(1, summary, summary.per_principle, None))
    legend = fig.layout.legend
    assert legend.orientation == "h" and legend.yanchor == "bottom" and legend.y >= 1.0
    assert fig.layout.margin.b >= 50 and fig.layout.margin.t >= 80


def test_responses_side_by_side_are_escaped() -> None:
    table = side_by_side("<b>left</b> | pipe", "right\nsecond line")
    header, rule, row = table.split("\n")
    assert header == "| Response A | Response B |" and rule == "|---|---|"
    assert row == "| \\<b\\>left\\</b\\> \\| pipe | right second line |"
