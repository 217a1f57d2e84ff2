"""Event handlers of the Audit tab: search, record detail with provenance, flags and comments,
evidence export and chain verification. They call services only; every text from the store is
escaped or fenced (studio/render.py) before it reaches Markdown."""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import gradio as gr

from backend.errors import StudioError
from backend.services.audit_search import RecordDetail, SearchPage
from backend.services.container import Services
from backend.services.provenance import RunProvenance
from db.audit_search_repo import SearchFilters
from studio.render import dataset_link, escape_md, fenced, job_link, record_link
from studio.security_middleware import EXPORT_PREFIX, EXPORTS
from studio.session import principal

RESULT_HEADERS = ["id", "time (UTC)", "kind", "principle", "model", "flagged", "comments",
                  "excerpt"]
CHAIN_HEADERS = ["id", "kind", "round", "principle", "excerpt"]
KINDS = ["response", "critique", "revision", "cot", "verdict", "rollout"]
PAGE_SIZE = 25


@dataclass
class Paging:
    """The search being paged (fixed when Search is pressed) and the cursors seen so far."""

    filters: SearchFilters = field(default_factory=SearchFilters)
    cursors: list[int | None] = field(default_factory=lambda: [None])
    page: int = 0
    next_before: int | None = None


def _excerpt(text: str, n: int = 100) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= n else flat[: n - 1] + "…"


