"""build_app(settings, services) -> gr.Blocks, and launching it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import gradio as gr

from backend.errors import StudioError
from backend.services.container import Services
from backend.settings import Settings
from studio.agreement_tab import build_agreement_tab
from studio.audit_tab import build_audit_tab
from studio.compare_tab import build_compare_tab
from studio.compression import app_kwargs as compression_kwargs
from studio.constitution_tab import build_constitution_tab
from studio.page_load import PageLoad
from studio.pipeline_tab import build_pipeline_tab
from studio.playground_tab import build_playground_tab
from studio.render import escape_md
from studio.security_middleware import guard_middleware
from studio.session import user_line
from studio.settings_tab import build_settings_tab
from studio.training_tab import build_training_tab

STATIC_DIR = Path(__file__).resolve().parent / "static"  # package data (pyproject.toml)
MAX_UPLOAD = "200mb"  # per file, checked again (smaller) by each importer
MODEL_LOADING = "Model: loading…"  # the header until the model is in (the first load takes seconds)


def _model_line(services: Services) -> str:
    """The header badge: which model answers, and a plain warning for the demo model."""
    try:
        info = services.engines.get().info
    except StudioError as exc:
        return f"Model: **unavailable** — {escape_md(exc.message)}"
    if info.is_demo:
        return ("Model: ⚠️ **demo model: random weights** — its outputs are meaningless; "
                "pick a real one in the Settings tab")
    if info.kind == "smollm2":
        return (f"Model: **{escape_md(info.model)}** (smollm2, offline) — a 135M model: "
                "readable text, weak judge")
    return f"Model: **{escape_md(info.model)}** ({info.kind})"


def linked_tab(request: gr.Request) -> Any:
    """A link to a record (``?record=ID``), a training dataset (``?dataset=ID``), a job
    (``?job=ID``) or a policy (``?policy=job:3``, the Playground) opens the tab showing it."""
    params = getattr(request, "query_params", None) or {}
    for name, tab in (("record", "audit"), ("dataset", "audit"), ("job", "training"),
                      ("policy", "playground")):
        if params.get(name):
            return gr.Tabs(selected=tab)
    return gr.skip()


def build_app(settings: Settings, services: Services) -> gr.Blocks:
    with gr.Blocks(title="Constitution Studio", analytics_enabled=False) as demo:
        # The model line has a full-width row of its own, so its text, filled in once the
        # model is loaded, stays one line on a desktop screen and the tabs below do not move
        # (they jumped three lines down seconds after the page opened, under the pointer).
        with gr.Column(elem_id="studio-header"):
            with gr.Row(elem_id="studio-header-top"):
                gr.Markdown("## Constitution Studio", elem_id="studio-title")
                header = gr.Markdown(elem_id="active-constitution")
                signed = services.users.any_users()
                # with sign-in on, the page load fills in who signed in
                user_badge = gr.Markdown("" if signed else user_line(services, None),
                                         elem_id="user-badge")
                if signed:
                    gr.Button("Sign out", link="/logout", size="sm", scale=0,
                              elem_id="sign-out")
            model_badge = gr.Markdown(MODEL_LOADING, elem_id="model-badge")
        # the hidden tabs' page loads, and the header's user line, as one event (page_load.py)
        on_open = PageLoad()
        with gr.Tabs() as tabs:
            with gr.Tab("Constitution", id="constitution", elem_id="tab-constitution"):
                build_constitution_tab(services, header, demo, on_open)
            with gr.Tab("Playground", id="playground", elem_id="tab-playground") as pg_tab:
                build_playground_tab(services, on_open, pg_tab)
            with gr.Tab("Agreement", id="agreement", elem_id="tab-agreement") as ag_tab:
                build_agreement_tab(services, on_open, ag_tab)
            with gr.Tab("Training", id="training", elem_id="tab-training") as tr_tab:
                build_training_tab(services, on_open, tr_tab)
            with gr.Tab("Compare", id="compare", elem_id="tab-compare"):
                build_compare_tab(services, on_open)
            with gr.Tab("Pipelines", id="pipelines", elem_id="tab-pipelines"):
                build_pipeline_tab(services, on_open)
            with gr.Tab("Audit", id="audit", elem_id="tab-audit") as au_tab:
                build_audit_tab(services, on_open, au_tab)
            with gr.Tab("Settings", id="settings", elem_id="tab-settings"):
                build_settings_tab(services, on_open)
        on_open.add("linked_tab", linked_tab, tabs, where="the link")
        demo.load(lambda: _model_line(services), inputs=None, outputs=model_badge,
                  api_name="header_model", show_progress="hidden")

        def who(request: gr.Request) -> str:
            return user_line(services, request)

        on_open.add("header_user", who, user_badge, where="the header")
        on_open.register(demo)
    app: gr.Blocks = demo
    return app


def css() -> str | None:
    path = STATIC_DIR / "studio.css"
    return path.read_text(encoding="utf-8") if path.is_file() else None


def sign_in(services: Services) -> Callable[[str, str], Awaitable[bool]] | None:
    """Gradio's auth callable (argon2 check against the users table, in a bounded worker
    pool off the event loop), or None while no users are configured (then the studio only
    binds to 127.0.0.1)."""
    if not services.users.any_users():
        return None

    async def check(username: str, password: str) -> bool:
        return await services.users.authenticate_async(username, password) is not None

    return check


def launch(demo: gr.Blocks, settings: Settings, *, block: bool = True,
           services: Services | None = None) -> None:
    """Serve the app; with ``services`` whose users table is not empty, sign-in is required.
    Binding to anything but 127.0.0.1 without sign-in is refused."""
    auth = sign_in(services) if services is not None else None
    if auth is None and not settings.binds_locally:
        raise StudioError(
            f"Refusing to bind to {settings.host} without sign-in: anyone on the network could "
            "edit constitutions. Add an admin first (`cstudio user add NAME --role admin`), "
            "or bind to 127.0.0.1.")
    demo.queue(default_concurrency_limit=8)
    # uploads and downloads leave Gradio's temp folder after an hour (issue 13 point 8)
    demo.delete_cache = (600, 3600)
    # outermost first: Host, Origin, session, upload and export checks, then gzip for the page
    middleware: list[Any] = []
    if services is not None:
        middleware.append(guard_middleware(settings, services.users))
    middleware.extend(compression_kwargs()["middleware"])
    app_kwargs: dict[str, Any] = {"middleware": middleware}
    demo.launch(
        app_kwargs=app_kwargs,
        auth=auth,  # type: ignore[arg-type]
        auth_message="Sign in to Constitution Studio." if auth else None,
        server_name=settings.host,
        server_port=settings.port,
        run_history=False,
        footer_links=["api"],
        max_file_size=MAX_UPLOAD,
        show_error=False,
        css=css(),
        prevent_thread_lock=not block,
        quiet=True,
    )
