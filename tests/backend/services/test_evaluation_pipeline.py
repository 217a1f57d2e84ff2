"""The agreement run loop: unscorable items are recorded and the run goes on; a failed run says
why and is not resumed again; log records and verdicts are stored together, ids linked."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlmodel import select

from backend.access import local_admin
from backend.cai.metrics import item_scores
from backend.engines.base import ChoiceScores, EngineInfo
from backend.engines.scripted import ScriptedEngine
from backend.services.container import Services
from backend.services.evaluations import EvaluationConfig
from db import evaluation_repo
from db.evaluation_models import VerdictRow
from tests.backend.services.agreement_data import add_dataset

AS_ANN = local_admin("ann")


class PickyEngine(ScriptedEngine):
    """Scores every prompt, except that prompts about ``poison`` are unscorable (no choice in
    the top-k) and prompts about ``boom`` raise."""

    def __init__(self) -> None:
        super().__init__(info=EngineInfo("openai_compat", "picky"), record_calls=False)

    def answer(self, n: int, prompt_text: str) -> str:
        return "ok"

    def score_one(self, text: str) -> ChoiceScores:
        if "boom" in text:
            raise RuntimeError("the server closed the connection")
        if "poison" in text:
            return ChoiceScores({}, {"A": None, "B": None}, text,
                                unscorable="neither A nor B in the top-20 tokens",
                                top_tokens={"I": -0.2, "Sorry": -1.9})
        return ChoiceScores({"A": 0.7, "B": 0.3}, {"A": -0.36, "B": -1.2}, text)


def _dataset(services: Services, n: int, special: dict[int, str]) -> int:
    ds = add_dataset(services, n)
    if special:
        with services.db.engine.begin() as conn:  # pair_item is append-only: lift it here
            conn.execute(text("DROP TRIGGER IF EXISTS pair_item_append_only ON pair_item"
                              if conn.dialect.name == "postgresql"
                              else "DROP TRIGGER IF EXISTS pair_item_no_update"))
            for pos, word in special.items():
                conn.execute(text("UPDATE pair_item SET prompt = :p WHERE dataset_id = :d AND "
                                  "position = :i"), {"p": f"Question {pos} {word}?", "d": ds,
                                                     "i": pos})
    return ds


def _run(services: Services, n: int, special: dict[int, str]) -> int:
    services.engines.use(PickyEngine())  # type: ignore[arg-type]
    ds = _dataset(services, n, special)
    head = services.constitutions.list_all()[0].head.id
    return services.evaluations.create(dataset_id=ds, version_id=head, actor=AS_ANN,
                                       config=EvaluationConfig(batch_size=4)).id


def test_an_unscorable_item_is_recorded_and_the_run_goes_on(services: Services) -> None:
    run = _run(services, 10, {5: "poison"})
    info = services.evaluations.run(run, actor=AS_ANN)
    assert info.status == "done" and info.done_count == 10
    with services.db.read() as s:
        verdicts = evaluation_repo.evaluation_verdicts(s, evaluation_id=run)
        [bad] = evaluation_repo.unscorable_items(s, evaluation_id=run)
    assert len(verdicts) == 9  # its batch's other three verdicts are kept
    assert "top-20" in bad.reason and bad.top_tokens == {"I": -0.2, "Sorry": -1.9}
    [info_bad] = services.evaluations.unscorable(run)
    assert info_bad.item_id == bad.item_id and info_bad.top_tokens == bad.top_tokens
    records = [services.critique_log.get(r) for r in bad.record_ids]
    assert all(r is not None and r.output == "unscorable" for r in records)
    assert services.agreement.report(run, n_boot=50).summary.n == 9
    # resuming finds nothing left to do: the unscorable item is not retried for ever
    assert services.evaluations.run(run, actor=AS_ANN).done_count == 10


def test_log_records_and_verdicts_are_linked_and_pages_fields_set(services: Services) -> None:
    run = _run(services, 6, {})
    services.evaluations.run(run, actor=AS_ANN)
    with services.db.read() as s:
        rows = list(s.exec(select(VerdictRow).where(VerdictRow.evaluation_id == run)))
    assert len(rows) == 6
    for v in rows:
        assert v.confidence == pytest.approx(max(v.p_a, 1 - v.p_a))
        human = 1.0 if (v.item_id - rows[0].item_id) % 2 == 0 else 0.0
        assert v.disagrees == (item_scores([v.p_a], [human])[0] != 1.0)
        for rid, variant in zip(v.record_ids, v.variants, strict=True):
            entry = services.critique_log.get(rid)
            assert rid > 0 and variant["record_id"] == rid
            assert entry is not None and entry.kind == "verdict"
    assert services.critique_log.verify() == []


def test_a_failed_run_says_why_and_is_not_resumed_again(services: Services) -> None:
    run = _run(services, 12, {9: "boom"})
    with pytest.raises(RuntimeError):
        services.evaluations.run(run, actor=AS_ANN)
    info = services.evaluations.get(run)
    assert info.status == "failed" and "closed the connection" in info.error
    assert info.done_count == 8  # the chunks judged before the failure are stored
    assert services.evaluations.resume_unfinished(actor=AS_ANN) == []


def test_k1_report_arrays_without_json_equal_the_json_path(services: Services) -> None:
    import numpy as np

    from backend.services import agreement as agreement_module

    run = _run(services, 9, {})
    services.evaluations.run(run, actor=AS_ANN)
    fast = services.agreement.arrays(run)
    with services.db.read() as s:
        assert evaluation_repo.single_principle_columns(s, evaluation_id=run) is not None
    original = evaluation_repo.single_principle_columns
    try:  # force the JSON path
        evaluation_repo.single_principle_columns = lambda *a, **k: None  # type: ignore[assignment]
        slow = agreement_module.AgreementService(services.db).arrays(run)
    finally:
        evaluation_repo.single_principle_columns = original  # type: ignore[assignment]
    assert fast.item_ids == slow.item_ids and fast.principle_key == slow.principle_key
    for name in ("p_a", "human", "p_ab", "p_ba", "principle_p", "principle_human"):
        assert np.array_equal(getattr(fast, name), getattr(slow, name)), name


def test_a_cancel_after_every_chunk_was_handed_over_still_ends_cancelled(
        services: Services) -> None:
    import threading

    run = _run(services, 12, {})
    cancel = threading.Event()
    services.evaluations.commit_group = 1  # one chunk per commit: the others wait, and drop
    info = services.evaluations.run(run, actor=AS_ANN, cancel=cancel,
                                    on_chunk=lambda done, total: cancel.set())
    assert info.done_count < 12 and info.status == "cancelled"
    assert services.evaluations.run(run, actor=AS_ANN).done_count == 12


def test_chunks_stored_together_are_each_acknowledged_after_their_commit(
        services: Services) -> None:
    """Group commit: the writer stores the chunks waiting for it in one transaction; each
    acknowledgement comes after that commit (what it reports is stored), in order."""
    run = _run(services, 40, {7: "poison"})
    seen: list[tuple[int, int]] = []

    def stored(done: int, total: int) -> None:
        with services.db.read() as s:
            seen.append((done, evaluation_repo.count_verdicts(s, evaluation_id=run)
                         + evaluation_repo.count_unscorable(s, evaluation_id=run)))

    info = services.evaluations.run(run, actor=AS_ANN, on_chunk=stored)
    assert info.status == "done" and info.done_count == 40
    assert [d for d, _ in seen] == list(range(4, 44, 4))
    assert all(in_store >= done for done, in_store in seen)