def _date(value: str | None, what: str, *, end: bool) -> datetime | None:
    value = (value or "").strip()
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise StudioError(f"'{what}' must be a date like 2026-11-26 or 2026-11-26T14:00; "
                          f"got {value[:40]!r}.") from exc
    if end and len(value) == 10:  # a whole day: up to the end of it
        parsed += timedelta(days=1)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _int(value: Any, what: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise StudioError(f"{what} must be a number; got {str(value)[:40]!r}.") from None


def _query_int(request: gr.Request | None, name: str) -> int | None:
    """An integer query parameter of the page's address (links like ``/?record=12``)."""
    params = getattr(request, "query_params", None) if request is not None else None
    value = params.get(name) if params is not None else None
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


class AuditHandlers:
    def __init__(self, services: Services) -> None:
        self.s = services

    # --- choices ------------------------------------------------------------------------------

    def load(self) -> tuple[Any, ...]:
        constitutions = [("any constitution", "")] + [
            (c.name, str(c.id)) for c in self.s.constitutions.list_all()]
        models = [("any model", "")] + [(m, m) for m in self.s.audit_search.values("model")]
        evaluations = [("any run", "")] + [
            (label, str(i)) for label, i in self.s.audit_search.evaluations()]
        return (gr.update(choices=constitutions, value=""), gr.update(choices=models, value=""),
                gr.update(choices=evaluations, value=""))

    def opening(self, request: gr.Request | None = None) -> tuple[Any, ...]:
        """What the tab shows on page load: the newest records, and the record a link named
        (``?record=ID``) opened; (results, status, paging, detail, chain, notes, record id,
        record id box)."""
        dataset = _query_int(request, "dataset")  # ?dataset=ID lists the records behind it
        listing = self.dataset_records(dataset) if dataset is not None else self._show(Paging())
        wanted = _query_int(request, "record")
        if wanted is None:
            return (*listing, gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip())
        return (*listing, *self.open_record(wanted), wanted)

    def reopened(self, paging: Paging) -> tuple[Any, ...]:
        """On opening the tab again: the newest records, unless a search or listing is shown
        (then it stays as it is)."""
        if paging.filters != SearchFilters() or paging.page != 0:
            return gr.skip(), gr.skip(), gr.skip()
        return self._show(Paging())

    def versions(self, constitution_id: str | None) -> Any:
        choices: list[tuple[str, str]] = [("any version", "")]
        if constitution_id:
            choices += [(f"v{v.number}", str(v.id))
                        for v in self.s.constitutions.history(int(constitution_id), limit=200)]
        return gr.update(choices=choices, value="")

    # --- search -------------------------------------------------------------------------------

    def filters(self, query: str | None, constitution: str | None, version: str | None,
                principle_key: str | None, model: str | None, kind: str | None,
                chain: str | None, evaluation: str | None, since: str | None,
                until: str | None, flagged: bool | None) -> SearchFilters:
        return SearchFilters(
            query=str(query or ""), constitution_id=_int(constitution, "Constitution"),
            version_id=_int(version, "Version"),
            principle_key=str(principle_key or "").strip() or None,
            model=str(model or "") or None, kind=str(kind or "") or None,
            chain_id=str(chain or "").strip() or None,
            evaluation_id=_int(evaluation, "Evaluation run"),
            since=_date(since, "from", end=False), until=_date(until, "to", end=True),
            flagged=bool(flagged))

    def search(self, query: str, constitution: str | None, version: str | None,
               principle_key: str, model: str | None, kind: str | None, chain: str,
               evaluation: str | None, since: str, until: str, flagged: bool
               ) -> tuple[Any, ...]:
        try:
            filters = self.filters(query, constitution, version, principle_key, model, kind,
                                   chain, evaluation, since, until, flagged)
        except StudioError as exc:
            return [], f"**Search not run.** {escape_md(exc.message)}", Paging()
        return self._show(Paging(filters=filters))

    def next_page(self, paging: Paging) -> tuple[Any, ...]:
        if paging.next_before is None:
            return gr.skip(), "This is the last page.", paging
        cursors = [*paging.cursors[: paging.page + 1], paging.next_before]
        return self._show(replace(paging, cursors=cursors, page=paging.page + 1))

    def prev_page(self, paging: Paging) -> tuple[Any, ...]:
        if paging.page == 0:
            return gr.skip(), "This is the first page.", paging
        return self._show(replace(paging, page=paging.page - 1))

    def _show(self, paging: Paging) -> tuple[Any, ...]:
        page: SearchPage = self.s.audit_search.search(
            paging.filters, before_id=paging.cursors[paging.page], page_size=PAGE_SIZE)
        rows = [[h.entry.id, h.entry.created_at.strftime("%Y-%m-%d %H:%M:%S"), h.entry.kind,
                 h.entry.principle_key or "", h.entry.model, "⚑" if h.flagged else "",
                 h.comments, _excerpt(h.entry.output)] for h in page.hits]
        paging = replace(paging, next_before=page.next_before)
        if page.message:
            status = f"**{escape_md(page.message)}**"
        elif not page.hits:
            status = "No records match."
        else:
            first = paging.page * PAGE_SIZE + 1
            noun = "record matches" if page.total_label == "1" else "records match"
            status = (f"{page.total_label} {noun} · showing {first}–"
                      f"{first + len(page.hits) - 1} (page {paging.page + 1})")
        return rows, status, paging

    # --- one record ---------------------------------------------------------------------------

    def select_row(self, evt: gr.SelectData) -> Any:
        row = evt.row_value if isinstance(evt.row_value, list) else None
        return gr.update(value=int(row[0])) if row else gr.skip()

    def open_record(self, record_id: float | None) -> tuple[Any, ...]:
        if record_id is None:
            return "Choose a record: click a row or type its id.", [], "", None
        try:
            detail = self.s.audit_search.record(_int(record_id, "Record id") or 0)
        except StudioError as exc:
            return f"**{escape_md(exc.message)}**", [], "", None
        return self._detail(detail)

    def _detail(self, d: RecordDetail) -> tuple[Any, ...]:
        chain = [[e.id, e.kind, e.round if e.round is not None else "", e.principle_key or "",
                  _excerpt(e.output, 80)] for e in d.chain]
        return detail_md(d), chain, notes_md(d), d.entry.id

    def flag(self, record_id: int | None, reason: str, request: gr.Request) -> tuple[Any, ...]:
        return self._write(record_id, "flag", reason, request)

    def unflag(self, record_id: int | None, reason: str, request: gr.Request) -> tuple[Any, ...]:
        return self._write(record_id, "unflag", reason, request)

    def comment(self, record_id: int | None, body: str, request: gr.Request
                ) -> tuple[Any, ...]:
        return self._write(record_id, "comment", body, request)

    def _write(self, record_id: int | None, what: str, text: str, request: gr.Request
               ) -> tuple[Any, ...]:
        if record_id is None:
            return gr.skip(), gr.skip(), "**Open a record first.**", gr.skip()
        try:
            actor = principal(self.s, request)
            method = {"flag": self.s.audit_search.flag, "unflag": self.s.audit_search.unflag,
                      "comment": self.s.audit_search.comment}[what]
            detail = method(_int(record_id, "Record id") or 0, str(text or ""), actor=actor)
        except StudioError as exc:
            return gr.skip(), gr.skip(), f"**Not saved.** {escape_md(exc.message)}", gr.skip()
        md, chain, notes, _ = self._detail(detail)
        return md, chain, notes, ""

    def principle_records(self, record_id: int | None) -> tuple[Any, ...]:
        """Provenance from the open record's principle: everything it produced."""
        if record_id is None:
            return [], "**Open a record first.**", Paging()
        entry = self.s.critique_log.get(int(record_id))
        if entry is None or entry.constitution_version_id is None or not entry.principle_key:
            return [], "**This record has no principle** (it is a plain response).", Paging()
        try:
            filters = self.s.audit_search.principle_filters(entry.constitution_version_id,
                                                            entry.principle_key)
        except StudioError as exc:
            return [], f"**{escape_md(exc.message)}**", Paging()
        return self._show(Paging(filters=filters))

    def trace_run(self, job_id: float | None) -> str:
        """Provenance of a trained model: its jobs, datasets, samples and their records."""
        try:
            prov = self.s.provenance.run(_int(job_id, "Job id") or 0)
        except StudioError as exc:
            return f"**{escape_md(exc.message)}**"
        return provenance_md(prov)

    def dataset_records(self, dataset_id: float | None) -> tuple[Any, ...]:
        try:
            did = _int(dataset_id, "Dataset id")
        except StudioError as exc:
            return [], f"**{escape_md(exc.message)}**", Paging()
        if did is None:
            return [], "**Type a training dataset id** (see the trace above).", Paging()
        return self._show(Paging(filters=SearchFilters(training_dataset_id=did)))

    # --- export and verification --------------------------------------------------------------

    def export(self, name: str | None, paging: Paging, request: gr.Request) -> tuple[Any, Any]:
        """Export the selection shown (the search last run, or a provenance listing)."""
        try:
            actor = principal(self.s, request)
            result = self.s.evidence.export(paging.filters, actor=actor,
                                            name=str(name or "").strip() or None)
        except StudioError as exc:
            return f"**Nothing was exported.** {escape_md(exc.message)}", None
        # Gradio serves files from its temp folder; hand it a copy of the archive there,
        # served only to the user who made it (studio/security_middleware.py).
        drop_old_copies()
        copy = (Path(tempfile.mkdtemp(prefix="cstudio-export-"))
                / f"{EXPORT_PREFIX}{result.archive.name}")
        shutil.copyfile(result.archive, copy)
        EXPORTS.register(copy.name, actor.name)
        files = ", ".join(f"{escape_md(k)} sha256 `{v['sha256']}`"
                          for k, v in result.manifest["files"].items())
        return (f"Exported **{result.count:,}** records to {escape_md(str(result.directory))}"
                f" · {files}"), str(copy)

    def verify(self) -> str:
        report = self.s.audit.verify()  # read-only: never seals
        if report.ok:
            return (f"✅ **Nothing was altered.** {report.events_checked} audit events, "
                    f"{report.rows_checked} sealed rows, {report.versions_checked} versions, "
                    f"{report.records_checked} critique-log records checked against "
                    f"{report.anchors_checked} anchored heads. Chain head `{report.head_hash}`")
        lines = [f"❌ **First broken link:** {escape_md(report.first_broken or '')}"]
        lines += [f"- {escape_md(p)}" for p in report.problems[1:]]
        return "\n".join(lines)


def drop_old_copies(max_age_s: float = 3600.0) -> None:
    """Remove the hand-over copies of earlier exports (Gradio keeps its own copy, cleaned by
    ``delete_cache``), so archives do not pile up in the system temp folder."""
    now = time.time()
    for folder in Path(tempfile.gettempdir()).glob("cstudio-export-*"):
        with contextlib.suppress(OSError):
            if now - folder.stat().st_mtime > max_age_s:
                shutil.rmtree(folder)


def detail_md(d: RecordDetail) -> str:
    e = d.entry
    version = (f"{escape_md(d.version.constitution.name)} {d.version.info.label} "
               f"(version id {d.version.info.id}, content hash `{d.version.info.content_hash}`)"
               if d.version else "none")
    lines = [
        f"### Record {e.id} · {e.kind}" + (" · ⚑ flagged" if d.flagged else ""),
        f"- **Time:** {e.created_at.isoformat(timespec='milliseconds')}",
        f"- **Chain:** `{escape_md(e.chain_id)}` · parent {e.parent_id or '—'} · round "
        f"{e.round if e.round is not None else '—'}",
        f"- **Constitution version:** {version}",
        f"- **Principle:** {escape_md(e.principle_key or '—')}",
        f"- **Engine and model:** {escape_md(e.engine_kind)} · {escape_md(e.model)} · seed "
        f"{e.seed if e.seed is not None else '—'}",
        f"- **Latency:** {e.latency_s * 1000:.1f} ms · **Recorded by:** {escape_md(e.actor)}",
        f"- **Record hash:** `{e.record_hash}`",
        "\n**Parameters**", fenced(json.dumps(e.params, indent=2, sort_keys=True), "json"),
    ]
    if e.probabilities is not None:
        lines += ["\n**Probabilities**",
                  fenced(json.dumps(e.probabilities, indent=2, sort_keys=True), "json")]
    lines += ["\n**Prompt exactly as sent**", fenced(e.prompt_sent),
              "\n**Output**", fenced(e.output)]
    if d.principle is not None:
        p = d.principle
        lines += [f"\n**Principle text of that version:** {escape_md(p.title)}",
                  "\n*Critique request*", fenced(p.critique_request),
                  "\n*Revision request*", fenced(p.revision_request),
                  "\n*Choice instruction*", fenced(p.choice_instruction)]
    if len(d.lineage) > 1:
        path = " → ".join(f"{x.kind} {x.id}" for x in d.lineage)
        lines.append(f"\n**Lineage:** {path}")
    if d.verdicts:
        lines.append("\n**Verdicts citing this chain**")
        lines += [f"- run #{v.evaluation_id} {escape_md(v.evaluation_name)} · item {v.item_id}"
                  f" · p(A) {v.p_a:.3f}" for v in d.verdicts]
    return "\n".join(lines)


def provenance_md(prov: RunProvenance) -> str:
    lines = ["### Jobs"]
    for j in prov.jobs:
        via = f" · {escape_md(j.via)}" if j.via else " · the run traced"
        version = f" · constitution version id {j.constitution_version_id}" \
            if j.constitution_version_id else ""
        lines.append(f"- {job_link(j.id)} · {escape_md(j.kind)} · {escape_md(j.name)} · "
                     f"{escape_md(j.status)}{version}{via}")
    lines.append("\n### Datasets")
    if not prov.datasets:
        lines.append("No datasets are recorded for these jobs.")
    for d in prov.datasets:
        made = f" · made by {job_link(d.made_by_job)}" if d.made_by_job else ""
        version = (f" · constitution version id {d.constitution_version_id}"
                   if d.constitution_version_id else "")
        lines.append(f"\n**{escape_md(d.kind)} dataset** {dataset_link(d.id)} · "
                     f"{escape_md(d.name)} · "
                     f"{d.samples:,} samples{made}{version}")
        for x in d.first_samples:
            records = ", ".join(record_link(i) for i in x.record_ids) or "none"
            keys = ", ".join(escape_md(k) for k in x.principle_keys) or "none"
            lines.append(f"- sample {x.position}: {escape_md(_excerpt(x.prompt, 60))} · "
                         f"records {records} · principles {keys}")
        if d.filters is not None:
            lines.append(f"- every record behind it: type {d.id} under *Training dataset* "
                         "and press *Show its records*")
    return "\n".join(lines)


def notes_md(d: RecordDetail) -> str:
    if not d.flags and not d.comments:
        return "No flags or comments yet."
    lines = ["**Flags**"] if d.flags else []
    lines += [f"- {f.created_at:%Y-%m-%d %H:%M} · {escape_md(f.actor)} · **{f.action}**"
              + (f" · {escape_md(f.reason)}" if f.reason else "") for f in d.flags]
    if d.comments:
        lines.append("\n**Comments**")
        for c in d.comments:
            lines.append(f"\n{c.created_at:%Y-%m-%d %H:%M} · {escape_md(c.actor)}")
            lines.append(fenced(c.body))
    return "\n".join(lines)
