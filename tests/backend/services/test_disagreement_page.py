"""The disagreement browser pages in SQL and gives what filtering every verdict in Python gives
(the former implementation, kept here as the reference)."""

from __future__ import annotations

import random

import pytest

from backend.cai import metrics
from backend.services.container import Services
from db.evaluation_models import Evaluation, VerdictRow
from tests.backend.services.agreement_data import add_dataset

KEYS = ["harm", "honesty", "care"]


def _store(services: Services, n: int, most_keys: int) -> int:
    ds = add_dataset(services, n)
    rng = random.Random(7)
    version = services.constitutions.list_all()[0].head.id
    with services.db.write() as s:
        from db import dataset_repo

        ids = dataset_repo.item_ids(s, dataset_id=ds)
        ev = Evaluation(name="e", dataset_id=ds, constitution_version_id=version,
                        engine_kind="tiny", model="m", item_ids=ids, status="done",
                        done_count=n, total_count=n, created_by="t")
        s.add(ev)
        s.flush()
        assert ev.id is not None
        for item in ids:  # ORM inserts: the page fields come from the before-insert hook
            p = rng.choice([0.5, 0.2, 0.8, rng.random(), rng.random()])
            s.add(VerdictRow(evaluation_id=ev.id, item_id=item, p_a=p,
                             principle_keys=rng.sample(KEYS, rng.randint(1, most_keys)),
                             variants=[{"cot": "because"}], record_ids=[item]))
        return ev.id


def _reference(services: Services, run: int, principle: str | None, lo: float, hi: float,
               human: float | None, only: bool) -> list[int]:
    with services.db.read() as s:
        from db import dataset_repo, evaluation_repo

        verdicts = evaluation_repo.evaluation_verdicts(s, evaluation_id=run)
        items = {r.id: r for r in dataset_repo.items_by_ids(s, ids=[v.item_id for v in verdicts])}
    out = []
    for v in sorted(verdicts, key=lambda v: (-max(v.p_a, 1 - v.p_a), -v.item_id)):
        item = items[v.item_id]
        if principle and principle not in v.principle_keys:
            continue
        if not lo <= max(v.p_a, 1 - v.p_a) <= hi:
            continue
        if human is not None and item.human_label != human:
            continue
        if only and metrics.item_scores([v.p_a], [item.human_label])[0] == 1.0:
            continue
        out.append(v.item_id)
    return out


@pytest.mark.parametrize("most_keys", [1, 2])  # k = 1 (indexed principle) and ensembles
@pytest.mark.parametrize(("principle", "lo", "hi", "human", "only"), [
    (None, 0.5, 1.0, None, True), (None, 0.5, 1.0, None, False), ("care", 0.5, 1.0, None, True),
    ("harm", 0.6, 0.9, 0.0, False), (None, 0.5, 0.5, None, True), (None, 0.7, 1.0, 1.0, True)])
def test_pages_match_the_python_reference(services: Services, principle: str | None,
                                          lo: float, hi: float, human: float | None,
                                          only: bool, most_keys: int) -> None:
    run = _store(services, 60, most_keys)
    expected = _reference(services, run, principle, lo, hi, human, only)
    got: list[int] = []
    for offset in range(0, 70, 7):
        rows, total = services.agreement.disagreements(
            run, principle=principle, min_confidence=lo, max_confidence=hi, human_label=human,
            only_disagreements=only, limit=7, offset=offset)
        assert total == len(expected)
        got += [r.item_id for r in rows]
    assert got == expected
    if expected:
        first, _ = services.agreement.disagreements(
            run, principle=principle, min_confidence=lo, max_confidence=hi, human_label=human,
            only_disagreements=only, limit=1)
        assert first[0].cot == ["because"] and first[0].record_ids == [first[0].item_id]


