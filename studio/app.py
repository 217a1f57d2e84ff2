"""build_app(settings, services) -> gr.Blocks, and launching it."""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from backend.errors import StudioError
from backend.services.container import Services
from backend.settings import Settings
from studio.agreement_tab import build_agreement_tab
from studio.constitution_tab import build_constitution_tab
from studio.playground_tab import build_playground_tab
from studio.render import escape_md
from studio.settings_tab import build_settings_tab

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
MAX_UPLOAD = "200mb"  # per file, checked again (smaller) by each importer


def _model_line(services: Services) -> str:
    """The header badge: which model answers, and a plain warning for the demo model."""
    try:
        info = services.engines.get().info
    except StudioError as exc:
        return f"Model: **unavailable** — {escape_md(exc.message)}"
    if info.is_demo:
        return ("Model: ⚠️ **demo model: random weights** — its outputs are meaningless; "
                "configure a real model (CSTUDIO_ENGINE_BASE_URL or CSTUDIO_LOCAL_MODEL)")
    return f"Model: **{escape_md(info.model)}** ({info.kind})"


def _user_line(settings: Settings) -> str:
    return f"Signed in: **{escape_md(settings.user)}** (single local user, no sign-in)"


def build_app(settings: Settings, services: Services) -> gr.Blocks:
    with gr.Blocks(title="Constitution Studio", analytics_enabled=False) as demo:
        with gr.Row(elem_id="studio-header"):
            gr.Markdown("## Constitution Studio", elem_id="studio-title")
            header = gr.Markdown(elem_id="active-constitution")
            model_badge = gr.Markdown(elem_id="model-badge")
            gr.Markdown(_user_line(settings), elem_id="user-badge")
        with gr.Tabs():
            with gr.Tab("Constitution", id="constitution", elem_id="tab-constitution"):
                build_constitution_tab(services, header, demo)
            with gr.Tab("Playground", id="playground", elem_id="tab-playground"):
                build_playground_tab(services, demo)
            with gr.Tab("Agreement", id="agreement", elem_id="tab-agreement"):
                build_agreement_tab(services, demo)
            with gr.Tab("Settings", id="settings", elem_id="tab-settings"):
                build_settings_tab(services, demo)
        demo.load(lambda: _model_line(services), inputs=None, outputs=model_badge)
    app: gr.Blocks = demo
    return app


def css() -> str | None:
    path = STATIC_DIR / "studio.css"
    return path.read_text(encoding="utf-8") if path.is_file() else None


def launch(demo: gr.Blocks, settings: Settings, *, block: bool = True) -> None:
    demo.queue(default_concurrency_limit=8)
    demo.launch(
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
