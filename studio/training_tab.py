"""Layout of the Training tab and its event wiring (handlers in training_handlers).

One form per stage, built from the stage registry's field specs (defaults, help, choices);
inputs that come from earlier runs (models, datasets, reward models) are dropdowns filled from
the jobs and datasets that exist, so the paper's chain SL-CAI data → SFT → preference data →
reward model → RL / DPO is a series of picks. The queue, log and curves refresh every two
seconds; nothing here waits for a job.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import gradio as gr

from backend.services.container import Services
from studio.page_load import PageLoad
from studio.training_handlers import (
    BUNDLED_MODELS,
    DEFAULT_PROMPTS,
    HEAD_CHOICE,
    NONE_CHOICE,
    QUEUE_HEADERS,
    STATUS_FILTERS,
    InputSlot,
    TrainingHandlers,
    choice_options,
)

if TYPE_CHECKING:
    from backend.training.stage_fields import FieldSpec, StageInfo

# fields whose value comes from earlier runs or from the studio's engine (InputSlot)
CHAINED = ("model", "dataset", "reward_models", "constitution_version_id", "prompt_set",
           "engine", "base_url")
GROUP_TITLES = {"training": "Training settings", "device": "Devices and distribution"}


def _label(spec: FieldSpec) -> str:
    return spec.name.replace("_", " ") + (" *" if spec.required else "")


def field_component(kind: str, spec: FieldSpec) -> Any:
    """The form component for one field (no client-side bounds: the server's validation
    names the field in its message)."""
    common: dict[str, Any] = {"label": _label(spec), "info": spec.help,
                              "elem_id": f"tr-{kind}-{spec.name}"}
    if spec.name == "constitution_version_id":
        return gr.Dropdown(choices=[HEAD_CHOICE], value="", **common)
    if spec.name == "prompt_set":  # stored prompt sets by id, never a path
        return gr.Dropdown(choices=[DEFAULT_PROMPTS], value="default", **common)
    if spec.type in ("int", "float") and spec.default is None:
        # gr.Number shows an empty value as 0; a text box keeps "empty = default" visible
        return gr.Textbox(value="", placeholder="empty: default", **common)
    if spec.type in ("int", "float"):
        number = spec.default if isinstance(spec.default, int | float) else None
        return gr.Number(value=number, precision=0 if spec.type == "int" else None, **common)
    if spec.type == "bool":
        return gr.Checkbox(value=bool(spec.default), **common)
    if spec.type == "choice":
        picked = spec.default if isinstance(spec.default, str | int | float) else ""
        return gr.Dropdown(choices=choice_options(spec), value=picked, **common)
    if spec.type == "model":
        default = str(spec.default or "")
        choices = list(BUNDLED_MODELS)
        if default and default not in dict(BUNDLED_MODELS).values():
            choices.append((default, default))
        return gr.Dropdown(choices=choices, value=default or None, allow_custom_value=True,
                           **common)
    if spec.type in ("dataset", "job"):
        return gr.Dropdown(choices=[NONE_CHOICE], value="", **common)
    return gr.Textbox(value="" if spec.default in (None, []) else str(spec.default), **common)


def _stage_form(h: TrainingHandlers, info: StageInfo, visible: bool,
                slots: list[tuple[InputSlot, Any]]) -> tuple[Any, Any, Any, dict[str, Any]]:
    """A stage's form; (group, name box, launch button, components by field name)."""
    components: dict[str, Any] = {}
    with gr.Group(visible=visible, elem_id=f"tr-form-{info.kind}") as group:
        gr.Markdown(f"**{info.title}** — {info.description}")
        name = gr.Textbox(label="Job name (optional)", elem_id=f"tr-{info.kind}-name")
        for group_name in ("stage", "training", "device"):
            specs = [f for f in info.fields if f.group == group_name]
            if not specs:
                continue
            holder = gr.Accordion(GROUP_TITLES[group_name], open=False) \
                if group_name in GROUP_TITLES else gr.Column()
            with holder:
                for start in range(0, len(specs), 3):
                    with gr.Row():
                        for spec in specs[start:start + 3]:
                            components[spec.name] = field_component(info.kind, spec)
                            if spec.type in CHAINED or spec.name in CHAINED:
                                slots.append((InputSlot(info.kind, spec),
                                              components[spec.name]))
        launch = gr.Button(f"Queue {info.title} job", variant="primary",
                           elem_id=f"tr-{info.kind}-launch")
    return group, name, launch, components


