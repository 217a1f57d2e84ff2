"""Importing human-labelled pair datasets into the store: the shared formats, dedupe, side
randomisation, provenance (sha256, audit event) and refusals that store nothing."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

from backend.access import local_admin
from backend.errors import ImportFormatError, NotFoundError, ValidationError
from backend.services.container import Services
from backend.services.datasets import DatasetService
from db import dataset_repo as repo
from db.audit_chain import verify_chain
from db.audit_models import AuditEvent
from tests.conftest import SHARED_DATA

AS_ANN = local_admin("ann")

HH = SHARED_DATA / "hh-rlhf" / "harmless-base-test.first2000.jsonl.gz"
HHH = SHARED_DATA / "cai-paper" / "438HHHEvaluations.jsonl"
HVE = SHARED_DATA / "cai-paper" / "HarmfulVsEthical.jsonl"
MAPPING = {"prompt": "q", "response_a": "a", "response_b": "b", "label": "l"}


@pytest.fixture
def ds(services: Services) -> DatasetService:
    return DatasetService(services.db, max_import_bytes=5_000_000)


def _raw(path: Path) -> bytes:
    if not path.is_file():
        pytest.skip(f"shared data not found at {path}")
    return path.read_bytes()


def _jsonl(*rows: dict[str, Any]) -> bytes:
    return "\n".join(json.dumps(r) for r in rows).encode()


def _snapshot(services: Services) -> tuple[int, int, int, str]:
    with services.db.read() as s:
        report = verify_chain(s)
        return (repo.count_datasets(s), repo.count_items(s), report.checked, report.head_hash)


def _last_event(services: Services) -> AuditEvent:
    with services.db.read() as s:
        event = s.exec(select(AuditEvent).order_by(col(AuditEvent.id).desc())).first()
    assert event is not None
    return event


@pytest.mark.parametrize(("path", "fmt", "count", "skipped"), [
    (HH, "hh_rlhf", 1992, {"context_mismatch": 4, "empty_response": 4}),
    (HHH, "hhh_eval", 438, {}),
    (HVE, "harmful_vs_ethical", 254, {}),
], ids=["hh-rlhf", "438", "harmful-vs-ethical"])
def test_each_shared_format_imports(services: Services, ds: DatasetService, path: Path, fmt: str,
                                    count: int, skipped: dict[str, int]) -> None:
    raw = _raw(path)
    info = ds.import_file(path.name, raw, fmt, actor=AS_ANN)
    assert (info.item_count, info.skipped_duplicates, info.skipped) == (count, 0, skipped)
    assert info.source_sha256 == hashlib.sha256(raw).hexdigest()
    assert info.source_format == fmt and info.source_name == path.name
    assert info.name == path.name.split(".jsonl")[0]
    assert ds.get(info.id) == info
    with services.db.read() as s:
        assert repo.count_items(s, dataset_id=info.id) == count
        assert verify_chain(s).ok
    event = _last_event(services)
    assert (event.action, event.entity_type, event.entity_id, event.actor) == \
        ("dataset.import", "pair_dataset", str(info.id), "ann")
    payload = json.loads(event.payload)
    assert payload["sha256"] == info.source_sha256 and payload["format"] == fmt
    assert payload["counts"]["items"] == count and payload["counts"]["duplicates"] == 0


def test_hh_item_matches_the_raw_dialogue(ds: DatasetService) -> None:
    raw = _raw(HH)
    info = ds.import_file(HH.name, raw, "hh_rlhf", actor=AS_ANN)
    row = json.loads(gzip.decompress(raw).decode().split("\n")[0])
    item = ds.items(info.id, limit=1)[0]
    assert item.meta == {"source_line": 1}
    preferred, other = ((item.response_b, item.response_a) if item.swapped
                        else (item.response_a, item.response_b))
    assert "\n\nHuman: " + item.prompt + "\n\nAssistant: " + preferred == row["chosen"]
    assert "\n\nHuman: " + item.prompt + "\n\nAssistant: " + other == row["rejected"]


def test_sides_are_randomised_reproducibly_and_labels_follow(ds: DatasetService) -> None:
    raw = _raw(HH)
    info = ds.import_file(HH.name, raw, "hh_rlhf", actor=AS_ANN, swap_seed=7)
    items = ds.items(info.id, limit=1000) + ds.items(info.id, limit=1000, offset=1000)
    assert len(items) == info.item_count and info.swap_seed == 7
    share = sum(i.swapped for i in items) / len(items)
    assert 0.45 < share < 0.55
    assert all(i.human_label == (0.0 if i.swapped else 1.0) for i in items)
    # the same seed gives the same sides (also for a prefix: per item, not per position)
    again = ds.import_file(HH.name, raw, "hh_rlhf", actor=AS_ANN, swap_seed=7, limit=300)
    assert again.name == info.name + " (2)" and again.item_count == 300
    assert [(i.content_hash, i.swapped) for i in ds.items(again.id, limit=300)] == \
        [(i.content_hash, i.swapped) for i in items[:300]]
    other = ds.import_file(HH.name, raw, "hh_rlhf", actor=AS_ANN, swap_seed=8, limit=300)
    flips = [i.swapped for i in ds.items(other.id, limit=300)]
    assert flips != [i.swapped for i in items[:300]] and 0.4 < sum(flips) / 300 < 0.6


def test_duplicates_ties_and_identical_responses(ds: DatasetService) -> None:
    raw = _jsonl({"q": "p", "a": "x", "b": "y", "l": "A"},
                 {"q": "p", "a": "x", "b": "y", "l": "A"},    # duplicate
                 {"q": "p", "a": "y", "b": "x", "l": "B"},    # the same preference, other sides
                 {"q": "p", "a": "x", "b": "y", "l": "tie"},  # a different judgement: kept
                 {"q": "p", "a": "y", "b": "x", "l": "tie"},  # the same tie
                 {"q": "p", "a": "z", "b": "z", "l": "A"},    # nothing to compare
                 {"q": "p2", "a": "x", "b": "y", "l": "B"})
    info = ds.import_file("pairs.jsonl", raw, "jsonl", actor=AS_ANN, mapping=MAPPING)
    assert (info.item_count, info.skipped_duplicates) == (3, 3)
    assert info.skipped == {"identical_responses": 1} == ds.get(info.id).skipped
    items = ds.items(info.id)
    assert [i.meta["source_line"] for i in items] == [1, 4, 7]
    assert items[1].human_label == 0.5
    last = items[2]
    assert (last.response_b if last.swapped else last.response_a) == "y"
    assert last.human_label == (0.0 if last.swapped else 1.0)
    assert len({i.content_hash for i in items}) == 3


def test_generic_csv_with_renamed_columns(ds: DatasetService) -> None:
    raw = ("question,good,bad,winner,topic\nq1,a1,b1,A,t1\n"
           "q2,a2,b2,B,t2\nq3,a3,b3,tie,t3\n").encode("utf-8-sig")
    info = ds.import_file("votes.csv", raw, "csv", actor=AS_ANN, swap_seed=3, mapping={
        "prompt": "question", "response_a": "good", "response_b": "bad", "label": "winner",
        "meta": ["topic"]})
    assert (info.name, info.source_format, info.item_count) == ("votes", "generic_csv", 3)
    items = ds.items(info.id)
    winners = [(i.response_b if i.swapped else i.response_a) for i in items]
    assert winners[:2] == ["a1", "b2"] and items[2].human_label == 0.5
    assert items[0].meta == {"topic": "t1", "source_line": 2}


_OK = {"q": "fine", "a": "x", "b": "y", "l": "A", "note": "ok"}
BAD: list[tuple[str, bytes, tuple[str, ...]]] = [
    ("bad json", _jsonl(_OK) + b"\n{nope", ("line 2", "JSON")),
    ("missing field", _jsonl(_OK, {"q": "p", "a": "x", "l": "A"}), ("line 2", "'b'")),
    ("binary", b"\x00\x01\x02\x03", ("binary",)),
    ("control character", _jsonl(_OK, {**_OK, "q": "ring \u0007 bell"}), ("line 2", "U+0007")),
    ("bidi control", _jsonl(_OK, {**_OK, "a": "abc \u202e def"}), ("line 2", "U+202E")),
    ("escape sequence", _jsonl(_OK, {**_OK, "b": "\u001b[31mred"}), ("line 2", "U+001B")),
    ("too long", _jsonl(_OK, {**_OK, "q": "x" * 20_001}), ("line 2", "20,000")),
    ("empty prompt", _jsonl(_OK, {**_OK, "q": "  "}), ("line 2", "empty")),
    ("bad label", _jsonl(_OK, {**_OK, "l": "C"}), ("line 2", "'C'")),
    ("control character in meta", _jsonl(_OK, {**_OK, "note": "a\u0000b"}), ("line 2", "U+0000")),
    ("no pairs", b"\n\n", ("no usable pairs",)),
    ("oversized", b"x" * 5_000_001, ("5,000,000 bytes",)),
]


@pytest.mark.parametrize(("raw", "needles"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_malformed_files_store_nothing(services: Services, ds: DatasetService, raw: bytes,
                                       needles: tuple[str, ...]) -> None:
    before = _snapshot(services)
    with pytest.raises(ImportFormatError) as info:
        ds.import_file("bad.jsonl", raw, "jsonl", actor=AS_ANN,
                       mapping={**MAPPING, "meta": ["note"]})
    for needle in needles:
        assert needle in str(info.value)
    assert _snapshot(services) == before


def test_bad_line_at_the_end_of_a_real_file_stores_nothing(services: Services,
                                                           ds: DatasetService) -> None:
    raw = _raw(HHH) + _jsonl({"prompt": "x", "corrects": [" (A)"], "incorrects": [" (B)"]})
    before = _snapshot(services)
    with pytest.raises(ImportFormatError, match="line 439"):
        ds.import_file(HHH.name, raw, "hhh_eval", actor=AS_ANN)
    assert _snapshot(services) == before


def test_names_are_unique(services: Services, ds: DatasetService) -> None:
    raw = _jsonl(_OK)
    first = ds.import_file("dir/my pairs.jsonl", raw, "jsonl", actor=AS_ANN, mapping=MAPPING)
    second = ds.import_file("my pairs.jsonl", raw, "jsonl", actor=AS_ANN, mapping=MAPPING)
    assert (first.name, second.name) == ("my pairs", "my pairs (2)")
    before = _snapshot(services)
    with pytest.raises(ValidationError, match="already exists"):
        ds.import_file("x.jsonl", raw, "jsonl", actor=AS_ANN, mapping=MAPPING, name="my pairs")
    assert _snapshot(services) == before
    assert ds.find("my pairs (2)") == second
    assert [d.name for d in ds.list_all()] == ["my pairs (2)", "my pairs"]


def test_browse_and_sample(ds: DatasetService) -> None:
    raw = _jsonl(*({"q": f"p{i}", "a": "x", "b": "y", "l": "A"} for i in range(50)))
    info = ds.import_file("fifty.jsonl", raw, "jsonl", actor=AS_ANN, mapping=MAPPING)
    page = ds.items(info.id, limit=10, offset=20)
    assert [i.position for i in page] == list(range(20, 30))
    assert [i.prompt for i in page] == [f"p{i}" for i in range(20, 30)]
    sample = ds.sample(info.id, 10, seed=1)
    assert len(sample) == len(set(sample)) == 10 and sample == sorted(sample)
    assert ds.sample(info.id, 10, seed=1) == sample != ds.sample(info.id, 10, seed=2)
    assert len(ds.sample(info.id, 500)) == 50
    picked = ds.items_by_ids([sample[3], sample[0], 10**9])
    assert [i.id for i in picked] == [sample[3], sample[0]]
    with pytest.raises(NotFoundError):
        ds.get(10**9)
    with pytest.raises(ValidationError):
        ds.sample(info.id, 0)


def test_hub_import_offline_stores_nothing(services: Services, ds: DatasetService,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    before = _snapshot(services)
    with pytest.raises(ImportFormatError, match="offline"):
        ds.import_hub("Anthropic/hh-rlhf", data_dir="harmless-base", actor=AS_ANN)
    assert _snapshot(services) == before
