"""Who is signed in for a UI request. Every handler that writes asks here for its Principal and
passes it to the service, which enforces the role.

* No users configured: the single local user (``settings.user``) as admin; the studio then only
  binds to 127.0.0.1.
* Users configured: the user Gradio signed in (``request.username``), looked up on every
  request, so a role change, a disabled account or a removed user takes effect at once.
"""

from __future__ import annotations

import gradio as gr

from backend.access import Principal, local_admin
from backend.errors import PermissionDeniedError
from backend.services.container import Services
from studio.render import escape_md


def principal(services: Services, request: gr.Request | None) -> Principal:
    """The Principal for this request; PermissionDeniedError if no active user is signed in."""
    if not services.users.any_users():
        return local_admin(services.settings.user)
    name = getattr(request, "username", None) if request is not None else None
    if not name:
        raise PermissionDeniedError(
            "Sign-in is required: users were added while this studio ran without sign-in. "
            "Restart it (`cstudio serve`) and sign in.")
    found = services.users.active_principal(str(name))
    if found is None:
        raise PermissionDeniedError(
            f"{name} is no longer an active user (removed or disabled); ask an admin.")
    return found


def user_line(services: Services, request: gr.Request | None) -> str:
    """The header badge: who is signed in, with which role."""
    if not services.users.any_users():
        return (f"Signed in: **{escape_md(services.settings.user)}** (single local user, "
                "no sign-in)")
    try:
        who = principal(services, request)
    except PermissionDeniedError as exc:
        return f"**Not signed in.** {escape_md(exc.message)}"
    return f"Signed in: **{escape_md(who.name)}** · role **{who.role.value}**"
