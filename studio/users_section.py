"""The Settings tab's Users section: add users, set roles, reset passwords, disable, remove.

Only admins can change anything: the users service refuses everyone else, whatever the page
shows. Non-admins see no user list; any user may change their own password here.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from backend.access import Action, Role
from backend.errors import StudioError, ValidationError
from backend.services.container import Services
from studio.page_load import PageLoad
from studio.render import escape_md, problems_md
from studio.session import principal

USER_HEADERS = ["name", "role", "status", "added by", "changed (UTC)"]
ROLE_CHOICES = [r.value for r in Role]


class UsersHandlers:
    def __init__(self, services: Services) -> None:
        self.s = services

    def rows(self, request: gr.Request) -> list[list[str]]:
        """Every user, for admins; nothing for anyone else."""
        try:
            if not principal(self.s, request).can(Action.MANAGE_USERS):
                return []
        except StudioError:
            return []
        return [[u.name, u.role.value, "disabled" if u.disabled else "active", u.created_by,
                 u.updated_at.strftime("%Y-%m-%d %H:%M")] for u in self.s.users.list_all()]

    def intro(self, request: gr.Request) -> str:
        if not self.s.users.any_users():
            return ("No users are configured: the studio runs for the single local user "
                    f"**{escape_md(self.s.settings.user)}** (admin) and binds only to "
                    "127.0.0.1. Adding the first user (an admin) turns sign-in on: restart "
                    "the studio afterwards and sign in.")
        try:
            who = principal(self.s, request)
        except StudioError as exc:
            return escape_md(exc.message)
        if who.can(Action.MANAGE_USERS):
            return "You are an admin: add users, change roles, reset passwords, remove users."
        return ("Only admins manage users. You can change your own password below (type your "
                "user name).")

    def _done(self, request: gr.Request, note: str) -> tuple[Any, ...]:
        return note, self.rows(request), "", ""

    def _failed(self, title: str, exc: StudioError) -> tuple[Any, ...]:
        text = (problems_md(title, exc.problems or [exc.message])
                if isinstance(exc, ValidationError)
                else f"**{escape_md(title)}** {escape_md(exc.message)}")
        return text, gr.skip(), gr.skip(), gr.skip()

    def add(self, request: gr.Request, name: str, role: str | None, password: str,
            confirm: str) -> tuple[Any, ...]:
        """Returns (result, user table, password box, confirm box)."""
        try:
            actor = principal(self.s, request)
            _same(password, confirm)
            info = self.s.users.add(name or "", role or "", password or "", actor=actor)
        except StudioError as exc:
            return self._failed("User not added.", exc)
        return self._done(request, f"Added **{escape_md(info.name)}** as "
                                   f"**{info.role.value}**.")

    def set_role(self, request: gr.Request, name: str, role: str | None) -> tuple[Any, ...]:
        try:
            info = self.s.users.set_role(name or "", role or "",
                                         actor=principal(self.s, request))
        except StudioError as exc:
            return self._failed("Role not changed.", exc)
        return self._done(request, f"**{escape_md(info.name)}** is now "
                                   f"**{info.role.value}**.")

    def reset_password(self, request: gr.Request, name: str, password: str, confirm: str
                       ) -> tuple[Any, ...]:
        try:
            actor = principal(self.s, request)
            _same(password, confirm)
            info = self.s.users.set_password(name or "", password or "", actor=actor)
        except StudioError as exc:
            return self._failed("Password not changed.", exc)
        return self._done(request, f"Password of **{escape_md(info.name)}** changed.")

    def set_disabled(self, request: gr.Request, name: str, disabled: bool) -> tuple[Any, ...]:
        try:
            info = self.s.users.set_disabled(name or "", bool(disabled),
                                             actor=principal(self.s, request))
        except StudioError as exc:
            return self._failed("Not changed.", exc)
        state = "disabled: they can no longer sign in" if info.disabled else "enabled"
        return self._done(request, f"**{escape_md(info.name)}** is {state}.")

    def disable(self, request: gr.Request, name: str) -> tuple[Any, ...]:
        return self.set_disabled(request, name, True)

    def enable(self, request: gr.Request, name: str) -> tuple[Any, ...]:
        return self.set_disabled(request, name, False)

    def remove(self, request: gr.Request, name: str) -> tuple[Any, ...]:
        try:
            info = self.s.users.remove(name or "", actor=principal(self.s, request))
        except StudioError as exc:
            return self._failed("User not removed.", exc)
        return self._done(request, f"Removed **{escape_md(info.name)}** (their past actions "
                                   "stay in the audit trail under that name).")


def _same(password: str | None, confirm: str | None) -> None:
    if (password or "") != (confirm or ""):
        raise ValidationError("The two passwords differ; type the same password twice.")


def build_users_section(services: Services, on_open: PageLoad) -> None:
    h = UsersHandlers(services)
    gr.Markdown("### Users and roles")
    intro = gr.Markdown(elem_id="users-intro")
    table = gr.Dataframe(headers=USER_HEADERS, datatype="str", interactive=False,
                         elem_id="users-table")
    with gr.Row():
        name = gr.Textbox(label="User name", elem_id="users-name", scale=2)
        role = gr.Dropdown(ROLE_CHOICES, value=Role.VIEWER.value, label="Role",
                           elem_id="users-role", scale=1)
        password = gr.Textbox(label="Password (at least 8 characters)", type="password",
                              elem_id="users-password", scale=2)
        confirm = gr.Textbox(label="Password again", type="password",
                             elem_id="users-confirm", scale=2)
    with gr.Row():
        add_btn = gr.Button("Add user", variant="primary", elem_id="users-add")
        role_btn = gr.Button("Set role", elem_id="users-set-role")
        passwd_btn = gr.Button("Set password", elem_id="users-passwd")
        disable_btn = gr.Button("Disable", elem_id="users-disable")
        enable_btn = gr.Button("Enable", elem_id="users-enable")
        remove_btn = gr.Button("Remove user", variant="stop", elem_id="users-remove")
    result = gr.Markdown(elem_id="users-result")

    outputs = [result, table, password, confirm]
    on_open.add("users_intro", h.intro, intro,
                where="the users section")
    on_open.add("users_list", h.rows, table,
                where="the users section")
    add_btn.click(h.add, inputs=[name, role, password, confirm], outputs=outputs,
                  api_name="user_add")
    role_btn.click(h.set_role, inputs=[name, role], outputs=outputs, api_name="user_set_role")
    passwd_btn.click(h.reset_password, inputs=[name, password, confirm], outputs=outputs,
                     api_name="user_set_password")
    disable_btn.click(h.disable, inputs=name, outputs=outputs, api_name="user_disable")
    enable_btn.click(h.enable, inputs=name, outputs=outputs, api_name="user_enable")
    remove_btn.click(h.remove, inputs=name, outputs=outputs, api_name="user_remove")
