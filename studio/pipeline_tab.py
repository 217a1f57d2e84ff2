"""Layout of the Pipelines tab and its event wiring (handlers in pipeline_handlers)."""

from __future__ import annotations

import gradio as gr

from backend.services.container import Services
from studio.page_load import PageLoad
from studio.pipeline_handlers import STAGE_HEADERS, PipelineHandlers, stage_order


def build_pipeline_tab(services: Services, on_open: PageLoad) -> None:
    h = PipelineHandlers(services)
    services.pipelines.start_watcher()  # starts each final comparison when its jobs are done
    gr.Markdown("The paper's recipe in one launch: " + " → ".join(stage_order()) +
                " → a comparison of the RL policy against the base and the SFT policy. Each "
                "stage is a job on the Training tab; it starts when the jobs it needs have "
                "succeeded, and a failed stage stops the ones after it.")
    with gr.Row():
        name = gr.Textbox(label="Name (optional)", elem_id="pl-name")
        version = gr.Dropdown(label="Constitution version", choices=[], elem_id="pl-version")
        base = gr.Textbox(label="Base model", value="tiny", elem_id="pl-base")
        prompt_set = gr.Textbox(label="Prompt set", value="default", elem_id="pl-prompt-set")
    with gr.Row():
        prompts = gr.Number(label="Prompts per data stage", value=16, precision=0,
                            elem_id="pl-prompts")
        steps = gr.Number(label="Steps per training stage", value=20, precision=0,
                          elem_id="pl-steps")
        compare_prompts = gr.Number(label="Comparison prompts", value=8, precision=0,
                                    elem_id="pl-compare-prompts")
        algorithm = gr.Radio(["grpo", "rloo", "ppo"], value="grpo", label="RL algorithm",
                             elem_id="pl-algorithm")
        device = gr.Textbox(label="Device", value="auto", elem_id="pl-device")
    preference_source = gr.Radio(
        [("AI labeller on two SFT samples (the paper)", "labeller"),
         ("SL-CAI revisions preferred over first responses (no labeller calls)", "revisions")],
        value="labeller", label="Preference pairs for the reward model",
        elem_id="pl-preference-source")
    overrides = gr.Code(label='More settings (JSON: per stage, e.g. {"sft": {"lora": true}}, '
                        'and "comparison")',
                        language="json", value="", elem_id="pl-overrides")
    launch_btn = gr.Button("Launch pipeline", variant="primary", elem_id="pl-launch")
    launch_result = gr.Markdown(elem_id="pl-launch-result")

    gr.Markdown("### Pipelines")
    with gr.Row():
        picked = gr.Dropdown(label="Pipeline", choices=[], elem_id="pl-picked", scale=3)
        refresh = gr.Button("Refresh", elem_id="pl-refresh")
        cancel = gr.Button("Cancel pipeline", elem_id="pl-cancel")
        resume = gr.Button("Resume pipeline", elem_id="pl-resume")
    action_result = gr.Markdown(elem_id="pl-action-result")
    summary = gr.Markdown(elem_id="pl-summary")
    stages = gr.Dataframe(headers=STAGE_HEADERS, value=[], interactive=False,
                          elem_id="pl-stages", wrap=True)
    curves = gr.Plot(label="Training curves", elem_id="pl-curves")
    result = gr.Markdown(elem_id="pl-result")
    timer = gr.Timer(3.0)

    view_outputs = [summary, stages, curves, result]
    on_open.add("pipeline_load", h.load, [version, picked, base],
                where="the Pipelines tab")
    launch_btn.click(h.launch, inputs=[name, version, base, prompt_set, prompts, steps,
                                       compare_prompts, algorithm, device, overrides,
                                       preference_source],
                     outputs=[launch_result, picked], api_name="pipeline_launch")
    picked.change(h.view, inputs=picked, outputs=view_outputs, api_name="pipeline_view")
    refresh.click(h.view, inputs=picked, outputs=view_outputs, api_name="pipeline_refresh")
    timer.tick(h.view, inputs=picked, outputs=view_outputs, api_name="pipeline_tick",
               show_progress="hidden")
    cancel.click(h.cancel, inputs=picked, outputs=action_result, api_name="pipeline_cancel")
    resume.click(h.resume, inputs=picked, outputs=action_result, api_name="pipeline_resume")
