"""Layout of the Audit tab and its event wiring (handlers in audit_handlers)."""

from __future__ import annotations

import gradio as gr

from backend.services.container import Services
from studio.audit_handlers import CHAIN_HEADERS, KINDS, RESULT_HEADERS, AuditHandlers, Paging
from studio.page_load import PageLoad


def build_audit_tab(services: Services, on_open: PageLoad, tab: gr.Tab | None = None) -> None:
    h = AuditHandlers(services)
    paging = gr.State(Paging())
    record_id = gr.State(None)
    with gr.Row():
        query = gr.Textbox(label="Search prompts, critiques, revisions and verdict reasoning",
                           placeholder='words, "a phrase", prefix*', scale=4,
                           elem_id="audit-query")
        search_btn = gr.Button("Search", variant="primary", scale=1, elem_id="audit-search")
    with gr.Accordion("Filters", open=False):
        with gr.Row():
            constitution = gr.Dropdown(label="Constitution", choices=[("any constitution", "")],
                                       value="", elem_id="audit-constitution")
            version = gr.Dropdown(label="Version", choices=[("any version", "")], value="",
                                  elem_id="audit-version")
            principle_key = gr.Textbox(label="Principle key", elem_id="audit-principle")
            kind = gr.Dropdown([("any kind", ""), *[(k, k) for k in KINDS]], value="",
                               label="Kind", elem_id="audit-kind")
        with gr.Row():
            model = gr.Dropdown(label="Engine model", choices=[("any model", "")], value="",
                                elem_id="audit-model")
            evaluation = gr.Dropdown(label="Evaluation run", choices=[("any run", "")],
                                     value="", elem_id="audit-evaluation")
            chain = gr.Textbox(label="Chain id", elem_id="audit-chain")
        with gr.Row():
            since = gr.Textbox(label="From (UTC date, e.g. 2026-11-01)", elem_id="audit-since")
            until = gr.Textbox(label="To (UTC date, inclusive)", elem_id="audit-until")
            flagged = gr.Checkbox(label="Only flagged", value=False, elem_id="audit-flagged")
    status = gr.Markdown(elem_id="audit-status")
    results = gr.Dataframe(headers=RESULT_HEADERS, datatype="str", interactive=False,
                           wrap=True, elem_id="audit-results")
    with gr.Row():
        prev_btn = gr.Button("← Newer", size="sm", elem_id="audit-prev")
        next_btn = gr.Button("Older →", size="sm", elem_id="audit-next")

    gr.Markdown("### Record")
    with gr.Row():
        open_id = gr.Number(label="Record id", precision=0, value=None, elem_id="audit-open-id")
        open_btn = gr.Button("Open record", elem_id="audit-open")
        principle_btn = gr.Button("Everything this record's principle produced",
                                  elem_id="audit-principle-records")
    with gr.Row():
        with gr.Column(scale=3):
            detail = gr.Markdown("Choose a record: click a row or type its id.",
                                 elem_id="audit-detail")
        with gr.Column(scale=2):
            gr.Markdown("**Chain** (response → critiques → revisions; click to open)")
            chain_table = gr.Dataframe(headers=CHAIN_HEADERS, datatype="str",
                                       interactive=False, wrap=True, elem_id="audit-chain-table")
            notes = gr.Markdown(elem_id="audit-notes")
            note = gr.Textbox(label="Flag reason or comment", lines=2, elem_id="audit-note")
            with gr.Row():
                flag_btn = gr.Button("Flag", variant="stop", size="sm", elem_id="audit-flag")
                unflag_btn = gr.Button("Clear flag", size="sm", elem_id="audit-unflag")
                comment_btn = gr.Button("Add comment", size="sm", elem_id="audit-comment")

    with gr.Accordion("Provenance of a trained model", open=False):
        with gr.Row():
            job_id = gr.Number(label="Training job id", precision=0, value=None,
                               elem_id="audit-job-id")
            trace_btn = gr.Button("Trace back to datasets, samples and principles",
                                  elem_id="audit-trace")
            dataset_id = gr.Number(label="Training dataset", precision=0, value=None,
                                   elem_id="audit-dataset-id")
            dataset_btn = gr.Button("Show its records", elem_id="audit-dataset-records")
        trace = gr.Markdown(elem_id="audit-trace-result")

    with gr.Accordion("Evidence export and verification", open=True):
        with gr.Row():
            export_name = gr.Textbox(label="Export name (optional)", elem_id="audit-export-name")
            export_btn = gr.Button("Export the records listed (all pages; JSONL + CSV + "
                                   "manifest)",
                                   elem_id="audit-export")
            verify_btn = gr.Button("Verify the audit trail", elem_id="audit-verify")
        export_result = gr.Markdown(elem_id="audit-export-result")
        export_file = gr.File(label="Download", interactive=False, elem_id="audit-export-file")
        verify_result = gr.Markdown(elem_id="audit-verify-result")

    filters = [query, constitution, version, principle_key, model, kind, chain, evaluation,
               since, until, flagged]
    listing = [results, status, paging]
    opened = [detail, chain_table, notes, record_id]
    on_open.add("audit_load", h.load, [constitution, model, evaluation],
                where="the Audit tab")
    # the newest records at once (no empty table until Search), and a record a link named
    on_open.add("audit_opening", h.opening, [*listing, *opened, open_id],
                where="the Audit tab")
    if tab is not None:  # records written since (Playground, jobs) show up on return
        tab.select(h.reopened, inputs=paging, outputs=listing, api_name="audit_reopened",
                   show_progress="hidden")
    constitution.change(h.versions, inputs=constitution, outputs=version,
                        api_name="audit_versions")
    search_btn.click(h.search, inputs=filters, outputs=listing, api_name="audit_search")
    query.submit(h.search, inputs=filters, outputs=listing, api_name="audit_search_enter")
    next_btn.click(h.next_page, inputs=paging, outputs=listing, api_name="audit_next_page")
    prev_btn.click(h.prev_page, inputs=paging, outputs=listing, api_name="audit_prev_page")
    results.select(h.select_row, inputs=None, outputs=open_id, api_name="audit_pick").then(
        h.open_record, inputs=open_id, outputs=opened, api_name="audit_open_picked")
    chain_table.select(h.select_row, inputs=None, outputs=open_id,
                       api_name="audit_pick_in_chain").then(
        h.open_record, inputs=open_id, outputs=opened, api_name="audit_open_in_chain")
    open_btn.click(h.open_record, inputs=open_id, outputs=opened, api_name="audit_record")
    principle_btn.click(h.principle_records, inputs=record_id, outputs=listing,
                        api_name="audit_principle_records")
    trace_btn.click(h.trace_run, inputs=job_id, outputs=trace, api_name="audit_trace_run")
    dataset_btn.click(h.dataset_records, inputs=dataset_id, outputs=listing,
                      api_name="audit_dataset_records")
    written = [detail, chain_table, notes, note]
    flag_btn.click(h.flag, inputs=[record_id, note], outputs=written, api_name="audit_flag")
    unflag_btn.click(h.unflag, inputs=[record_id, note], outputs=written,
                     api_name="audit_unflag")
    comment_btn.click(h.comment, inputs=[record_id, note], outputs=written,
                      api_name="audit_comment")
    export_btn.click(h.export, inputs=[export_name, paging],
                     outputs=[export_result, export_file], api_name="audit_export")
    verify_btn.click(h.verify, inputs=None, outputs=verify_result, api_name="audit_verify")
