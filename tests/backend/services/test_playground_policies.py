"""The Playground with a picked policy (issue 16 point 1): previews, verdicts and samples come
from a finished job's model (loaded once, kept while used), a side-by-side shows two policies
on the same prompt, and a folder path cannot be opened from a link or the API."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from backend.access import local_admin
from backend.cai.critique_loop import LoopConfig
from backend.cai.labeling import LabelConfig, PairItem
from backend.engines.base import GenerationParams
from backend.errors import ValidationError
from backend.services.container import Services
from studio.compare_charts import playground_link, playground_links
from studio.playground_handlers import PlaygroundHandlers
from tests.backend.services.comparison_data import finished_sft_job, perturbed_checkpoint

pytestmark = pytest.mark.slow
OWNER = local_admin("owner")
HOSTILE = '<img src=x onerror="window.__xss=1">'
PARAMS = GenerationParams(max_tokens=4)


@pytest.fixture
def with_job(services: Services, tiny_engine: Any, tiny_model_path: Path,
             tmp_path_factory: pytest.TempPathFactory) -> tuple[Services, int]:
    services.engines.use(tiny_engine, "tiny test model")
    ckpt = perturbed_checkpoint(tiny_model_path,
                                tmp_path_factory.getbasetemp() / "tiny-perturbed")
    return services, finished_sft_job(services, ckpt, name=HOSTILE)


def test_a_job_policy_answers_critiques_and_judges(with_job: tuple[Services, int]) -> None:
    services, job_id = with_job
    pg = services.playground
    assert pg.policies is not None
    version = services.constitutions.list_all()[0].head.id
    config = LoopConfig(rounds=1, response_params=PARAMS, critique_params=PARAMS,
                        revision_params=PARAMS)
    events = [e for e in pg.preview(version, "Hi?", config, actor=OWNER, policy=f"job:{job_id}")
              if e.done]
    assert [e.kind for e in events] == ["response", "critique", "revision"]
    models = {services.critique_log.get(e.record_id or 0).model  # type: ignore[union-attr]
              for e in events}
    base_event = next(e for e in pg.preview(version, "Hi?", config, actor=OWNER) if e.done)
    base_model = services.critique_log.get(base_event.record_id or 0).model  # type: ignore[union-attr]
    assert base_model not in models  # the job's model answered, not the base model
    assert pg.policies.loaded() == [f"job:{job_id}"]  # loaded once, kept for the next call

    result = pg.verdict(version, PairItem("q", "a", "b"), LabelConfig(both_orders=False),
                        actor=OWNER, policy=f"job:{job_id}")
    assert result.engine.model != base_model and result.verdict.scored
    assert len(pg.sample_responses("q", actor=OWNER, max_tokens=3,
                                   policy=f"job:{job_id}")) == 2
    assert pg.policies.loaded() == [f"job:{job_id}"]

    with pytest.raises(ValidationError, match="model folder"):
        pg.policies.resolve(str(services.settings.data_dir))
    with pytest.raises(ValidationError, match="no job 999"):
        pg.policies.resolve("job:999")


def test_side_by_side_and_links(with_job: tuple[Services, int]) -> None:
    services, job_id = with_job
    h = PlaygroundHandlers(services)

    class Request:
        def __init__(self, policy: str) -> None:
            self.query_params = {"policy": policy}

    first, second = h.policy_choices(Request(f"job:{job_id}"))  # type: ignore[arg-type]
    assert first["value"] == f"job:{job_id}" and second["value"] == f"job:{job_id}"
    assert [ref for _, ref in first["choices"]] == ["base", f"job:{job_id}"]
    assert h.policy_choices(Request("/etc"))[0]["value"] == "base"  # type: ignore[arg-type]

    version = services.constitutions.list_all()[0].head.id
    frames = list(h.side_by_side(None, version, "sample", f"Hi {HOSTILE}", 1, 4, 0.0, 0,  # type: ignore[arg-type]
                                 "chat", "base", f"job:{job_id}"))
    left, right = frames[-1]
    assert left.startswith("Policy: **base · ")
    assert right.startswith(f"Policy: **job\\:{job_id} sft · \\<img")
    for side in (left, right):
        assert "Round 1 · revision" in side and "critique log record" in side
        assert not re.search(r"(?<!\\)<img", side)
    assert frames[0][1] == ""  # the first policy streams, then the second

    links = playground_links([("base", "base · tiny"), (f"job:{job_id}", HOSTILE),
                              ("/some/folder", "local · folder")])
    assert f"(?policy=job%3A{job_id})" in links and "folder" not in links
    assert not re.search(r"(?<!\\)<img", links)
    assert playground_link("/x", "x") is None
