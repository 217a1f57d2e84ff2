"""Event handlers of the Constitution tab. They call services only; no SQL, no model code.

Every handler that changes the draft first folds the editor's current field values into it,
so a click that races a keystroke never loses text.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import gradio as gr

from backend.access import Action
from backend.cai.diff import diff_contents
from backend.cai.formats import is_paper_file
from backend.errors import StudioError, ValidationError
from backend.services.constitution_io import ExportFormat
from backend.services.constitutions import VersionInfo
from backend.services.container import Services
from studio import constitution_draft as drafts
from studio.constitution_draft import Draft
from studio.render import diff_md, escape_md, problems_md
from studio.session import principal

HISTORY_PAGE = 20
# constitution picker + the 16 outputs of ConstitutionHandlers.view
FULL_OUTPUTS_WITH_PICKER = 17
STATUS_INDEX = 11  # the status line's place in the full refresh (picker first)
EDIT_CONTROLS = 15  # editor fields and buttons that write (see constitution_tab)
HISTORY_HEADERS = ["version", "saved at (UTC)", "author", "message", "content hash"]


def _history_rows(items: list[VersionInfo]) -> list[list[str]]:
    return [[f"v{v.number}", v.created_at.strftime("%Y-%m-%d %H:%M:%S"), v.author,
             " ".join(v.message.split()), v.content_hash[:12]] for v in items]


PAPER_PAIRING_NOTE = (
    "The paper's files hold two separate lists: critique/revision requests and labelling "
    "instructions. The studio pairs them **by position** (critique *i* with instruction *i*) "
    "into one principle; the paper does not pair them. Edit or disable principles to pair "
    "them as you intend.")


class ConstitutionHandlers:
    def __init__(self, services: Services) -> None:
        self.s = services

    # --- what the screen shows -------------------------------------------------------------

    def constitution_choices(self) -> list[tuple[str, int]]:
        return [(c.name, c.id) for c in self.s.constitutions.list_all()]

    def status(self, draft: Draft) -> str:
        base = f"Editing **{escape_md(draft['name'])}**, based on v{draft['base_number']}."
        problems = self.s.constitutions.validate(drafts.to_content(draft))
        if problems:
            return base + "\n\n" + problems_md("Fix before saving:", problems)
        if drafts.is_dirty(draft):
            return base + " Unsaved changes: write a message and save."
        return base + " No unsaved changes."

    def header(self, draft: Draft) -> str:
        return (f"Active constitution: **{escape_md(draft['name'])}** "
                f"v{draft['base_number']} · `{draft['base_hash'][:12]}`")

    def view(self, draft: Draft, page: int = 0) -> tuple[Any, ...]:
        """All outputs of a full refresh, in the order of ConstitutionTab.full_outputs."""
        history = self.s.constitutions.history(draft["constitution_id"], limit=HISTORY_PAGE,
                                               offset=page * HISTORY_PAGE)
        versions = [(f"v{v.number} — {' '.join(v.message.split())[:60]}", v.id) for v in
                    self.s.constitutions.history(draft["constitution_id"], limit=500)]
        head_id = versions[0][1] if versions else None
        prev_id = versions[1][1] if len(versions) > 1 else head_id
        return (
            draft,
            gr.update(choices=drafts.choices(draft), value=draft["selected"]),
            *drafts.editor_values(draft),
            self.header(draft),
            self.status(draft),
            _history_rows(history),
            f"Page {page + 1}",
            page,
            gr.update(choices=versions, value=prev_id),
            gr.update(choices=versions, value=head_id),
        )

    def load(self, constitution_id: int | None) -> tuple[Any, ...]:
        choices = self.constitution_choices()
        if constitution_id is None and choices:
            constitution_id = choices[0][1]
        if constitution_id is None:
            raise gr.Error("No constitution exists yet; import one below.")
        draft = drafts.from_detail(self.s.constitutions.head(int(constitution_id)))
        return (gr.update(choices=choices, value=draft["constitution_id"]), *self.view(draft))

    def open(self, draft: Draft | None, constitution_id: int | None, *values: Any
             ) -> tuple[Any, ...]:
        """The picker chose a constitution: load it, unless that would drop unsaved changes.
        Then the picker goes back, the status line (and a toast) says what to do, and nothing
        is lost. Returns the full refresh and (preview, diff) views, cleared on a switch."""
        if draft is not None and constitution_id == draft["constitution_id"]:
            # the one already open: keep the draft as it is (reloading would drop it)
            return tuple([gr.skip()] * (FULL_OUTPUTS_WITH_PICKER + 2))
        if draft is not None:
            current = drafts.apply_editor(draft, values)
            if drafts.is_dirty(current):
                note = (f"You have unsaved changes to {draft['name']}. Save them, or press "
                        "Discard draft, before opening another constitution.")
                gr.Warning(note)
                skips = [gr.skip()] * (FULL_OUTPUTS_WITH_PICKER - 1)
                skips[STATUS_INDEX - 1] = f"⚠️ **{escape_md(note)}**"
                return (gr.update(value=draft["constitution_id"]), *skips,
                        gr.skip(), gr.skip())
        return (*self.load(constitution_id), "", "")

    def permissions(self, request: gr.Request | None) -> tuple[Any, ...]:
        """On page load: editing controls are read-only for a role that may not edit
        constitutions (instead of refusing at save time). One update per control in
        EDIT_CONTROLS order, then the note shown above the editor."""
        try:
            who = principal(self.s, request)
        except StudioError as exc:
            return (*([gr.update(interactive=False)] * EDIT_CONTROLS),
                    f"**Read-only.** {escape_md(exc.message)}")
        if who.can(Action.EDIT_CONSTITUTION):
            return (*([gr.skip()] * EDIT_CONTROLS), "")
        return (*([gr.update(interactive=False)] * EDIT_CONTROLS),
                f"**Read-only:** your role ({who.role.value}) may read constitutions but not "
                "edit them; ask an admin for the author role.")

    # --- editing the draft -----------------------------------------------------------------

    def edit(self, draft: Draft, *values: Any) -> tuple[Any, ...]:
        """Live feedback while typing; returns (list labels, status) and leaves the draft alone."""
        new = drafts.apply_editor(draft, values)
        return gr.update(choices=drafts.choices(new), value=new["selected"]), self.status(new)

    def _restructure(self, draft: Draft, values: tuple[Any, ...], change: Any) -> tuple[Any, ...]:
        new = change(drafts.apply_editor(draft, values))
        return (new, gr.update(choices=drafts.choices(new), value=new["selected"]),
                *drafts.editor_values(new), self.status(new))

    def pick(self, draft: Draft, index: int, *values: Any) -> tuple[Any, ...]:
        return self._restructure(draft, values, lambda d: drafts.select(d, index))

    def up(self, draft: Draft, *values: Any) -> tuple[Any, ...]:
        return self._restructure(draft, values, lambda d: drafts.move(d, -1))

    def down(self, draft: Draft, *values: Any) -> tuple[Any, ...]:
        return self._restructure(draft, values, lambda d: drafts.move(d, 1))

    def add(self, draft: Draft, *values: Any) -> tuple[Any, ...]:
        return self._restructure(draft, values, drafts.add)

    def delete(self, draft: Draft, *values: Any) -> tuple[Any, ...]:
        return self._restructure(draft, values, drafts.delete)

    def discard(self, draft: Draft) -> tuple[Any, ...]:
        return self.load(draft["constitution_id"])

    # --- saving and history ----------------------------------------------------------------

    def save(self, request: gr.Request, draft: Draft, message: str, *values: Any
             ) -> tuple[Any, ...]:
        """Returns (result message, message box, *full refresh)."""
        draft = drafts.apply_editor(draft, values)
        if not message.strip():
            return ("**Write a short message saying what you changed, then save.**", message,
                    *self.view(draft))
        try:
            detail = self.s.constitutions.save(
                draft["constitution_id"], draft["base_version_id"], drafts.to_content(draft),
                message.strip(), actor=principal(self.s, request))
        except ValidationError as exc:
            return (problems_md("Not saved.", exc.problems or [exc.message]), message,
                    *self.view(draft))
        except StudioError as exc:
            return (f"**Not saved.** {escape_md(exc.message)}", message, *self.view(draft))
        saved = drafts.from_detail(detail)
        saved["selected"] = min(draft["selected"], max(0, len(saved["principles"]) - 1))
        note = f"Saved **v{detail.info.number}** · `{detail.info.content_hash[:12]}`"
        return (note, "", *self.view(saved))

    def page(self, draft: Draft, page: int, delta: int) -> tuple[Any, ...]:
        page = max(0, page + delta)
        if delta > 0 and not self.s.constitutions.history(
                draft["constitution_id"], limit=1, offset=page * HISTORY_PAGE):
            page -= 1
        rows = self.s.constitutions.history(draft["constitution_id"], limit=HISTORY_PAGE,
                                            offset=page * HISTORY_PAGE)
        return _history_rows(rows), f"Page {page + 1}", page

    def diff(self, old_id: int | None, new_id: int | None) -> str:
        if old_id is None or new_id is None:
            return "Pick two versions to compare."
        old, new = self.s.constitutions.version(old_id), self.s.constitutions.version(new_id)
        return diff_md(self.s.constitutions.diff(old_id, new_id), f"v{old.info.number}",
                       f"v{new.info.number}")

    def preview(self, draft: Draft, *values: Any) -> str:
        """What saving the draft would change, against the version it is based on."""
        draft = drafts.apply_editor(draft, values)
        base = self.s.constitutions.version(draft["base_version_id"])
        return diff_md(diff_contents(base.content, drafts.to_content(draft)),
                       f"v{draft['base_number']}", "your draft")

    def revert(self, request: gr.Request, draft: Draft, target_id: int | None
               ) -> tuple[Any, ...]:
        if target_id is None:
            return ("Pick the version to revert to.", *self.view(draft))
        try:
            detail = self.s.constitutions.revert(draft["constitution_id"], int(target_id),
                                                 draft["base_version_id"],
                                                 actor=principal(self.s, request))
        except StudioError as exc:
            return (f"**Not reverted.** {escape_md(exc.message)}", *self.view(draft))
        return (f"Reverted: saved **v{detail.info.number}** with the content of the chosen "
                "version.", *self.view(drafts.from_detail(detail)))

    # --- files -----------------------------------------------------------------------------

    def import_files(self, request: gr.Request, paths: list[str] | None, name: str
                     ) -> tuple[Any, ...]:
        """Returns (result message, constitution picker, *full refresh) or raises gr.Error."""
        if not paths:
            return self._failed("Choose a .yaml/.json constitution file, or the paper's "
                                "JSON files, then import.", [])
        files = [(Path(p).name, Path(p).read_bytes()) for p in paths]
        try:
            detail = self.s.constitution_io.import_files(files, actor=principal(self.s, request),
                                                         name=name.strip() or None)
        except ValidationError as exc:
            return self._failed("Nothing was imported.", exc.problems or [exc.message])
        except StudioError as exc:
            return self._failed("Nothing was imported.", [exc.message])
        loaded = self.load(detail.constitution.id)
        note = (f"Imported **{escape_md(detail.constitution.name)}** with "
                f"{len(detail.content.principles)} principles.")
        if any(is_paper_file(n) for n, _ in files):
            note += " " + PAPER_PAIRING_NOTE
        return (note, *loaded)

    @staticmethod
    def _failed(title: str, problems: list[str]) -> tuple[Any, ...]:
        """A result message, leaving every other output as it is."""
        return (problems_md(title, problems), *([gr.skip()] * FULL_OUTPUTS_WITH_PICKER))

    def export(self, draft: Draft, fmt: ExportFormat) -> str:
        exported = self.s.constitution_io.export(draft["base_version_id"], fmt)
        folder = Path(tempfile.mkdtemp(prefix="cstudio-export-"))
        path = folder / exported.filename
        path.write_bytes(exported.data)
        return str(path)

    def copy_as_new(self, request: gr.Request, draft: Draft, name: str, *values: Any
                    ) -> tuple[Any, ...]:
        draft = drafts.apply_editor(draft, values)
        try:
            detail = self.s.constitutions.create(
                name, f"Copy of {draft['name']} v{draft['base_number']}",
                drafts.to_content(draft), actor=principal(self.s, request),
                message=f"Copied from {draft['name']} v{draft['base_number']}")
        except ValidationError as exc:
            return self._failed("Not created.", exc.problems or [exc.message])
        except StudioError as exc:
            return self._failed("Not created.", [exc.message])
        return (f"Created **{escape_md(detail.constitution.name)}**.",
                *self.load(detail.constitution.id))
