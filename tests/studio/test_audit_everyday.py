"""Audit tab, issue 14: it opens with the newest records, a link ``?record=ID`` opens that
record, and a flag needs a reason (so an empty one is not accepted and then blocks the real
one)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import gradio as gr
import pytest

from backend.services.container import Services
from studio.audit_handlers import AuditHandlers
from tests.backend.services.audit_data import head_version, log_chain


@pytest.fixture
def h(services: Services) -> AuditHandlers:
    return AuditHandlers(services)


@pytest.fixture
def chain(services: Services) -> list[int]:
    v, k1, _ = head_version(services)
    return log_chain(services, prompt="Pick a lock?", response="No.", critique="Harmful.",
                     revision="I can't help.", version_id=v, principle_key=k1)


def _request(**params: str) -> Any:
    return cast(gr.Request, SimpleNamespace(query_params=params, username=None))


def test_the_tab_opens_with_the_newest_records(h: AuditHandlers, chain: list[int]) -> None:
    rows, status, _paging, *rest = h.opening(_request())
    assert [r[0] for r in rows] == sorted(chain, reverse=True)
    assert "3 records match" in status
    assert all(r == gr.skip() for r in rest)


def test_a_link_opens_its_record(h: AuditHandlers, chain: list[int]) -> None:
    out = h.opening(_request(record=str(chain[1])))
    detail, chain_rows, _notes, record_id, box = out[3:]
    assert f"Record {chain[1]}" in detail and record_id == chain[1] and box == chain[1]
    assert [r[0] for r in chain_rows] == chain
    assert h.opening(_request(record="nonsense"))[3] == gr.skip()


def test_a_flag_needs_a_reason_both_ways(h: AuditHandlers, services: Services,
                                         chain: list[int]) -> None:
    req = gr.Request()
    _, _, message, _ = h.flag(chain[1], "  ", req)
    assert "Not saved" in message and "Write a reason" in message
    assert not services.audit_search.record(chain[1]).flagged
    md, _, notes, _ = h.flag(chain[1], "odd wording", req)  # the real reason is then accepted
    assert "flagged" in md and "odd wording" in notes
    _, _, message, _ = h.unflag(chain[1], "", req)
    assert "Write a reason" in message and services.audit_search.record(chain[1]).flagged


def test_a_dataset_link_lists_its_records(h: AuditHandlers) -> None:
    rows, _status, paging, *_ = h.opening(_request(dataset="77"))
    assert rows == [] and paging.filters.training_dataset_id == 77


def test_provenance_ids_are_links() -> None:
    from studio.render import dataset_link, job_link, record_link

    assert record_link(3) == "[#3](?record=3)" and job_link(4) == "[job 4](?job=4)"
    assert dataset_link(5) == "[dataset 5](?dataset=5)"


def test_reopening_the_tab_lists_new_records_unless_a_search_is_shown(
        h: AuditHandlers, services: Services, chain: list[int]) -> None:
    _, _, shown, *_ = h.opening(_request())
    v, k1, _ = head_version(services)
    newer = log_chain(services, prompt="Later?", response="r", critique="c", revision="v",
                      version_id=v, principle_key=k1)
    rows, _, _ = h.reopened(shown)
    assert rows[0][0] == newer[-1]
    _, _, searched = h.search("Pick", "", "", "", "", "", "", "", "", "", False)
    assert h.reopened(searched) == (gr.skip(), gr.skip(), gr.skip())
