"""Issue 13 point 6: prompt sets are imported, never arbitrary paths. A wrong format is refused
at import (never a traceback from a queued job), a gzip bomb is refused after the size limit
of unpacked bytes, and job configs name prompt sets by id (a server path such as /etc/shadow
is refused at queue time: no file-existence oracle)."""

from __future__ import annotations

import gzip

import pytest

from backend.access import Principal, Role, local_admin
from backend.errors import ImportFormatError, PermissionDeniedError, ValidationError
from backend.services.container import Services, start
from backend.settings import Settings

ADMIN = local_admin("owner")


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
