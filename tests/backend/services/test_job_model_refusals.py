"""A job whose model cannot be loaded is refused when it is queued (issue 14, point 7), not a
minute later when the stage tries to download it."""

from __future__ import annotations

import pytest

from backend.access import local_admin
from backend.errors import ValidationError
from backend.services.container import Services
from backend.training import models
from tests.backend.services.test_jobs import sft_config, sl_cai_dataset

ADMIN = local_admin("tester")


def test_a_hub_id_is_refused_while_offline(services: Services) -> None:
    dataset = sl_cai_dataset(services)
    with pytest.raises(ValidationError) as caught:
        services.jobs.create("sft", sft_config(dataset, model="nobody/no-such-model"),
                             actor=ADMIN)
    assert any(p.startswith("model:") and "offline" in p for p in caught.value.problems)
    assert services.jobs.list_jobs(limit=5)[1] == 0


def test_a_hub_id_is_refused_when_the_hub_cannot_be_reached(
        services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(models, "hub_reachable", lambda timeout_s=3.0: False)
    dataset = sl_cai_dataset(services)
    with pytest.raises(ValidationError) as caught:
        services.jobs.create("sft", sft_config(dataset, model="nobody/no-such-model"),
                             actor=ADMIN)
    assert any("cannot be reached" in p for p in caught.value.problems)
    assert services.jobs.list_jobs(limit=5)[1] == 0


def test_hub_reachable_says_no_for_a_closed_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    assert models.hub_reachable(timeout_s=1.0) is False
