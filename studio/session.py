"""Who is signed in for a UI request. Every handler that writes asks here for its Principal and
passes it to the service, which enforces the role."""

from __future__ import annotations

import gradio as gr

from backend.access import Principal, local_admin
from backend.services.container import Services


def principal(services: Services, request: gr.Request | None) -> Principal:
    """The Principal for this request (the single local user while no users are configured)."""
    return local_admin(services.settings.user)
