"""Prompt sets as stored objects (issue 13 point 6) and the built-in set (issue 14 point 1)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from sqlmodel import select

from backend.access import local_admin
from backend.services import container
from backend.services.container import Services, start
from backend.services.prompt_sets import BUILTIN_FILE
from backend.settings import Settings
from db.audit_models import AuditEvent

ADMIN = local_admin("owner")


def test_the_builtin_set_is_written_by_the_project_tagged_and_seeded(services: Services
                                                                     ) -> None:
    rows = [json.loads(line) for line in BUILTIN_FILE.read_text("utf-8").splitlines()]
    assert len(rows) >= 60
    tags = [set(r["tags"]) for r in rows]
    assert sum("red-team" in t for t in tags) >= 20 and sum("helpful" in t for t in tags) >= 20
    assert all(len(t) >= 2 for t in tags)  # a kind and a topic each
    sets = services.prompt_sets.list_all()
    assert [s.builtin for s in sets] == [True]
    assert sets[0].prompt_count == len(rows)
    assert services.prompt_sets.prompts("default")[0] == rows[0]["prompt"]
    again = services.prompt_sets.seed_builtin(actor=ADMIN)  # idempotent
    assert again.id == sets[0].id and len(services.prompt_sets.list_all()) == 1


def test_import_formats_are_detected_and_recorded(services: Services) -> None:
    ps = services.prompt_sets
    text = ps.import_bytes("mine.txt", b"First question?\n\nSecond question?\n", actor=ADMIN)
    assert (text.source_format, text.prompt_count, text.name) == ("text", 2, "mine")
    hh = json.dumps({"chosen": "\n\nHuman: Hi?\n\nAssistant: Hello", "rejected": "x"})
    dialogues = ps.import_bytes("hh.jsonl.gz", gzip.compress(hh.encode()), actor=ADMIN)
    assert dialogues.source_format == "hh_rlhf" and ps.prompts(dialogues.id) == ["Hi?"]
    with services.db.read() as s:
        events = s.exec(select(AuditEvent).where(AuditEvent.action == "prompt_set.import")
                        ).all()
    assert len(events) == 3  # the built-in set and these two


def test_without_the_shared_data_the_defaults_still_work(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    """A user's machine: no ../shared. The Playground's demo prompts are the built-in set and
    an SL-CAI data job with the default prompt set validates."""
    monkeypatch.setattr(container, "default_prompt_set_path", lambda: None)
    monkeypatch.delenv("CSTUDIO_PROMPT_SET_PATH", raising=False)
    services = start(Settings(data_dir=tmp_path / "data", prompt_set_path=None))
    try:
        prompts = services.playground.prompt_set()
        assert len(prompts) >= 60
        assert any("wifi" in p for p in prompts)
        job = services.jobs.create("sl_cai_data", {}, actor=ADMIN)
        assert job.config["prompt_set"] == "default"
    finally:
        services.close()