def build_training_tab(services: Services, on_open: PageLoad, tab: gr.Tab | None = None
                       ) -> None:
    h = TrainingHandlers(services)
    stages = services.jobs.stages()
    gr.Markdown("### Launch a job\nThe paper's pipeline, in order: SL-CAI data → SL-CAI SFT → "
                "AI preference data → reward model → RL or DPO. Inputs from earlier runs are "
                "offered in the dropdowns.")
    kind = gr.Radio([(s.title, s.kind) for s in stages], value=stages[0].kind, label="Stage",
                    elem_id="tr-kind")
    slots: list[tuple[InputSlot, Any]] = []
    groups = []
    launches = []
    for i, info in enumerate(stages):
        group, name, launch, components = _stage_form(h, info, i == 0, slots)
        groups.append(group)
        launches.append((info.kind, name, launch, components))
    with gr.Row():
        refresh_inputs = gr.Button("Refresh inputs from earlier runs", size="sm",
                                   elem_id="tr-refresh-inputs")
    launch_result = gr.Markdown(elem_id="tr-launch-result")
    with gr.Accordion("Import a prompt set", open=False):
        with gr.Row():
            prompt_file = gr.File(label="Prompts: JSON lines {\"prompt\", \"tags\"}, "
                                  "HH-RLHF dialogues or one per line (.gz too)",
                                  type="filepath", elem_id="tr-prompt-file", scale=3)
            prompt_name = gr.Textbox(label="Name (optional)", elem_id="tr-prompt-name",
                                     scale=2)
            prompt_import = gr.Button("Import prompt set", elem_id="tr-prompt-import",
                                      scale=1)
        prompt_result = gr.Markdown(elem_id="tr-prompt-result")

    gr.Markdown("### Queue")
    with gr.Row():
        status_filter = gr.Dropdown(STATUS_FILTERS, value="", label="Status",
                                    elem_id="tr-filter", scale=2)
        prev_btn = gr.Button("◀ Newer", size="sm", elem_id="tr-prev", scale=1)
        page = gr.Number(value=1, precision=0, label="Page", elem_id="tr-page", scale=1)
        next_btn = gr.Button("Older ▶", size="sm", elem_id="tr-next", scale=1)
        page_info = gr.Markdown(elem_id="tr-page-info")
    queue = gr.Dataframe(headers=QUEUE_HEADERS, datatype="str", interactive=False,
                         elem_id="tr-queue")
    with gr.Row():
        job = gr.Dropdown(label="Job", choices=[], elem_id="tr-job", scale=3)
        refresh_jobs = gr.Button("↻", size="sm", elem_id="tr-refresh-jobs", scale=0)
        cancel_btn = gr.Button("Cancel job", variant="stop", elem_id="tr-cancel", scale=1)
        resume_btn = gr.Button("Resume job", elem_id="tr-resume", scale=1)
    action_result = gr.Markdown(elem_id="tr-action-result")
    status_md = gr.Markdown(elem_id="tr-status")
    with gr.Accordion("Error details", open=False, elem_id="tr-error-details"):
        error_box = gr.Textbox(label="Full error (traceback, last lines of the log)", lines=12,
                               max_lines=30, interactive=False, elem_id="tr-error")
    curves = gr.Plot(label="Curves", elem_id="tr-curves")
    log = gr.Textbox(label="Log (last lines of log.txt)", lines=16, max_lines=16,
                     interactive=False, autoscroll=True, elem_id="tr-log")
    with gr.Accordion("Artifacts", open=False):
        with gr.Row():
            artifact = gr.Dropdown(label="File", choices=[], elem_id="tr-artifact", scale=3)
            download_file = gr.Button("Download file", elem_id="tr-download-file", scale=1)
            download_model = gr.Button("Download model (zip of output/)",
                                       elem_id="tr-download-model", scale=1)
        with gr.Row():
            hub_repo = gr.Textbox(label="Also push to the Hub as (owner/name, online only)",
                                  placeholder="leave empty to export only", max_length=200,
                                  elem_id="tr-hub-repo", scale=3)
            export_data = gr.Button("Export dataset (Hugging Face datasets + Parquet)",
                                    elem_id="tr-export-dataset", scale=1)
        download = gr.File(label="Download", interactive=False, elem_id="tr-download")
        download_msg = gr.Markdown(elem_id="tr-download-msg")
    with gr.Accordion("Compare runs", open=False):
        with gr.Row():
            compare_jobs = gr.Dropdown(label="Jobs", choices=[], multiselect=True,
                                       elem_id="tr-compare-jobs", scale=4)
            compare_btn = gr.Button("Compare", elem_id="tr-compare-btn", scale=1)
        compare_plot = gr.Plot(label="Overlaid curves", elem_id="tr-compare-plot")
        compare_summary = gr.Markdown(elem_id="tr-compare-summary")
    timer = gr.Timer(2.0)
    shown = gr.State([])
    succeeded_seen = gr.State(None)

    slot_specs = [slot for slot, _ in slots]
    slot_components = [component for _, component in slots]

    def load(request: gr.Request) -> list[Any]:
        rows, info = h.queue(1, "")
        choices = h.job_choices()
        picked = h.linked_job(request, choices)  # a link ?job=ID opens that job
        return [rows, info, gr.update(choices=choices, value=picked),
                gr.update(choices=choices), *h.initial_inputs(slot_specs)]

    # api_names: tests/security/test_roles_api.py calls every write endpoint with each role
    on_open.add("jobs_load", load, [queue, page_info, job, compare_jobs, *slot_components],
                where="the Training tab")
    kind.change(lambda k: [gr.update(visible=info.kind == k) for info in stages],
                inputs=kind, outputs=groups, api_name="job_stage_form")
    refresh_inputs.click(lambda: h.refresh_inputs(slot_specs), inputs=None,
                         outputs=slot_components, api_name="job_refresh_inputs")
    prompt_import.click(h.import_prompt_set, inputs=[prompt_file, prompt_name],
                        outputs=prompt_result, api_name="prompt_set_import"
                        ).then(lambda: h.refresh_inputs(slot_specs), inputs=None,
                               outputs=slot_components, api_name="prompt_set_imported")

    def refresh_job_lists(current: int | None) -> tuple[Any, Any]:
        choices = h.job_choices()
        return gr.update(choices=choices, value=current), gr.update(choices=choices)

    refresh_jobs.click(refresh_job_lists, inputs=job, outputs=[job, compare_jobs],
                       api_name="jobs_refresh_lists")
    for stage_kind, name, launch, components in launches:
        launch.click(_launcher(h, stage_kind, name, components),
                     inputs={name, *components.values()},
                     outputs=[launch_result, queue, page_info, job],
                     api_name=f"job_launch_{stage_kind}"
                     ).then(lambda: gr.update(choices=h.job_choices()), inputs=None,
                            outputs=compare_jobs, api_name=f"job_launched_{stage_kind}")

    job.change(h.view, inputs=job, outputs=[status_md, log, curves, artifact, shown],
               api_name="job_view")
    queue.select(h.select_row, inputs=None, outputs=job, api_name="job_pick")
    status_filter.change(lambda f: (1, *h.queue(1, f)), inputs=status_filter,
                         outputs=[page, queue, page_info], api_name="jobs_filter")
    prev_btn.click(lambda p, f: h.page_moved(p, -1, f), inputs=[page, status_filter],
                   outputs=[page, queue, page_info], api_name="jobs_prev_page")
    next_btn.click(lambda p, f: h.page_moved(p, 1, f), inputs=[page, status_filter],
                   outputs=[page, queue, page_info], api_name="jobs_next_page")
    page.submit(lambda p, f: h.page_moved(p, 0, f), inputs=[page, status_filter],
                outputs=[page, queue, page_info], api_name="jobs_page")

    def tick(job_id: int | None, page_no: float | None, status: str | None,
             before: list[Any] | None, seen: int | None) -> list[Any]:
        out = list(h.tick(job_id, page_no, status, before))
        # any job that succeeded (not only the one followed) brings its outputs to the forms
        inputs, now = h.refresh_if_new(slot_specs, seen)
        picker = gr.update(choices=h.job_choices()) if now != seen else gr.skip()
        return [*out, *inputs, picker, now]

    timer.tick(tick, inputs=[job, page, status_filter, shown, succeeded_seen],
               outputs=[queue, page_info, status_md, log, curves, artifact, shown,
                        *slot_components, job, succeeded_seen], show_progress="hidden",
               api_name="jobs_tick")
    if tab is not None:  # opening the tab relists what other tabs and jobs changed
        # the picked job is left as it is: a value sent back here was read when the tab was
        # selected, and a job link selects the tab while the page's load is still picking the
        # linked job, so sending it back put the picker back to none (a flaky browser test)
        def tab_opened() -> list[Any]:
            choices = h.job_choices()
            return [*h.relist_inputs(slot_specs), gr.update(choices=choices),
                    gr.update(choices=choices)]

        tab.select(tab_opened, inputs=None, outputs=[*slot_components, job, compare_jobs],
                   show_progress="hidden", api_name="jobs_tab_opened")
    # the buttons follow the picked job's status (no cancelling a finished job)
    status_md.change(h.controls, inputs=job, outputs=[cancel_btn, resume_btn, error_box],
                     show_progress="hidden", api_name="job_controls")
    cancel_btn.click(h.cancel, inputs=job, outputs=action_result, api_name="job_cancel").then(
        h.view, inputs=job, outputs=[status_md, log, curves, artifact, shown],
        api_name="job_cancel_view")
    resume_btn.click(h.resume, inputs=job, outputs=action_result, api_name="job_resume").then(
        h.view, inputs=job, outputs=[status_md, log, curves, artifact, shown],
        api_name="job_resume_view")
    compare_btn.click(h.compare, inputs=compare_jobs, outputs=[compare_plot, compare_summary],
                      api_name="jobs_compare")
    download_file.click(h.download_file, inputs=[job, artifact],
                        outputs=[download, download_msg], api_name="job_download_file")
    download_model.click(h.download_model, inputs=job, outputs=[download, download_msg],
                         api_name="job_download_model")
    export_data.click(h.export_dataset, inputs=[job, hub_repo], outputs=[download, download_msg],
                      api_name="job_export_dataset")


def _launcher(h: TrainingHandlers, kind: str, name: Any, components: dict[str, Any]) -> Any:
    """The click handler of one stage's launch button (inputs arrive as a dict by component)."""

    def launch(data: dict[Any, Any], request: gr.Request) -> tuple[Any, ...]:
        values = {field: data[component] for field, component in components.items()}
        return h.launch(request, kind, str(data[name] or ""), values)

    return launch
