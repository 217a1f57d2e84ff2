"""Compare tab handlers: launching needs two policies, the report fills the charts, and the
side-by-side browser shows model and prompt text only inside fenced blocks."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from backend.access import local_admin
from backend.services.comparisons import ComparisonConfig, PromptItem
from backend.services.container import Services
from studio.compare_handlers import CompareHandlers
from tests.backend.services.comparison_data import finished_sft_job, perturbed_checkpoint

pytestmark = pytest.mark.slow
OWNER = local_admin("owner")
HOSTILE = '<img src=x onerror="window.__xss=1"> **bold** [l](javascript:x)'


def test_report_and_browser(services: Services, tiny_engine: Any, tiny_model_path: Path,
                            tmp_path_factory: pytest.TempPathFactory) -> None:
    services.engines.use(tiny_engine, "tiny test model")
    job_id = finished_sft_job(services, perturbed_checkpoint(
        tiny_model_path, tmp_path_factory.getbasetemp() / "tiny-perturbed"), name=HOSTILE)
    h = CompareHandlers(services)
    policies, _, _, _, rewards, _ = h.load()
    assert policies["value"] == ["base", f"job:{job_id}"]
    assert rewards["choices"] == []
    assert "Pick two or more" in h.launch(None, ["base"], 1, "", 2, 4, False, True, 1, 0)[0]  # type: ignore[arg-type]

    version = services.constitutions.list_all()[0].head.id
    info = services.comparisons.create(
        policies=["base", f"job:{job_id}"], version_id=version, actor=OWNER,
        config=ComparisonConfig(max_new_tokens=6, cot=True, both_orders=False),
        prompts=[PromptItem(f"prompt {HOSTILE}", ("helpful",))])
    services.comparisons.run(info.id, actor=OWNER)

    summary, win_rate, axes, principles = h.report(info.id)
    assert "1 judged pairs" in summary and "\\<img" in summary
    assert not re.search(r"(?<!\\)<img", summary)  # the job name is escaped
    assert win_rate is not None and axes is not None and principles is not None
    assert "‹img" in str(win_rate.data[0].x)  # labels lose their angle brackets in figures
    assert "Helpfulness Elo" in axes.layout.title.text

    shown = h.browse(info.id, 1)
    assert "**1 judged pairs**" in shown and "Chain of thought" in shown
    outside_fences = shown.split("```")[::2]
    assert not any(re.search(r"(?<!\\)<img", part) for part in outside_fences)
    assert f"```text\nprompt {HOSTILE}\n```" in shown
    assert "Comparison #" in h.progress(info.id) and "done" in h.progress(info.id)
    changed = h.changes(info.id, info.id)  # against itself: nothing moved
    assert "| +0 |" in changed and not re.search(r"(?<!\\)<img", changed)
    assert "Pick a comparison and an earlier one" in h.changes(info.id, None)


def test_parsed_judge_is_marked_in_results(services: Services, tiny_engine: Any,
                                           tiny_model_path: Path,
                                           tmp_path_factory: pytest.TempPathFactory) -> None:
    """A comparison judged by parsed answers (no logprobs): hard labels, marked in the
    summary and on every pair of the browser; an unparseable answer is a marked tie."""
    services.engines.use(tiny_engine, "tiny test model")
    job_id = finished_sft_job(services, perturbed_checkpoint(
        tiny_model_path, tmp_path_factory.getbasetemp() / "tiny-perturbed"))
    version = services.constitutions.list_all()[0].head.id
    h = CompareHandlers(services)
    started = h.launch(None, ["base", f"job:{job_id}"], version, "", 2, 4, False, True, 1, 0,  # type: ignore[arg-type]
                       [], "parsed")
    assert "Started comparison #" in started[0]
    info = services.comparisons.wait(services.comparisons.list_all()[0].id, timeout=300)
    assert info.status == "done" and info.config.judge == "parsed"
    report = services.comparison_reports.report(info.id, n_boot=50)
    assert report.judge == "parsed"
    pairs, _ = services.comparison_reports.pairs(info.id)
    assert all(p.hard for p in pairs) and all(p.p_a in (0.0, 0.5, 1.0) for p in pairs)
    # the random-weights model rarely writes (A) or (B): its ties are counted as unparsed
    assert report.unparsed == sum(1 for p in pairs if p.unparsed)
    summary = h.report(info.id)[0]
    assert "**Judge: parsed answers.** HARD labels" in summary
    assert f"{report.unparsed} of {report.verdicts} verdicts" in summary
    shown = h.browse(info.id, 1)
    assert shown.count("hard label (parsed)") == len(pairs)
