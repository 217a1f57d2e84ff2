"""Constitution tab, issue 14: switching constitutions never drops an unsaved draft silently,
the editor is read-only for roles that cannot write, and the diff views clear on a switch."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import gradio as gr
import pytest

from backend.access import Role, local_admin
from backend.services.container import Services
from studio import constitution_draft as drafts
from studio.constitution_handlers import (
    EDIT_CONTROLS,
    FULL_OUTPUTS_WITH_PICKER,
    STATUS_INDEX,
    ConstitutionHandlers,
)

ADMIN = local_admin("tester")


@pytest.fixture
def two(services: Services) -> tuple[int, int]:
    (first,) = services.constitutions.list_all()
    content = services.constitutions.head(first.id).content
    other = services.constitutions.create("Other", "", content, actor=ADMIN, message="copy")
    return first.id, other.constitution.id


def test_switching_with_unsaved_changes_warns_and_keeps_the_draft(
        services: Services, two: tuple[int, int]) -> None:
    first, other = two
    h = ConstitutionHandlers(services)
    draft = h.load(first)[1]
    values = list(drafts.editor_values(draft))
    values[1] = "A title typed but not saved"
    out = h.open(draft, other, *values)
    assert len(out) == FULL_OUTPUTS_WITH_PICKER + 2
    assert out[0]["value"] == first  # the picker goes back
    assert all(o == gr.skip() for i, o in enumerate(out[1:FULL_OUTPUTS_WITH_PICKER], 1)
               if i != STATUS_INDEX)  # the draft and the editor are left as they are
    assert "unsaved changes" in out[STATUS_INDEX] and "Discard draft" in out[STATUS_INDEX]


def test_switching_a_clean_draft_opens_and_clears_the_diffs(
        services: Services, two: tuple[int, int]) -> None:
    first, other = two
    h = ConstitutionHandlers(services)
    draft = h.load(first)[1]
    out = h.open(draft, other, *drafts.editor_values(draft))
    assert out[0]["value"] == other and out[1]["constitution_id"] == other
    assert out[-2:] == ("", "")


def _request(name: str) -> Any:
    return cast(gr.Request, SimpleNamespace(username=name, query_params={}))


def test_fields_are_read_only_for_roles_that_cannot_edit(services: Services) -> None:
    services.users.add("root", Role.ADMIN, "a long password 1", actor=ADMIN)
    services.users.add("vic", Role.VIEWER, "a long password 2", actor=ADMIN)
    services.users.add("ann", Role.AUTHOR, "a long password 3", actor=ADMIN)
    h = ConstitutionHandlers(services)
    *controls, note = h.permissions(_request("vic"))
    assert len(controls) == EDIT_CONTROLS
    assert all(c["interactive"] is False for c in controls)
    assert "Read-only" in note and "viewer" in note
    *controls, note = h.permissions(_request("ann"))
    assert all(c == gr.skip() for c in controls) and note == ""


def test_picking_the_open_constitution_keeps_the_draft(services: Services,
                                                       two: tuple[int, int]) -> None:
    first, _ = two
    h = ConstitutionHandlers(services)
    draft = h.load(first)[1]
    values = list(drafts.editor_values(draft))
    values[1] = "Typed"
    assert all(o == gr.skip() for o in h.open(draft, first, *values))
