"""Pipelines tab handlers against real services (no browser): the form's choices become the
launched stages' configs."""

from __future__ import annotations

import pytest

from backend.services.container import Services
from studio.pipeline_handlers import PipelineHandlers
from tests.studio.engine_stub import DescribedEngine


@pytest.mark.parametrize("source", ["labeller", "revisions"])
def test_the_preference_source_reaches_the_preference_stage(services: Services,
                                                            source: str) -> None:
    h = PipelineHandlers(services)
    message, _ = h.launch(None, "mine", None, "tiny", "default", 4, 2, 2,  # type: ignore[arg-type]
                          "grpo", "cpu", "", source)
    assert "Queued pipeline" in message
    info = services.pipelines.list_all()[0]
    config = info.job_of("preference_data").config
    assert config["source"] == source
    expected = f"job:{info.job_of('sl_cai_data').id}" if source == "revisions" else None
    assert config["sl_cai_dataset_id"] == expected
    rows = h.view(info.id)[1]
    title = "Preference pairs (SL-CAI revisions)" if source == "revisions" else \
        "AI preference labels"
    assert rows[2][0] == title


def test_the_base_model_starts_at_the_studio_model(services: Services) -> None:
    h = PipelineHandlers(services)
    services.engines.use(DescribedEngine("smollm2", "SmolLM2-135M-Instruct"))
    assert h.load()[2]["value"] == "smollm2"
    services.engines.use(DescribedEngine("tiny", "tiny", is_demo=True))
    assert h.load()[2]["value"] == "tiny"  # a studio on the demo model
