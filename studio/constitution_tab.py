"""Layout of the Constitution tab and its event wiring (handlers live in constitution_handlers)."""

from __future__ import annotations

from typing import Any

import gradio as gr

from backend.services.container import Services
from studio.aliases_section import build_aliases_section
from studio.constitution_handlers import HISTORY_HEADERS, ConstitutionHandlers
from studio.golden_handlers import CASE_HEADERS, GoldenHandlers
from studio.page_load import PageLoad


def build_constitution_tab(services: Services, header: gr.Markdown, demo: gr.Blocks,
                           on_open: PageLoad) -> None:
    """The visible tab: its page load is an event of its own on ``demo`` (it must not wait
    for the other tabs'); the aliases section joins ``on_open``."""
    h = ConstitutionHandlers(services)
    draft = gr.State(None)
    page = gr.State(0)

    with gr.Row():
        picker = gr.Dropdown(label="Constitution", choices=[], elem_id="constitution-picker",
                             scale=2)
        status = gr.Markdown(elem_id="draft-status")
    read_only = gr.Markdown(elem_id="constitution-read-only")

    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=260):
            principle_list = gr.Radio(label="Principles (in order)", choices=[],
                                      elem_id="principle-list")
            with gr.Row():
                up_btn = gr.Button("↑ Up", size="sm", elem_id="principle-up")
                down_btn = gr.Button("↓ Down", size="sm", elem_id="principle-down")
            with gr.Row():
                add_btn = gr.Button("+ Add", size="sm", elem_id="principle-add")
                delete_btn = gr.Button("Delete", size="sm", variant="stop",
                                       elem_id="principle-delete")
        with gr.Column(scale=3):
            with gr.Row():
                key_box = gr.Textbox(label="Key (stable id)", interactive=False, scale=1,
                                     elem_id="principle-key")
                title_box = gr.Textbox(label="Title", scale=3, elem_id="principle-title")
                enabled_box = gr.Checkbox(label="Enabled", elem_id="principle-enabled")
            tags_box = gr.Textbox(label="Tags (comma-separated)", elem_id="principle-tags")
            critique_box = gr.Textbox(label="Critique request", lines=3,
                                      elem_id="principle-critique")
            revision_box = gr.Textbox(label="Revision request", lines=3,
                                      elem_id="principle-revision")
            choice_box = gr.Textbox(label="Choice instruction (A/B preference)", lines=3,
                                    elem_id="principle-choice")

    with gr.Row():
        message_box = gr.Textbox(label="Save message", placeholder="What did you change, and why?",
                                 scale=4, elem_id="save-message")
        save_btn = gr.Button("Save new version", variant="primary", scale=1, elem_id="save-btn")
        preview_btn = gr.Button("Preview changes", scale=1, elem_id="preview-btn")
        discard_btn = gr.Button("Discard draft", scale=1, elem_id="discard-btn")
    result = gr.Markdown(elem_id="save-result")
    # what "Preview changes" would save, right under its button
    preview_view = gr.Markdown(elem_id="preview-view")
    editor: list[Any] = [key_box, title_box, enabled_box, tags_box, critique_box, revision_box,
                         choice_box]
    _golden_cases(services, draft, editor)

    with gr.Accordion("History and diff", open=True):
        history = gr.Dataframe(headers=HISTORY_HEADERS, datatype="str", interactive=False,
                               elem_id="history-table", wrap=True)
        with gr.Row():
            newer_btn = gr.Button("← Newer", size="sm", elem_id="history-newer")
            page_label = gr.Markdown("Page 1")
            older_btn = gr.Button("Older →", size="sm", elem_id="history-older")
        with gr.Row():
            diff_old = gr.Dropdown(label="From version", choices=[], elem_id="diff-old")
            diff_new = gr.Dropdown(label="To version", choices=[], elem_id="diff-new")
            diff_btn = gr.Button("Show diff", elem_id="diff-btn")
            revert_btn = gr.Button("Revert to 'From' version", elem_id="revert-btn")
        revert_result = gr.Markdown(elem_id="revert-result")
        diff_view = gr.Markdown(elem_id="diff-view")

    with gr.Accordion("Import, export, copy", open=False):
        with gr.Row():
            upload = gr.File(label="Constitution file (.yaml/.json) or the paper's JSON files",
                             file_count="multiple", file_types=[".yaml", ".yml", ".json"],
                             type="filepath", elem_id="import-files")
            with gr.Column():
                import_name = gr.Textbox(label="Name for the imported constitution (optional)",
                                         elem_id="import-name")
                import_btn = gr.Button("Import", elem_id="import-btn")
                gr.Markdown("Paper files: the critique/revision requests and the labelling "
                            "instructions are separate lists in the paper; the import pairs "
                            "them by position (critique *i* with instruction *i*).",
                            elem_id="import-paper-note")
                import_result = gr.Markdown(elem_id="import-result")
        with gr.Row():
            export_fmt = gr.Radio(["yaml", "json", "paper"], value="yaml",
                                  label="Export format (paper = zip of the paper's files)",
                                  elem_id="export-format")
            export_btn = gr.Button("Export the loaded version", elem_id="export-btn")
            export_file = gr.File(label="Download", interactive=False, elem_id="export-file")
        with gr.Row():
            copy_name = gr.Textbox(label="New constitution name", elem_id="copy-name")
            copy_btn = gr.Button("Save draft as a new constitution", elem_id="copy-btn")
        copy_result = gr.Markdown(elem_id="copy-result")

    view = [draft, principle_list, *editor, header, status, history, page_label, page,
            diff_old, diff_new]
    full = [picker, *view]
    restructure = [draft, principle_list, *editor, status]

    # Handlers that write the draft run one at a time, in the order they were sent, so a slow
    # one can never put back a draft older than a save. The per-keystroke `edit` only refreshes
    # the status line and the list labels; it never writes the draft (the handlers below fold
    # the editor's values in themselves).
    serial: dict[str, Any] = {"concurrency_id": "constitution-draft", "concurrency_limit": 1}
    # Every event has an api_name: tests/security/test_roles_api.py calls each write endpoint
    # through the Gradio API with every role, and fails on an endpoint it does not know.
    demo.load(lambda: h.load(None), inputs=None, outputs=full, api_name="constitution_load",
              **serial)
    picker.input(h.open, inputs=[draft, picker, *editor],
                 outputs=[*full, preview_view, diff_view], api_name="constitution_open",
                 **serial)
    writers = [*editor[1:], save_btn, message_box, add_btn, delete_btn, up_btn, down_btn,
               revert_btn, import_btn, copy_btn]
    demo.load(h.permissions, inputs=None, outputs=[*writers, read_only],
              api_name="constitution_permissions", show_progress="hidden")
    for box in editor[1:]:
        triggers = [box.input, box.blur] if hasattr(box, "blur") else [box.input]
        for trigger in triggers:
            trigger(h.edit, inputs=[draft, *editor], outputs=[principle_list, status],
                    trigger_mode="always_last", show_progress="hidden",
                    api_name="draft_edit")
    principle_list.input(h.pick, inputs=[draft, principle_list, *editor], outputs=restructure,
                         api_name="draft_pick", **serial)
    up_btn.click(h.up, inputs=[draft, *editor], outputs=restructure, api_name="draft_up",
                 **serial)
    down_btn.click(h.down, inputs=[draft, *editor], outputs=restructure, api_name="draft_down",
                   **serial)
    add_btn.click(h.add, inputs=[draft, *editor], outputs=restructure, api_name="draft_add",
                  **serial)
    delete_btn.click(h.delete, inputs=[draft, *editor], outputs=restructure,
                     api_name="draft_delete", **serial)
    discard_btn.click(h.discard, inputs=draft, outputs=full, api_name="draft_discard", **serial)
    save_btn.click(h.save, inputs=[draft, message_box, *editor],
                   outputs=[result, message_box, *view], api_name="constitution_save", **serial)
    preview_btn.click(h.preview, inputs=[draft, *editor], outputs=preview_view,
                      api_name="draft_preview_changes")
    diff_btn.click(h.diff, inputs=[diff_old, diff_new], outputs=diff_view,
                   api_name="constitution_diff")
    revert_btn.click(h.revert, inputs=[draft, diff_old], outputs=[revert_result, *view],
                     api_name="constitution_revert", **serial)
    newer_btn.click(lambda d, p: h.page(d, p, -1), inputs=[draft, page],
                    outputs=[history, page_label, page], api_name="history_newer")
    older_btn.click(lambda d, p: h.page(d, p, 1), inputs=[draft, page],
                    outputs=[history, page_label, page], api_name="history_older")
    cleared = {"fn": lambda: ("", ""), "inputs": None, "outputs": [preview_view, diff_view],
               "show_progress": "hidden"}
    import_btn.click(h.import_files, inputs=[upload, import_name],
                     outputs=[import_result, *full], api_name="constitution_import",
                     **serial).success(api_name="constitution_imported", **cleared)
    export_btn.click(h.export, inputs=[draft, export_fmt], outputs=export_file,
                     api_name="constitution_export")
    copy_btn.click(h.copy_as_new, inputs=[draft, copy_name, *editor],
                   outputs=[copy_result, *full], api_name="constitution_copy",
                   **serial).success(api_name="constitution_copied", **cleared)
    build_aliases_section(services, on_open)


