"""Named version aliases (``production``, ``staging``) on the Constitution tab: list them, set
or move one to a version, remove one; every change needs the edit-constitutions permission and
is an audit event (``constitution.alias``). Issue 16 point 8; the headless side is
``cstudio golden check CONSTITUTION --version production``."""

from __future__ import annotations

from typing import Any

import gradio as gr

from backend.errors import StudioError
from backend.services.container import Services
from studio.page_load import PageLoad
from studio.render import escape_md
from studio.session import principal

ALIAS_HEADERS = ["alias", "version", "set by"]
HISTORY_HEADERS = ["when (UTC)", "alias", "now points to", "by"]


class AliasHandlers:
    def __init__(self, services: Services) -> None:
        self.s = services

    def load(self) -> Any:
        choices = [(c.name, c.id) for c in self.s.constitutions.list_all()]
        return gr.update(choices=choices, value=choices[0][1] if choices else None)

    def show(self, constitution_id: int | None) -> tuple[Any, ...]:
        """(aliases table, history table, version picker, alias-name picker)."""
        if constitution_id is None:
            return [], [], gr.update(choices=[], value=None), gr.update(choices=[])
        cid = int(constitution_id)
        aliases = self.s.ci.aliases(cid)
        rows = [[a.name, f"v{a.version_number}", a.set_by] for a in aliases]
        history = [[m.at.strftime("%Y-%m-%d %H:%M:%S"), m.name,
                    "removed" if m.version_number is None else f"v{m.version_number}", m.set_by]
                   for m in self.s.ci.alias_history(cid)[:50]]
        versions = [(f"v{v.number}", v.number)
                    for v in self.s.constitutions.history(cid, limit=200)]
        names = sorted({a.name for a in aliases} | {"production", "staging"})
        return (rows, history,
                gr.update(choices=versions, value=versions[0][1] if versions else None),
                gr.update(choices=names))

    def set_alias(self, request: gr.Request, constitution_id: int | None, name: str | None,
                  version_number: int | None) -> tuple[Any, ...]:
        return self._change(request, constitution_id, name, version_number)

    def remove(self, request: gr.Request, constitution_id: int | None, name: str | None
               ) -> tuple[Any, ...]:
        return self._change(request, constitution_id, name, None)

    def _change(self, request: gr.Request, constitution_id: int | None, name: str | None,
                version_number: int | None) -> tuple[Any, ...]:
        alias = (name or "").strip()
        if constitution_id is None or not alias:
            return ("**Pick a constitution and name an alias** (e.g. production).",
                    *self.show(constitution_id))
        cid = int(constitution_id)
        before = {a.name: a.version_number for a in self.s.ci.aliases(cid)}
        try:
            self.s.ci.set_alias(cid, alias,
                                None if version_number is None else int(version_number),
                                actor=principal(self.s, request))
        except StudioError as exc:
            return f"**Not changed.** {escape_md(exc.message)}", *self.show(cid)
        shown = escape_md(alias)
        if version_number is None:
            message = (f"Removed alias **{shown}**." if alias in before
                       else f"There was no alias **{shown}**; nothing to remove.")
        elif alias in before:
            message = (f"Moved **{shown}** from v{before[alias]} to v{int(version_number)}.")
        else:
            message = f"Set **{shown}** to v{int(version_number)}."
        return message, *self.show(cid)


def build_aliases_section(services: Services, on_open: PageLoad) -> None:
    h = AliasHandlers(services)
    with gr.Accordion("Version aliases (production, staging)", open=False):
        with gr.Row():
            constitution = gr.Dropdown(label="Constitution", choices=[],
                                       elem_id="alias-constitution")
            name = gr.Dropdown(label="Alias", choices=[], allow_custom_value=True,
                               elem_id="alias-name",
                               info="lower-case letters, digits, - and _; e.g. production")
            version = gr.Dropdown(label="Version", choices=[], elem_id="alias-version")
        with gr.Row():
            set_btn = gr.Button("Set / move alias", variant="primary", elem_id="alias-set")
            remove_btn = gr.Button("Remove alias", variant="stop", elem_id="alias-remove")
        result = gr.Markdown(elem_id="alias-result")
        table = gr.Dataframe(headers=ALIAS_HEADERS, datatype="str", interactive=False,
                             elem_id="alias-table")
        history = gr.Dataframe(headers=HISTORY_HEADERS, datatype="str", interactive=False,
                               elem_id="alias-history", label="Alias history (newest first)")
    on_open.add("aliases_load", h.load, constitution,
                where="the aliases section")
    constitution.change(h.show, inputs=constitution, outputs=[table, history, version, name],
                        api_name="aliases_show")
    set_btn.click(h.set_alias, inputs=[constitution, name, version],
                  outputs=[result, table, history, version, name], api_name="alias_set")
    remove_btn.click(h.remove, inputs=[constitution, name],
                     outputs=[result, table, history, version, name], api_name="alias_remove")
