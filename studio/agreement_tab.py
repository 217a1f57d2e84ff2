"""Layout of the Agreement tab and its event wiring (handlers in agreement_handlers)."""

from __future__ import annotations

import gradio as gr

from backend.services.container import Services
from studio.agreement_handlers import (
    DATASET_HEADERS,
    FORMATS,
    RUN_HEADERS,
    AgreementHandlers,
)
from studio.judge_marks import JUDGE_CHOICES
from studio.page_load import PageLoad
from studio.run_controls import build_run_controls, wire_run_controls


def build_agreement_tab(services: Services, on_open: PageLoad, tab: gr.Tab | None = None
                        ) -> None:
    h = AgreementHandlers(services)
    with gr.Accordion("Datasets of human-labelled pairs", open=False):
        with gr.Row():
            upload = gr.File(label="Pairs file (.jsonl, .jsonl.gz, .csv)", type="filepath",
                             elem_id="ag-upload")
            with gr.Column():
                fmt = gr.Dropdown(FORMATS, value="hh_rlhf", label="Format", elem_id="ag-format")
                ds_name = gr.Textbox(label="Dataset name (optional)", elem_id="ag-ds-name")
        with gr.Row():
            prompt_col = gr.Textbox(label="Prompt column", value="prompt", elem_id="ag-col-prompt")
            a_col = gr.Textbox(label="Response A column", value="response_a",
                               elem_id="ag-col-a")
            b_col = gr.Textbox(label="Response B column", value="response_b",
                               elem_id="ag-col-b")
            label_col = gr.Textbox(label="Label column (A/B/tie)", value="label",
                                   elem_id="ag-col-label")
            label_values = gr.Textbox(label="Label values (e.g. 1=A, 2=B, 0=tie)",
                                      placeholder="needed when labels are not A/B/tie",
                                      elem_id="ag-label-values")
        with gr.Row():
            import_btn = gr.Button("Import dataset", elem_id="ag-import", scale=1)
            import_result = gr.Markdown(elem_id="ag-import-result")
        datasets = gr.Dataframe(headers=DATASET_HEADERS, datatype="str", interactive=False,
                                elem_id="ag-datasets")

    gr.Markdown("### Launch an evaluation")
    with gr.Row():
        dataset = gr.Dropdown(label="Dataset", choices=[], elem_id="ag-dataset")
        constitution = gr.Dropdown(label="Constitution", choices=[], elem_id="ag-constitution")
        version = gr.Dropdown(label="Version", choices=[], elem_id="ag-version")
        # a text box: gr.Number shows an empty value as 0, which reads as "no items"
        sample = gr.Textbox(label="Sample size (empty = all)", value="", placeholder="all",
                            elem_id="ag-sample")
    with gr.Row():
        cot = gr.Checkbox(label="Chain of thought", value=False, elem_id="ag-cot")
        both = gr.Checkbox(label="Both orders", value=True, elem_id="ag-both")
        shots = gr.Checkbox(label="Labelling examples of the constitution", value=True,
                            elem_id="ag-few-shots")
        k = gr.Slider(1, 8, value=1, step=1, label="Principles per verdict", elem_id="ag-k")
        seed = gr.Number(label="Seed", value=0, precision=0, elem_id="ag-seed")
        form = gr.Radio(["chat", "raw"], value="chat", label="Prompt form", elem_id="ag-form",
                        info="chat: the model's chat template; raw: Human:/Assistant: text")
        judge = gr.Radio(JUDGE_CHOICES, value="scored", label="Judge", elem_id="ag-judge",
                         info="parsed: for servers without logprobs (hard labels)")
        launch_btn = gr.Button("Start evaluation", variant="primary", elem_id="ag-launch")
    launch_result = gr.Markdown(elem_id="ag-launch-result")
    controls = build_run_controls("ag", "Run", RUN_HEADERS)
    run, runs = controls.run, controls.runs

    gr.Markdown("### Report")
    report_btn = gr.Button("Show report for the selected run", elem_id="ag-report-btn")
    metrics_md = gr.Markdown(elem_id="ag-metrics")
    with gr.Row():
        reliability = gr.Plot(label="Reliability diagram", elem_id="ag-reliability")
        histogram = gr.Plot(label="Confidence histogram", elem_id="ag-histogram")
    per_principle = gr.Plot(label="Accuracy per principle", elem_id="ag-principles")

    with gr.Accordion("Disagreement browser", open=True):
        with gr.Row():
            principle = gr.Dropdown(label="Principle", choices=[("any principle", "")], value="",
                                    elem_id="ag-filter-principle")
            low = gr.Slider(0.5, 1.0, value=0.5, step=0.01, label="Min confidence",
                            elem_id="ag-filter-low")
            high = gr.Slider(0.5, 1.0, value=1.0, step=0.01, label="Max confidence",
                             elem_id="ag-filter-high")
            label = gr.Radio(["any", "A", "B", "tie"], value="any", label="Human label",
                             elem_id="ag-filter-label")
            only_wrong = gr.Checkbox(label="Only disagreements", value=True,
                                     elem_id="ag-filter-wrong")
            page = gr.Number(label="Page", value=1, precision=0, elem_id="ag-page")
        browse_btn = gr.Button("Show items", elem_id="ag-browse")
        browser = gr.Markdown(elem_id="ag-browser")

    with gr.Accordion("Compare two runs", open=False):
        with gr.Row():
            run_a = gr.Dropdown(label="First run", choices=[], elem_id="ag-run-a")
            run_b = gr.Dropdown(label="Second run", choices=[], elem_id="ag-run-b")
            compare_btn = gr.Button("Compare", elem_id="ag-compare")
        comparison = gr.Markdown(elem_id="ag-comparison")

    on_open.add("agreement_load", h.load,
                [datasets, dataset, constitution, runs, run, run_a, run_b],
                where="the Agreement tab")
    constitution.change(h.versions, inputs=constitution, outputs=version,
                        api_name="agreement_versions")
    seen_head = gr.State(None)
    version.change(lambda v, head: v if head is None else head, inputs=[version, seen_head],
                   outputs=seen_head, api_name="agreement_seen_head", show_progress="hidden")
    if tab is not None:  # versions saved, constitutions or datasets imported elsewhere
        tab.select(h.refresh, inputs=[dataset, constitution, version, seen_head, run, run_a,
                                      run_b],
                   outputs=[dataset, constitution, version, seen_head, run, run_a, run_b],
                   api_name="agreement_refresh", show_progress="hidden")
    import_btn.click(h.import_dataset,
                     inputs=[upload, fmt, ds_name, prompt_col, a_col, b_col, label_col,
                             label_values],
                     outputs=[import_result, datasets, dataset], api_name="dataset_import")
    launch_btn.click(h.launch, inputs=[dataset, version, sample, cot, both, k, seed, shots, form,
                                             judge],
                     outputs=[launch_result, runs, run, run_a, run_b],
                     api_name="evaluation_launch")
    wire_run_controls(controls, "evaluation", cancel=h.cancel, resume=h.resume, progress=h.progress,
                      tick=h.tick)
    report_btn.click(h.report, inputs=run,
                     outputs=[metrics_md, reliability, per_principle, histogram, principle],
                     api_name="agreement_report")
    browse_btn.click(h.disagreements,
                     inputs=[run, principle, low, high, label, only_wrong, page],
                     outputs=browser, api_name="agreement_disagreements")
    compare_btn.click(h.compare, inputs=[run_a, run_b], outputs=comparison,
                      api_name="agreement_compare")
