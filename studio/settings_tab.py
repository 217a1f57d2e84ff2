"""The Settings tab: which model engine answers, users and roles, and where data lives."""

from __future__ import annotations

from typing import Any

import gradio as gr

from backend.engines.registry import AUTO_DESCRIPTION, ENGINE_KINDS, setting_choices
from backend.errors import StudioError
from backend.services.container import Services
from backend.services.engines import EngineConfig
from studio.page_load import PageLoad
from studio.render import escape_md
from studio.session import principal
from studio.users_section import build_users_section


def kind_choices() -> list[tuple[str, str]]:
    """(label, value) for every engine kind of the registry, ``auto`` first."""
    return [(f"{ENGINE_KINDS[k].label} ({k})" if k in ENGINE_KINDS else f"Automatic ({k})", k)
            for k in setting_choices()]


def kind_help() -> str:
    return "\n".join([f"- **auto**: {AUTO_DESCRIPTION}"]
                     + [f"- **{k}**: {i.description}" for k, i in ENGINE_KINDS.items()])


class SettingsHandlers:
    def __init__(self, services: Services) -> None:
        self.s = services

    def current(self) -> tuple[Any, ...]:
        c = self.s.engines.config
        return (c.kind, c.base_url or "", c.model or "", "", c.local_model, c.max_in_flight,
                self.status())

    def status(self) -> str:
        info = self.s.engines.info()
        if info is None:
            return "No model loaded yet (it loads on first use)."
        health = self.s.engines.health()
        state = "ready" if health.ok else "NOT READY"
        note = f"\n\n{escape_md(self.s.engines.note)}" if self.s.engines.note else ""
        stored = ("\n\nThese settings were applied here before and restored from the store."
                  if self.s.engines.restored else "")
        return (f"**{escape_md(info.badge)}** — {state}: {escape_md(health.message)}" + note
                + stored)

    def apply(self, request: gr.Request, kind: str, base_url: str, model: str, api_key: str,
              local_model: str, max_in_flight: float) -> str:
        current = self.s.engines.config
        config = EngineConfig(
            kind=kind, base_url=base_url.strip() or None, model=model.strip() or None,
            api_key=api_key.strip() or current.api_key,
            local_model=local_model.strip() or current.local_model,
            max_in_flight=int(max_in_flight), timeout_s=current.timeout_s)
        try:
            self.s.engines.configure(config, actor=principal(self.s, request))
        except StudioError as exc:
            return f"**Not changed:** {escape_md(exc.message)}"
        return ("Engine switched and stored (reload the page to refresh the header). "
                + self.status())


def build_settings_tab(services: Services, on_open: PageLoad) -> None:
    h = SettingsHandlers(services)
    gr.Markdown("### Model engine")
    with gr.Row():
        kind = gr.Radio(kind_choices(), label="Engine", elem_id="set-engine-kind",
                        info="auto: server if a URL is set, else the local model, else the "
                             "bundled SmolLM2-135M (offline)")
        max_in_flight = gr.Number(label="Requests in flight (server)", precision=0,
                                  elem_id="set-max-in-flight")
    with gr.Row():
        base_url = gr.Textbox(label="Server base URL (vllm serve)", elem_id="set-base-url",
                              placeholder="http://localhost:8000")
        model = gr.Textbox(label="Model name on the server", elem_id="set-model")
        api_key = gr.Textbox(label="API key (kept if left empty)", type="password",
                             elem_id="set-api-key")
    local_model = gr.Textbox(label="Local model: Hub id, folder or .gguf file "
                                   "(engine local / vllm_inprocess)",
                             elem_id="set-local-model")
    with gr.Row():
        apply_btn = gr.Button("Apply and check", variant="primary", elem_id="set-apply")
        check_btn = gr.Button("Check health", elem_id="set-check")
    gr.Markdown(kind_help(), elem_id="set-engine-kinds")
    gr.Markdown("Apply and check switches only when the new engine passes its health check "
                "(the previous one stays otherwise); applied settings are stored and restored "
                "on the next start. The API key is never stored: set CSTUDIO_ENGINE_API_KEY.")
    status = gr.Markdown(elem_id="set-engine-status")
    build_users_section(services, on_open)
    gr.Markdown("### Data")
    gr.Markdown(f"Database: **{escape_md(services.db.dialect)}** · data directory: "
                f"`{str(services.settings.data_dir).replace('`', '')}`", elem_id="set-data")

    on_open.add("engine_settings", h.current,
                [kind, base_url, model, api_key, local_model, max_in_flight, status],
                where="the Settings tab")
    apply_btn.click(h.apply, inputs=[kind, base_url, model, api_key, local_model, max_in_flight],
                    outputs=status, api_name="engine_configure")
    check_btn.click(h.status, inputs=None, outputs=status, api_name="engine_health")
