"""Layout of the Playground tab and its event wiring (handlers in playground_handlers)."""

from __future__ import annotations

from typing import Any

import gradio as gr

from backend.services.container import Services
from studio.page_load import PageLoad
from studio.playground_handlers import BASE_CHOICE, VARIANT_HEADERS, PlaygroundHandlers

MODEL_CALLS = 2  # playground model calls running at once, all users together


def build_playground_tab(services: Services, on_open: PageLoad, tab: gr.Tab | None = None) -> None:
    h = PlaygroundHandlers(services)
    engine_md = gr.Markdown(elem_id="playground-engine")
    policy = gr.Dropdown(label="Policy: the model that answers, critiques, revises and judges "
                         "(base, a finished training job's model, or the server's model)",
                         choices=[BASE_CHOICE], value="base", allow_custom_value=True,
                         elem_id="pg-policy")
    with gr.Row():
        constitution = gr.Dropdown(label="Constitution", choices=[], elem_id="pg-constitution")
        version = gr.Dropdown(label="Version", choices=[], elem_id="pg-version")
        principle = gr.Dropdown(label="Principle", choices=[], elem_id="pg-principle")
        form = gr.Radio(["chat", "raw"], value="chat", label="Prompt form", elem_id="pg-form")
    with gr.Row():
        with gr.Column(scale=3):
            prompt_set = gr.Dropdown(
                label="Demo prompt (HH-RLHF first human turns, else the built-in set)",
                choices=[], elem_id="pg-prompt-set")
            prompt = gr.Textbox(label="Prompt", lines=3, elem_id="pg-prompt",
                                placeholder="Type a red-team prompt, or pick one above.")
        with gr.Column(scale=2):
            rounds = gr.Slider(1, 8, value=4, step=1, label="Critique → revision rounds",
                               elem_id="pg-rounds")
            max_tokens = gr.Slider(8, 1024, value=128, step=8, label="Max new tokens per step",
                                   elem_id="pg-max-tokens")
            temperature = gr.Slider(0.0, 1.5, value=0.0, step=0.05,
                                    label="Temperature (0 = greedy)", elem_id="pg-temperature")
            seed = gr.Number(value=0, precision=0, label="Seed", elem_id="pg-seed")
    with gr.Row():
        run_btn = gr.Button("Run critique → revision", variant="primary", elem_id="pg-run",
                            scale=4)
        stop_btn = gr.Button("Stop", variant="stop", elem_id="pg-stop", scale=1)
    preview = gr.Markdown(elem_id="pg-preview")
    with gr.Accordion("Side by side: the same prompt with two policies", open=False):
        with gr.Row():
            policy_b = gr.Dropdown(label="Second policy", choices=[BASE_CHOICE], value="base",
                                   allow_custom_value=True, elem_id="pg-policy-b")
            sbs_btn = gr.Button("Run both side by side", elem_id="pg-sbs-run")
        with gr.Row():
            sbs_a = gr.Markdown(elem_id="pg-sbs-a")
            sbs_b = gr.Markdown(elem_id="pg-sbs-b")

    with gr.Accordion("A/B verdict", open=True):
        with gr.Row():
            response_a = gr.Textbox(label="Response A", lines=3, elem_id="pg-response-a")
            response_b = gr.Textbox(label="Response B", lines=3, elem_id="pg-response-b")
        with gr.Row():
            sample_btn = gr.Button("Generate A and B with the model", elem_id="pg-sample")
            cot = gr.Checkbox(label="Chain of thought", value=False, elem_id="pg-cot")
            both = gr.Checkbox(label="Both orders (A,B) and (B,A)", value=True,
                               elem_id="pg-both")
            clamp = gr.Checkbox(label="Clamp CoT to 40–60 %", value=True, elem_id="pg-clamp")
            shots = gr.Checkbox(label="Labelling examples of the constitution", value=True,
                                elem_id="pg-few-shots")
            k = gr.Slider(1, 8, value=1, step=1, label="Principles to ensemble (when sampling)",
                          elem_id="pg-k")
        judge_btn = gr.Button("Judge A vs B", variant="primary", elem_id="pg-judge")
        verdict_plot = gr.Plot(label="Verdict", elem_id="pg-verdict-plot")
        verdict_md = gr.Markdown(elem_id="pg-verdict")
        variants = gr.Dataframe(headers=VARIANT_HEADERS, datatype="str", interactive=False,
                                wrap=True, elem_id="pg-variants")

    on_open.add("playground_load", h.load,
                [engine_md, constitution, version, principle, prompt_set],
                where="the Playground tab")
    on_open.add("playground_policies", h.policy_choices, [policy, policy_b],
                where="the Playground tab")
    constitution.input(h.versions, inputs=constitution, outputs=version,
                       api_name="playground_versions")
    seen_head = gr.State(None)
    version.change(lambda v, head: v if head is None else head, inputs=[version, seen_head],
                   outputs=seen_head, api_name="playground_seen_head", show_progress="hidden")
    if tab is not None:  # a constitution imported elsewhere shows up here on return
        tab.select(h.relist_constitutions, inputs=constitution, outputs=constitution,
                   api_name="playground_relist_constitutions", show_progress="hidden")
    if tab is not None:  # a version saved on the Constitution tab shows up here on return
        tab.select(h.refresh_versions, inputs=[constitution, version, seen_head],
                   outputs=[version, seen_head], api_name="playground_refresh_versions",
                   show_progress="hidden")
    version.change(h.principles, inputs=version, outputs=principle,
                   api_name="playground_principles")
    prompt_set.input(lambda p: p or "", inputs=prompt_set, outputs=prompt,
                     api_name="playground_pick_prompt")
    # Model calls share a small pool (MODEL_CALLS at a time across all users), so a long
    # preview never holds up the other tabs' quick events; Stop ends a preview between tokens.
    model: dict[str, Any] = {"concurrency_id": "playground-model",
                             "concurrency_limit": MODEL_CALLS}
    running = run_btn.click(h.preview, inputs=[version, principle, prompt, rounds, max_tokens,
                                               temperature, seed, form, policy],
                            outputs=preview, api_name="playground_preview", **model)
    side_by_side = sbs_btn.click(h.side_by_side,
                                 inputs=[version, principle, prompt, rounds, max_tokens,
                                         temperature, seed, form, policy, policy_b],
                                 outputs=[sbs_a, sbs_b], api_name="playground_side_by_side",
                                 **model)
    sampling = sample_btn.click(h.sample_pair, inputs=[prompt, max_tokens, seed, policy],
                                outputs=[response_a, response_b, verdict_md],
                                api_name="playground_sample", **model)
    judging = judge_btn.click(h.judge, inputs=[version, principle, prompt, response_a,
                                               response_b, cot, both, k, clamp, seed, form,
                                               shots, policy],
                              outputs=[verdict_plot, verdict_md, variants],
                              api_name="playground_judge", **model)
    stop_btn.click(None, inputs=None, outputs=None,
                   cancels=[running, side_by_side, sampling, judging], api_name="playground_stop")
