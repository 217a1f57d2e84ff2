"""Prompt sets as stored objects (issue 13 point 6) and the built-in set (issue 14 point 1)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from sqlmodel import select

from backend.access import Principal, Role, local_admin
from backend.errors import ImportFormatError, PermissionDeniedError, ValidationError
from backend.services import container
from backend.services.container import Services, start
from backend.services.prompt_sets import BUILTIN_FILE
from backend.settings import Settings
from db.models import AuditEvent

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


@pytest.mark.parametrize(("raw", "fmt", "message"), [
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "auto", "not UTF-8|NUL"),
    (b'{"question": "no prompt field"}\n', "auto", "line 1 has no 'prompt'"),
    (b'{"prompt": "ok"}\n{broken\n', "prompts_jsonl", "line 2 is not JSON"),
    (b'{"prompt": "ok"}\n', "hh_rlhf", "no 'chosen' dialogue"),
    (b'{"prompt": "x", "tags": "not a list"}\n', "auto", "'tags' must be a list"),
    (b"\n\n", "auto", "empty"),
    (b"\x1f\x8b\x08\x00broken", "auto", "not a valid gzip"),
    (b"x\n", "yaml", "Unknown prompt-set format"),
])
def test_a_wrong_format_is_refused_at_import(services: Services, raw: bytes, fmt: str,
                                             message: str) -> None:
    with pytest.raises(ImportFormatError, match=message):
        services.prompt_sets.import_bytes("bad.jsonl", raw, actor=ADMIN, fmt=fmt)
    assert len(services.prompt_sets.list_all()) == 1  # only the built-in set


def test_a_gzip_bomb_is_refused_without_unpacking_it_all(settings: Settings) -> None:
    settings = settings.model_copy(update={"max_dataset_bytes": 1_000_000})
    services = start(settings)
    try:
        bomb = gzip.compress(b"A" * 50_000_000)  # 50 MB of output from ~50 KB
        assert len(bomb) < 1_000_000
        with pytest.raises(ImportFormatError, match="unpacks to more than 1,000,000 bytes"):
            services.prompt_sets.import_bytes("bomb.jsonl.gz", bomb, actor=ADMIN)
        with pytest.raises(ImportFormatError, match="import limit is 1,000,000"):
            services.prompt_sets.import_bytes("big.txt", b"q\n" * 600_000, actor=ADMIN)
    finally:
        services.close()


def test_only_roles_that_launch_jobs_import(services: Services) -> None:
    with pytest.raises(PermissionDeniedError, match="may not launch jobs"):
        services.prompt_sets.import_bytes("a.txt", b"q?\n", actor=Principal("v", Role.AUTHOR))


def test_jobs_refer_to_prompt_sets_by_id_never_a_path(services: Services) -> None:
    for ref in ("/etc/shadow", "../x.jsonl", "prompts.jsonl"):
        with pytest.raises(ValidationError, match="is not a prompt set id"):
            services.jobs.create("sl_cai_data", {"prompt_set": ref}, actor=ADMIN)
    with pytest.raises(ValidationError, match="no prompt set 4242"):
        services.jobs.create("sl_cai_data", {"prompt_set": "4242"}, actor=ADMIN)
    mine = services.prompt_sets.import_bytes("a.txt", b"q?\n", actor=ADMIN)
    job = services.jobs.create("sl_cai_data", {"prompt_set": str(mine.id)}, actor=ADMIN)
    assert str(job.config["prompt_set"]) == str(mine.id)


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