# Confidences on and next to the 0.01 bucket edges (0.29 * 100 is 28.999..., 0.57 * 100 is
# 56.999...), 1.0 itself, and ranges that start and end inside, on and between buckets.
EDGE_P = [0.29, 0.71, 0.57, 0.43, 0.6, 0.4, 0.605, 0.0, 1.0, 0.5, 0.7, 0.3, 0.8999, 0.1001]


@pytest.mark.parametrize(("lo", "hi"), [(0.5, 1.0), (0.57, 0.71), (0.571, 0.709), (0.6, 0.6),
                                        (0.605, 0.605), (0.58, 0.59), (0.5, 0.99), (1.0, 1.0)])
@pytest.mark.parametrize("human", [None, 1.0])
def test_counts_from_buckets_match_the_rows(services: Services, lo: float, hi: float,
                                            human: float | None) -> None:
    """The match count read from verdict_count (whole buckets + edge counts) equals the number
    of rows the pages give, for confidences on the bucket edges."""
    ds = add_dataset(services, len(EDGE_P) * 3)
    version = services.constitutions.list_all()[0].head.id
    with services.db.write() as s:
        from db import dataset_repo

        ids = dataset_repo.item_ids(s, dataset_id=ds)
        ev = Evaluation(name="e", dataset_id=ds, constitution_version_id=version,
                        engine_kind="tiny", model="m", item_ids=ids, status="done",
                        done_count=len(ids), total_count=len(ids), created_by="t")
        s.add(ev)
        s.flush()
        assert ev.id is not None
        for n, item in enumerate(ids):
            s.add(VerdictRow(evaluation_id=ev.id, item_id=item, p_a=EDGE_P[n % len(EDGE_P)],
                             principle_keys=[KEYS[n % 2]], variants=[], record_ids=[]))
        run = ev.id
    for principle in (None, "harm"):
        for only in (True, False):
            expected = _reference(services, run, principle, lo, hi, human, only)
            rows, total = services.agreement.disagreements(
                run, principle=principle, min_confidence=lo, max_confidence=hi,
                human_label=human, only_disagreements=only, limit=100)
            assert [r.item_id for r in rows] == expected
            assert total == len(expected), (principle, only)


def test_trigger_buckets_match_the_python_rule(services: Services) -> None:
    """verdict_count's buckets (computed by the insert trigger in SQL) are the ones
    ``confidence_bucket`` gives, also for values whose product with 100 rounds down."""
    from sqlalchemy import select

    from db.evaluation_models import VerdictCount
    from db.evaluation_repo import confidence_bucket

    ds = add_dataset(services, len(EDGE_P))
    version = services.constitutions.list_all()[0].head.id
    with services.db.write() as s:
        from db import dataset_repo

        ids = dataset_repo.item_ids(s, dataset_id=ds)
        ev = Evaluation(name="e", dataset_id=ds, constitution_version_id=version,
                        engine_kind="tiny", model="m", item_ids=ids, status="done",
                        done_count=len(ids), total_count=len(ids), created_by="t")
        s.add(ev)
        s.flush()
        for item, p in zip(ids, EDGE_P, strict=True):
            s.add(VerdictRow(evaluation_id=ev.id, item_id=item, p_a=p, principle_keys=["x"],
                             variants=[], record_ids=[]))
        s.flush()
        got = s.execute(select(VerdictCount.bucket, VerdictCount.n)  # type: ignore[call-overload]
                        .where(VerdictCount.evaluation_id == ev.id)).all()
    expected: dict[int, int] = {}
    for p in EDGE_P:
        b = confidence_bucket(max(p, 1.0 - p))
        expected[b] = expected.get(b, 0) + 1
    by_bucket: dict[int, int] = {}
    for b, n in got:
        by_bucket[b] = by_bucket.get(b, 0) + n
    assert by_bucket == expected
    assert confidence_bucket(0.29) == 29 and confidence_bucket(0.57) == 57
    assert confidence_bucket(1.0) == 100 and confidence_bucket(None) == -1
