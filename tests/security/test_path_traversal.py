"""Export and download names that would reach outside the exports folder are refused, through
the service and through the Audit tab's handler; nothing is written outside."""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import pytest

from backend.access import local_admin
from backend.errors import NotFoundError, ValidationError
from backend.services.container import Services
from backend.services.evidence_export import inside, safe_name
from db.audit_search_repo import SearchFilters
from studio.audit_handlers import AuditHandlers, Paging

ADMIN = local_admin("owner")
TRAVERSAL = [
    "../escape", "..", ".", "../../etc/passwd", "/etc/passwd", "a/b", "a\\b", "..\\..\\x",
    "C:\\Windows\\x", "x/../../y", "%2e%2e%2fescape", "..%2fescape", "\x00x", "x\x00",
    " ../x", ".hidden", "-rf", "~/x", "a" * 101, "", "名前", "x\ny", "foo..bar",
]


def _outside(root: Path, before: set[Path]) -> set[Path]:
    return {p for p in root.rglob("*") if p not in before} - {
        p for p in root.rglob("*") if "exports" in p.parts}


@pytest.mark.parametrize("name", TRAVERSAL)
def test_unsafe_names_are_refused(name: str) -> None:
    with pytest.raises(ValidationError):
        safe_name(name)


def test_safe_names_stay_inside(tmp_path: Path) -> None:
    for name in ("case-1", "evidence.2026-11-26", "A_b.c"):
        assert inside(tmp_path, name).parent == tmp_path.resolve()


def test_export_with_traversal_names_writes_nothing_outside(services: Services,
                                                            tmp_path: Path) -> None:
    before = set(tmp_path.rglob("*"))
    for name in TRAVERSAL:
        if not name:
            continue
        with pytest.raises(ValidationError):
            services.evidence.export(SearchFilters(), actor=ADMIN, name=name)
    assert _outside(tmp_path, before) == set()
    exports = services.settings.data_dir / "exports"
    assert not exports.exists() or list(exports.iterdir()) == []


def test_download_names_are_checked(services: Services) -> None:
    services.evidence.export(SearchFilters(), actor=ADMIN, name="real")
    assert services.evidence.archive_path("real").name == "real.zip"
    assert services.evidence.archive_path("real.zip").name == "real.zip"
    for name in ("../real", "../../studio.db", "/etc/passwd", "exports/../real"):
        with pytest.raises(ValidationError):
            services.evidence.archive_path(name)
    with pytest.raises(NotFoundError):
        services.evidence.archive_path("missing")


def test_the_ui_handler_refuses_with_a_message(services: Services) -> None:
    h = AuditHandlers(services)
    for name in ("../escape", "/etc/passwd", "a/b"):
        message, path = h.export(name, Paging(), gr.Request())
        assert path is None and "Nothing was exported" in message
