"""Job directories for the stage tests: job.json as the job service writes it, run in process
through the entry point (the subprocess path is the job system's to test)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from backend.access import local_admin
from backend.services.container import Services
from backend.training import entry

AS_TESTER = local_admin("tester")

MakeJob = Callable[..., Path]


@pytest.fixture
def make_job(services: Services) -> MakeJob:
    counter = iter(range(1, 10_000))

    def _make(kind: str, config: dict[str, Any], *, job_id: int | None = None,
              seed: int = 0) -> Path:
        jid = job_id if job_id is not None else next(counter)
        prompt_file = config.get("prompt_set")
        if isinstance(prompt_file, str) and Path(prompt_file).is_file():
            # prompt sets are stored objects: import the test's file, refer to it by id
            stored = services.prompt_sets.import_bytes(
                prompt_file, Path(prompt_file).read_bytes(), actor=AS_TESTER)
            config = {**config, "prompt_set": str(stored.id)}
        job_dir = services.settings.data_dir / "jobs" / str(jid)
        job_dir.mkdir(parents=True, exist_ok=True)
        (job_dir / "job.json").write_text(json.dumps({
            "job_id": jid, "kind": kind, "config": config,
            "database_url": services.settings.resolved_database_url(),
            "data_dir": str(services.settings.data_dir), "seed": seed}), encoding="utf-8")
        return job_dir

    return _make


def run_job(job_dir: Path) -> int:
    return entry.main(["--job-dir", str(job_dir)])


def metrics_lines(job_dir: Path) -> list[dict[str, Any]]:
    path = job_dir / "metrics.jsonl"
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return [line for line in lines if "format_version" not in line]


def result(job_dir: Path) -> dict[str, Any]:
    data = json.loads((job_dir / "result.json").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def manifest(job_dir: Path) -> dict[str, Any]:
    data = json.loads((job_dir / "manifest.json").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def assert_manifest_complete(job_dir: Path, *, datasets: tuple[str, ...] = ()) -> dict[str, Any]:
    m = manifest(job_dir)
    assert m["status"] == "succeeded"
    assert m["started_at"] and m["ended_at"]
    for pkg in ("python", "torch", "transformers", "trl", "peft", "accelerate"):
        assert m["packages"][pkg], pkg
    assert "git_commit" in m  # null outside a git checkout
    assert m["seeds"]["seed"] is not None
    assert m["config"] and len(m["config_sha256"]) == 64
    assert m["host"]
    for role in datasets:
        assert role in m["datasets"], (role, m["datasets"])
    return m


def insert_sl_cai_dataset(services: Services, n: int = 8) -> int:
    from db import training_repo

    with services.db.write() as s:
        row = training_repo.create_dataset(
            s, kind="sl_cai", name="test sl-cai", job_id=None, constitution_version_id=None,
            model="test", config={}, source="test", source_sha256="0" * 64, created_by="tester")
        assert row.id is not None
        training_repo.insert_sl_cai_samples(s, dataset_id=row.id, rows=[
            {"position": i, "prompt": f"How can I stay safe while cycling at night {i}?",
             "response": "ride fast", "revision": f"Wear lights and bright clothes {i}.",
             "chain_id": f"c{i}", "record_ids": [], "principle_keys": ["k"],
             "content_hash": f"{i:064d}"} for i in range(n)])
        return row.id


def insert_ai_pairs(services: Services, n: int = 8) -> int:
    from db import training_repo

    with services.db.write() as s:
        row = training_repo.create_dataset(
            s, kind="preference", name="test pairs", job_id=None, constitution_version_id=None,
            model="test", config={}, source="test", source_sha256="0" * 64, created_by="tester")
        assert row.id is not None
        training_repo.insert_ai_pairs(s, dataset_id=row.id, rows=[
            {"position": i, "prompt": f"Tell me about the weather {i}.",
             "response_a": "It is sunny and kind." if i % 2 else "Go away.",
             "response_b": "Go away." if i % 2 else "It is sunny and kind.",
             "p_a": 0.8 if i % 2 else 0.2, "verdict_chain_id": f"v{i}",
             "response_record_ids": [], "verdict_record_ids": [], "principle_keys": ["k"],
             "variants": [], "content_hash": f"{i:064d}"} for i in range(n)])
        return row.id


def import_human_pairs(services: Services, n: int = 12) -> int:
    """A small HH-RLHF style file imported through the dataset importer."""
    lines = []
    for i in range(n):
        prompt = f"\n\nHuman: Can you help me with chore number {i}?\n\nAssistant:"
        lines.append(json.dumps({"chosen": prompt + f" Sure, here is a careful plan {i}.",
                                 "rejected": prompt + f" No. Figure it out {i}."}))
    info = services.datasets.import_file("pairs.jsonl", "\n".join(lines).encode(), "hh_rlhf",
                                         actor=AS_TESTER)
    return info.id


def state_dict_changed(before: Path, after: Path) -> bool:
    import torch
    from safetensors.torch import load_file

    a = load_file(str(before / "model.safetensors"))
    b = load_file(str(after / "model.safetensors"))
    shared = [k for k in a if k in b and a[k].shape == b[k].shape]
    assert shared
    return any(not torch.equal(a[k], b[k]) for k in shared)


@pytest.fixture(scope="session")
def tiny_reward_path(tiny_model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A reward model (one-output sequence classifier) on the tiny model's backbone."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    out = tmp_path_factory.mktemp("models") / "tiny-rm"
    model = AutoModelForSequenceClassification.from_pretrained(str(tiny_model_path), num_labels=1)
    model.save_pretrained(str(out))
    AutoTokenizer.from_pretrained(str(tiny_model_path)).save_pretrained(str(out))
    return out