def _golden_cases(services: Services, draft: gr.State, editor: list[Any]) -> None:
    """Pairs pinned with the verdict they should get, and the impact preview of the draft."""
    g = GoldenHandlers(services)
    with gr.Accordion("Golden cases", open=False):
        prompt = gr.Textbox(label="Prompt", lines=2, elem_id="golden-prompt")
        with gr.Row():
            response_a = gr.Textbox(label="Response A", lines=3, elem_id="golden-a")
            response_b = gr.Textbox(label="Response B", lines=3, elem_id="golden-b")
        with gr.Row():
            expected = gr.Radio(["A", "B"], value="A", label="Expected verdict",
                                elem_id="golden-expected")
            note = gr.Textbox(label="Note (why)", scale=3, elem_id="golden-note")
            pin_btn = gr.Button("Pin case", elem_id="golden-pin")
        golden_result = gr.Markdown(elem_id="golden-result")
        table = gr.Dataframe(headers=CASE_HEADERS, datatype="str", interactive=False,
                             elem_id="golden-table", wrap=True)
        with gr.Row():
            delete_id = gr.Number(label="Case id to delete", precision=0,
                                  elem_id="golden-delete-id")
            delete_btn = gr.Button("Delete case", variant="stop", elem_id="golden-delete")
        impact_btn = gr.Button("Impact preview (re-judge golden cases with the draft)",
                               variant="primary", elem_id="golden-impact")
        impact_view = gr.Markdown(elem_id="golden-impact-view")

    draft.change(g.rows, inputs=draft, outputs=table, show_progress="hidden",
                 api_name="golden_list")
    pin_btn.click(g.pin, inputs=[draft, prompt, response_a, response_b, expected, note],
                  outputs=[golden_result, table, prompt, response_a, response_b, note],
                  api_name="golden_pin")
    delete_btn.click(g.delete, inputs=[draft, delete_id], outputs=[golden_result, table],
                     api_name="golden_delete")
    impact_btn.click(g.preview, inputs=[draft, *editor], outputs=impact_view,
                     api_name="golden_impact")
