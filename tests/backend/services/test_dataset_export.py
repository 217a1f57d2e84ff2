"""Stage-made datasets export as Hugging Face datasets (save_to_disk folder and Parquet) that
load back with ``datasets.load_from_disk``; pushing to the Hub happens only online with a repo
id, and offline is refused with a message naming the export folder."""

from __future__ import annotations

import json
from typing import Any

import pytest

from backend.access import Principal, Role, local_admin
from backend.errors import PermissionDeniedError, ValidationError
from backend.services.container import Services
from backend.services.dataset_export import DatasetExportService
from tests.backend.training.conftest import insert_ai_pairs, insert_sl_cai_dataset

ADMIN = local_admin("tester")


def _service(services: Services, online: bool) -> DatasetExportService:
    return DatasetExportService(services.db, services.settings.data_dir / "exports" / "ds",
                                online=lambda: online)


def test_sl_cai_data_exports_and_loads_back(services: Services) -> None:
    from datasets import Dataset, load_from_disk

    dataset_id = insert_sl_cai_dataset(services, n=5)
    done = services.dataset_exports.export(dataset_id, actor=ADMIN)
    loaded = load_from_disk(str(done.hf_dir))
    assert len(loaded) == 5 == done.rows
    assert loaded[0]["revision"] == "Wear lights and bright clothes 0."
    assert loaded[0]["messages"] == [
        {"role": "user", "content": "How can I stay safe while cycling at night 0?"},
        {"role": "assistant", "content": "Wear lights and bright clothes 0."}]
    parquet = Dataset.from_parquet(str(done.parquet))
    assert parquet["prompt"] == loaded["prompt"]
    provenance = json.loads((done.folder / "provenance.json").read_text())
    assert provenance["rows"] == 5 and len(provenance["rows_sha256"]) == 64
    assert json.loads(loaded.info.description)["dataset_id"] == dataset_id


def test_preference_pairs_export_with_chosen_and_rejected(services: Services) -> None:
    from datasets import load_from_disk

    dataset_id = insert_ai_pairs(services, n=4)
    done = services.dataset_exports.export(dataset_id, actor=ADMIN)
    loaded = load_from_disk(str(done.hf_dir))
    assert loaded["p_a"] == [0.2, 0.8, 0.2, 0.8]
    assert loaded[0]["chosen"] == "It is sunny and kind." == loaded[1]["chosen"]
    assert loaded[0]["rejected"] == "Go away."


def test_push_is_refused_offline_naming_the_export_folder(services: Services,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    from datasets import Dataset

    called: list[Any] = []
    monkeypatch.setattr(Dataset, "push_to_hub", lambda self, *a, **k: called.append(a))
    dataset_id = insert_sl_cai_dataset(services, n=3)
    offline = _service(services, online=False)
    with pytest.raises(ValidationError, match="not reachable from here") as exc:
        offline.push(dataset_id, "someone/sl-cai", actor=ADMIN)
    assert str(services.settings.data_dir / "exports" / "ds" / f"sl_cai-{dataset_id}") in \
        exc.value.message
    assert (services.settings.data_dir / "exports" / "ds" / f"sl_cai-{dataset_id}" / "hf"
            ).is_dir()
    assert called == []
    with pytest.raises(ValidationError, match="owner/name"):
        _service(services, online=True).push(dataset_id, " ", actor=ADMIN)
    assert called == []


def test_push_online_calls_push_to_hub_with_the_repo(services: Services,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from datasets import Dataset

    called: list[tuple[Any, ...]] = []
    monkeypatch.setattr(Dataset, "push_to_hub",
                        lambda self, repo, **k: called.append((repo, len(self), k["private"])))
    dataset_id = insert_ai_pairs(services, n=2)
    url = _service(services, online=True).push(dataset_id, "someone/pairs", actor=ADMIN)
    assert called == [("someone/pairs", 2, True)]
    assert url == "https://huggingface.co/datasets/someone/pairs"


def test_viewers_may_not_export(services: Services) -> None:
    dataset_id = insert_sl_cai_dataset(services, n=2)
    with pytest.raises(PermissionDeniedError):
        services.dataset_exports.export(dataset_id, actor=Principal("v", Role.VIEWER))
