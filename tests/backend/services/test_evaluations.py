"""Agreement runs on the tiny model: background runs, cancel and resume, reports."""

from __future__ import annotations

import threading

import pytest

from backend.access import local_admin
from backend.errors import NotFoundError, ValidationError
from backend.services.container import Services
from backend.services.evaluations import EvaluationConfig
from tests.backend.services.agreement_data import add_dataset

AS_ANN = local_admin("ann")


@pytest.fixture
def svc(services: Services, tiny_engine: object) -> Services:
    services.engines.use(tiny_engine)  # type: ignore[arg-type]
    return services


def head_id(services: Services) -> int:
    return services.constitutions.list_all()[0].head.id


def test_a_run_in_the_background_stores_one_verdict_per_item(svc: Services) -> None:
    ds = add_dataset(svc, 10)
    info = svc.evaluations.create(dataset_id=ds, version_id=head_id(svc),
                                  config=EvaluationConfig(batch_size=4), actor=AS_ANN)
    assert info.status == "queued" and info.total_count == 10
    svc.evaluations.start(info.id, actor=AS_ANN)
    done = svc.evaluations.wait(info.id, timeout=120)
    assert done.status == "done" and done.done_count == 10
    arrays = svc.agreement.arrays(info.id)
    assert len(arrays.item_ids) == 10 and arrays.p_ab is not None
    assert ((arrays.p_a > 0) & (arrays.p_a < 1)).all()
    # every verdict links to its critique-log records (two orders each)
    with svc.db.read() as s:
        from db import evaluation_repo
        verdicts = evaluation_repo.evaluation_verdicts(s, evaluation_id=info.id)
    for v in verdicts:
        assert len(v.record_ids) == 2
        entry = svc.critique_log.get(v.record_ids[0])
        assert entry is not None and entry.kind == "verdict"


def test_cancel_then_resume_redoes_nothing_and_loses_nothing(svc: Services) -> None:
    ds = add_dataset(svc, 12)
    info = svc.evaluations.create(dataset_id=ds, version_id=head_id(svc),
                                  config=EvaluationConfig(batch_size=4, both_orders=False),
                                  actor=AS_ANN)
    cancel = threading.Event()
    svc.evaluations.commit_group = 1  # one chunk per commit (see test_a_resumed_run_keeps_...)
    stopped = svc.evaluations.run(info.id, actor=AS_ANN, cancel=cancel,
                                  on_chunk=lambda done, total: cancel.set())
    assert stopped.status == "cancelled" and stopped.done_count == 4
    first = {v.item_id: (v.id, v.p_a) for v in _verdicts(svc, info.id)}
    records_before = svc.critique_log.count()
    finished = svc.evaluations.run(info.id, actor=AS_ANN)
    assert finished.status == "done" and finished.done_count == 12
    after = {v.item_id: (v.id, v.p_a) for v in _verdicts(svc, info.id)}
    assert {k: after[k] for k in first} == first  # the stored verdicts are untouched
    assert svc.critique_log.count() - records_before == 8  # only the 8 remaining items ran


def test_sample_is_seeded_and_report_has_every_metric(svc: Services) -> None:
    ds = add_dataset(svc, 30)
    config = EvaluationConfig(sample_size=12, seed=5, batch_size=12, k_principles=2)
    a = svc.evaluations.create(dataset_id=ds, version_id=head_id(svc), config=config,
                               actor=AS_ANN)
    b = svc.evaluations.create(dataset_id=ds, version_id=head_id(svc), config=config,
                               actor=AS_ANN)
    assert a.total_count == 12
    svc.evaluations.run(a.id, actor=AS_ANN)
    svc.evaluations.run(b.id, actor=AS_ANN)
    report = svc.agreement.report(a.id, n_boot=200)
    s = report.summary
    assert s.n == 12 and 0.0 <= s.accuracy.value <= 1.0
    assert s.accuracy.low <= s.accuracy.value <= s.accuracy.high
    assert report.position_consistency is not None
    assert len(report.per_principle) >= 2
    comparison = svc.agreement.compare(a.id, b.id, n_boot=100)
    assert comparison.n_items == 12 and comparison.flips == ()  # same sample, same model


def test_disagreement_browser_filters(svc: Services) -> None:
    ds = add_dataset(svc, 8)
    info = svc.evaluations.create(dataset_id=ds, version_id=head_id(svc),
                                  config=EvaluationConfig(), actor=AS_ANN)
    svc.evaluations.run(info.id, actor=AS_ANN)
    rows, total = svc.agreement.disagreements(info.id, only_disagreements=False, limit=3)
    assert total == 8 and len(rows) == 3
    assert rows[0].confidence >= rows[1].confidence >= rows[2].confidence
    wrong, n_wrong = svc.agreement.disagreements(info.id, limit=100)
    assert all((r.p_a > 0.5) != (r.human_label == 1.0) for r in wrong)
    only_b, _ = svc.agreement.disagreements(info.id, human_label=0.0, only_disagreements=False)
    assert only_b and all(r.human_label == 0.0 for r in only_b)
    assert n_wrong <= total


def test_bad_requests_are_refused(svc: Services) -> None:
    with pytest.raises(NotFoundError):
        svc.evaluations.create(dataset_id=999, version_id=head_id(svc),
                               config=EvaluationConfig(), actor=AS_ANN)
    with pytest.raises(ValidationError):
        svc.evaluations.create(dataset_id=1, version_id=head_id(svc),
                               config=EvaluationConfig(sample_size=0), actor=AS_ANN)


def _verdicts(svc: Services, evaluation_id: int):  # type: ignore[no-untyped-def]
    from db import evaluation_repo

    with svc.db.read() as s:
        return list(evaluation_repo.evaluation_verdicts(s, evaluation_id=evaluation_id))


def test_a_resumed_run_keeps_its_judge(svc: Services) -> None:
    """Issue 12 point 11: resuming after the engine was switched mixed two judges in one run."""
    from backend.engines.scripted import ScriptedEngine

    ds = add_dataset(svc, 8)
    info = svc.evaluations.create(dataset_id=ds, version_id=head_id(svc),
                                  config=EvaluationConfig(batch_size=4, both_orders=False),
                                  actor=AS_ANN)
    cancel = threading.Event()
    # one chunk per commit: the cancel after the first acknowledgement stops the run at 4 (a
    # writer that finds the second chunk already waiting would otherwise store both at once)
    svc.evaluations.commit_group = 1
    svc.evaluations.run(info.id, actor=AS_ANN, cancel=cancel,
                        on_chunk=lambda done, total: cancel.set())
    judge = svc.engines.get()
    svc.engines.use(ScriptedEngine())  # another engine selected in Settings
    with pytest.raises(ValidationError, match=f"Select {info.model} \\({info.engine_kind}\\)"):
        svc.evaluations.run(info.id, actor=AS_ANN)
    assert svc.evaluations.get(info.id).done_count == 4
    svc.engines.use(judge)
    assert svc.evaluations.run(info.id, actor=AS_ANN).done_count == 8


def test_assignment_does_not_depend_on_batch_size(svc: Services) -> None:
    ds = add_dataset(svc, 12)
    keys = []
    for batch in (4, 12):
        info = svc.evaluations.create(dataset_id=ds, version_id=head_id(svc),
                                      config=EvaluationConfig(batch_size=batch, seed=3,
                                                              both_orders=False), actor=AS_ANN)
        svc.evaluations.run(info.id, actor=AS_ANN)
        keys.append({v.item_id: v.principle_keys for v in _verdicts(svc, info.id)})
    assert keys[0] == keys[1]
