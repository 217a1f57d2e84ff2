"""Layout of the Compare tab and its event wiring (handlers in compare_handlers)."""

from __future__ import annotations

import gradio as gr

from backend.services.container import Services
from studio.compare_handlers import RUN_HEADERS, CompareHandlers
from studio.compare_votes import CompareVoteHandlers
from studio.judge_marks import JUDGE_CHOICES
from studio.page_load import PageLoad
from studio.run_controls import build_run_controls, wire_run_controls


def build_compare_tab(services: Services, on_open: PageLoad) -> None:
    h = CompareHandlers(services)
    v = CompareVoteHandlers(services)
    gr.Markdown("Compare the base model with what training made of it: each policy answers "
                "the same prompts, the judge labels every pair under a constitution, and the "
                "report gives win rates and Elo with 95 % bootstrap intervals.")
    with gr.Row():
        policies = gr.Dropdown(label="Policies (two or more; or type server:<model> or a "
                               "model folder)", choices=[], multiselect=True,
                               allow_custom_value=True, elem_id="cmp-policies", scale=3)
        constitution = gr.Dropdown(label="Constitution", choices=[], elem_id="cmp-constitution")
        version = gr.Dropdown(label="Version", choices=[], elem_id="cmp-version")
    open_links = gr.Markdown(elem_id="cmp-open-links")
    with gr.Row():
        prompt_set = gr.Textbox(label="Prompt set (.jsonl file; empty = the default set)",
                                value="", elem_id="cmp-prompt-set", scale=3)
        max_prompts = gr.Number(label="Prompts", value=20, precision=0, elem_id="cmp-n")
        max_tokens = gr.Number(label="Max new tokens", value=128, precision=0,
                               elem_id="cmp-tokens")
        rewards = gr.Dropdown(label="Also score with reward models (optional)", choices=[],
                              multiselect=True, elem_id="cmp-rewards", scale=2)
    with gr.Row():
        cot = gr.Checkbox(label="Chain of thought", value=False, elem_id="cmp-cot")
        both = gr.Checkbox(label="Both orders", value=True, elem_id="cmp-both")
        k = gr.Slider(1, 8, value=1, step=1, label="Principles per verdict", elem_id="cmp-k")
        seed = gr.Number(label="Seed", value=0, precision=0, elem_id="cmp-seed")
        judge = gr.Radio(JUDGE_CHOICES, value="scored", label="Judge", elem_id="cmp-judge")
        launch_btn = gr.Button("Start comparison", variant="primary", elem_id="cmp-launch")
    launch_result = gr.Markdown(elem_id="cmp-launch-result")
    controls = build_run_controls("cmp", "Comparison", RUN_HEADERS)
    run, runs = controls.run, controls.runs

    gr.Markdown("### Results")
    report_btn = gr.Button("Show results for the selected comparison", elem_id="cmp-report-btn")
    summary = gr.Markdown(elem_id="cmp-summary")
    with gr.Row():
        win_rate = gr.Plot(label="Win rates", elem_id="cmp-winrate")
        axes = gr.Plot(label="Harmlessness vs helpfulness", elem_id="cmp-hh")
    principles = gr.Plot(label="Per principle", elem_id="cmp-principles")
    with gr.Accordion("What changed since an earlier comparison", open=False):
        with gr.Row():
            earlier = gr.Dropdown(label="Earlier comparison", choices=[], elem_id="cmp-earlier")
            changes_btn = gr.Button("Show changes", elem_id="cmp-changes-btn")
        changes = gr.Markdown(elem_id="cmp-changes")
    with gr.Accordion("Side-by-side responses and verdicts", open=True):
        with gr.Row():
            page = gr.Number(label="Page", value=1, precision=0, elem_id="cmp-page")
            browse_btn = gr.Button("Show pairs", elem_id="cmp-browse")
        browser = gr.Markdown(elem_id="cmp-browser")
        with gr.Row():
            vote_pair = gr.Number(label="Pair #", value=None, precision=0,
                                  elem_id="cmp-vote-pair")
            vote_label = gr.Radio(["A", "B", "tie"], value="A", label="Which is better?",
                                  elem_id="cmp-vote-label")
            vote_btn = gr.Button("Vote", elem_id="cmp-vote")
            dataset_btn = gr.Button("Make a human-labelled dataset from the votes",
                                    elem_id="cmp-votes-dataset")
        vote_result = gr.Markdown(elem_id="cmp-vote-result")
        votes_btn = gr.Button("Show votes and disagreements", elem_id="cmp-votes-view-btn")
        votes_view = gr.Markdown(elem_id="cmp-votes-view")
        with gr.Row():
            adj_pair = gr.Number(label="Disputed pair #", value=None, precision=0,
                                 elem_id="cmp-adj-pair")
            adj_label = gr.Radio(["A", "B", "tie"], value="A", label="Adjudicated label",
                                 elem_id="cmp-adj-label")
            adj_reason = gr.Textbox(label="Reason (recorded in the audit log)",
                                    elem_id="cmp-adj-reason", scale=2)
            adj_btn = gr.Button("Adjudicate (editors)", elem_id="cmp-adjudicate")
        adj_result = gr.Markdown(elem_id="cmp-adj-result")

    on_open.add("compare_load", h.load, [policies, constitution, runs, run, rewards, earlier],
                where="the Compare tab")
    on_open.add("compare_playground_links", h.playground_links, open_links,
                where="the Compare tab")
    constitution.change(h.versions, inputs=constitution, outputs=version,
                        api_name="compare_versions")
    launch_btn.click(h.launch, inputs=[policies, version, prompt_set, max_prompts, max_tokens,
                                       cot, both, k, seed, rewards, judge],
                     outputs=[launch_result, runs, run], api_name="compare_launch")
    wire_run_controls(controls, "compare", cancel=h.cancel, resume=h.resume, progress=h.progress,
                      tick=h.tick)
    report_btn.click(h.report, inputs=run, outputs=[summary, win_rate, axes, principles],
                     api_name="compare_report")
    browse_btn.click(h.browse, inputs=[run, page], outputs=browser, api_name="compare_browse")
    changes_btn.click(h.changes, inputs=[run, earlier], outputs=changes,
                      api_name="compare_changes")
    vote_btn.click(h.vote, inputs=[run, vote_pair, vote_label], outputs=vote_result,
                   api_name="compare_vote")
    votes_btn.click(v.view, inputs=run, outputs=votes_view, api_name="compare_votes_view")
    adj_btn.click(v.adjudicate, inputs=[run, adj_pair, adj_label, adj_reason],
                  outputs=[adj_result, votes_view], api_name="compare_adjudicate")
    dataset_btn.click(h.votes_dataset, inputs=run, outputs=vote_result,
                      api_name="compare_votes_dataset")
