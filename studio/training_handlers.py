"""Event handlers of the Training tab. They call services only; jobs run in a worker, so every
handler returns at once."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import gradio as gr

from backend.errors import StudioError, ValidationError
from backend.services.container import Services
from backend.services.jobs import JobInfo
from studio import training_charts as charts
from studio.render import error_cause, escape_md, fenced, problems_md
from studio.session import principal

if TYPE_CHECKING:
    from backend.services.engines import JobModelDefaults
    from backend.training.stage_fields import FieldSpec, StageInfo

PAGE = 10
QUEUE_HEADERS = ["id", "name", "stage", "status", "attempt", "step", "created (UTC)", "by"]
STATUS_FILTERS = [("all", ""), ("queued", "queued"), ("running", "running"),
                  ("succeeded", "succeeded"), ("failed", "failed"), ("cancelled", "cancelled"),
                  ("interrupted", "interrupted")]
NONE_CHOICE = ("none", "")
HEAD_CHOICE = ("newest version of the first constitution", "")
DEFAULT_PROMPTS = ("built-in prompt set (red-team and helpful, tagged)", "default")
TINY_CHOICE = ("tiny (demo model, random weights)", "tiny")
SMOLLM2_CHOICE = ("smollm2 (SmolLM2-135M-Instruct, real, offline)", "smollm2")
BUNDLED_MODELS = [TINY_CHOICE, SMOLLM2_CHOICE]  # the models every model field offers


def form_value(spec: FieldSpec, value: Any) -> tuple[bool, Any]:
    """(include, value) for one form field: empty numbers, datasets and choices are left out
    so the stage's default applies."""
    if isinstance(value, str) and spec.type in ("int", "float", "dataset", "job", "choice"):
        value = value.strip()
    if value is None or (value == "" and
                         spec.type in ("int", "float", "dataset", "job", "choice")):
        return False, None
    if spec.type == "int" and isinstance(value, float) and value.is_integer():
        return True, int(value)
    if spec.type == "float" and isinstance(value, float) and math.isnan(value):
        return False, None
    return True, value


def config_from_form(info: StageInfo, values: dict[str, Any]) -> dict[str, object]:
    config: dict[str, object] = {}
    for spec in info.fields:
        include, value = form_value(spec, values.get(spec.name))
        if include:
            config[spec.name] = value
    return config


def choice_options(spec: FieldSpec) -> list[tuple[str, Any]]:
    return [NONE_CHOICE if c is None else (str(c), c) for c in spec.choices]


def tracking_line(config: dict[str, object], artifact_dir: str) -> str:
    """Where the job's experiment-tracking logs are, and the command that opens them."""
    tracker = config.get("report_to")
    if tracker not in ("tensorboard", "trackio") or not artifact_dir:
        return ""
    folder = f"{artifact_dir}/{tracker}"
    command = (f"tensorboard --logdir {folder}" if tracker == "tensorboard"
               else f"TRACKIO_DIR={folder} trackio show")
    return (f"\n\nTracking ({tracker}): logs in {escape_md(folder)}; open them with\n\n"
            + fenced(command, "sh"))


def _ago(when: datetime | None) -> str:
    if when is None:
        return "never"
    moment = when if when.tzinfo else when.replace(tzinfo=UTC)
    seconds = (datetime.now(UTC) - moment).total_seconds()
    return f"{seconds:.0f} s ago" if seconds < 120 else f"{seconds / 60:.0f} min ago"


@dataclass(frozen=True)
class InputSlot:
    """A form component whose choices come from earlier runs: (stage, field spec)."""

    kind: str
    spec: FieldSpec


def _with_default(spec: FieldSpec, update: Any, defaults: JobModelDefaults) -> Any:
    """One slot's update with the studio's model defaults filled in where nothing upstream
    picked a value."""
    if isinstance(update, dict) and "value" in update:
        return update  # an upstream job (or dataset) is the pick
    if spec.name == "model":
        choices = list(update.get("choices", [])) if isinstance(update, dict) else []
        if defaults.model not in {value for _, value in choices}:
            choices.append((f"{defaults.model} (the studio's model)", defaults.model))
        return gr.update(choices=choices, value=defaults.model)
    if spec.name == "engine" and defaults.engine in spec.choices:
        return gr.update(value=defaults.engine)
    if spec.name == "base_url" and defaults.base_url:
        return gr.update(value=defaults.base_url)
    return update


def total_steps(config: dict[str, object]) -> int | None:
    """The steps a job will take, from its config (training steps, or prompts for data)."""
    for key in ("max_steps", "max_prompts"):
        value = config.get(key)
        if isinstance(value, int) and value > 0:
            return value
    return None


def _step_cell(step: int | None, job: JobInfo) -> str:
    """The queue's step column: '40 / 100' (of the total the config sets), or the step."""
    if step is None:
        return ""
    total = total_steps(job.config)
    return f"{step} / {total}" if total else str(step)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 5400:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


class TrainingHandlers:
    def __init__(self, services: Services) -> None:
        self.s = services

    # --- chaining inputs -----------------------------------------------------------------------

    def _model_jobs(self) -> list[JobInfo]:
        return self.s.jobs.finished_of_kinds(self.s.jobs.model_kinds())

    def slot_update(self, slot: InputSlot) -> Any:
        """Choices (and a sensible pick) for one chained input."""
        spec = slot.spec
        if spec.name == "constitution_version_id":
            versions: list[tuple[str, Any]] = [HEAD_CHOICE]
            for c in self.s.constitutions.list_all():
                versions += [(f"{c.name} v{v.number} ({v.content_hash[:8]})", v.id)
                             for v in self.s.constitutions.history(c.id, limit=20)]
            return gr.update(choices=versions)
        if spec.name == "prompt_set":
            return gr.update(choices=self.prompt_set_choices())
        if spec.type == "model":
            jobs = self._model_jobs()
            choices = BUNDLED_MODELS + [
                (f"job:{j.id} · {j.kind} · {j.name}", f"job:{j.id}") for j in jobs]
            start_from = self.s.jobs.upstream_of(slot.kind)  # the chain of the paper
            upstream = [j for j in jobs if start_from is not None and j.kind == start_from]
            if spec.name == "model" and upstream:
                return gr.update(choices=choices, value=f"job:{upstream[0].id}")
            return gr.update(choices=choices)
        if spec.type == "dataset":
            datasets: list[tuple[str, Any]] = [NONE_CHOICE]
            if spec.dataset_kind == "pair":
                datasets += [(f"#{d.id} {d.name} ({d.item_count} pairs)", d.id)
                                           for d in self.s.datasets.list_all()]
            else:
                datasets += [
                    (f"#{d.id} {d.name}" + (f" (job {d.job_id})" if d.job_id and
                                            f"(job {d.job_id})" not in d.name else ""), d.id)
                    for d in self.s.jobs.stage_datasets(spec.dataset_kind or "")]
            value = datasets[1][1] if len(datasets) > 1 and spec.required else None
            return gr.update(choices=datasets, value=value)
        if spec.type == "reward_models":
            rms = [j for j in self._model_jobs() if j.kind == "reward"]
            info = ("Succeeded reward models: " + ", ".join(f"job:{j.id}" for j in rms[:8])
                    if rms else "No reward model has been trained yet.")
            return gr.update(value=f"job:{rms[0].id}=1.0" if rms else "", info=info)
        return gr.skip()

    def refresh_inputs(self, slots: list[InputSlot]) -> list[Any]:
        return [self.slot_update(slot) for slot in slots]

    def initial_inputs(self, slots: list[InputSlot]) -> list[Any]:
        """The chained inputs when the page opens: as refresh_inputs, and a model field with
        no upstream job to start from (and SL-CAI data's engine and server) starts at the
        studio's own model instead of the stage's static default, the demo model. Only here,
        not on each refresh, so a model the user picked is not put back."""
        defaults = self.s.engines.job_defaults()
        out = []
        for slot, update in zip(slots, self.refresh_inputs(slots), strict=True):
            if defaults is not None and defaults.model != "tiny":
                update = _with_default(slot.spec, update, defaults)
            out.append(update)
        return out

    def relist_inputs(self, slots: list[InputSlot]) -> list[Any]:
        """New choices for the chained inputs, leaving what the user picked as it is."""
        out = []
        for update in self.refresh_inputs(slots):
            if isinstance(update, dict):
                update = {k: v for k, v in update.items() if k != "value"}
            out.append(update)
        return out

    def succeeded_count(self) -> int:
        return self.s.jobs.list_jobs(limit=1, statuses=["succeeded"])[1]

    def refresh_if_new(self, slots: list[InputSlot], seen: int | None
                       ) -> tuple[list[Any], int]:
        """On each poll: refresh the chained inputs when a job succeeded since the last look
        (any job, not only the one being followed), else leave them alone."""
        now = self.succeeded_count()
        if seen is None or now == seen:
            return [gr.skip()] * len(slots), now
        return self.refresh_inputs(slots), now

    def prompt_set_choices(self) -> list[tuple[str, str]]:
        return [DEFAULT_PROMPTS] + [(p.label, str(p.id)) for p in self.s.prompt_sets.list_all()
                                    if not p.builtin]

    def import_prompt_set(self, path: str | None, name: str | None,
                          request: gr.Request) -> str:
        """Import an uploaded prompt-set file (checked and stored; jobs refer to it by id)."""
        if not path:
            return "**Choose a file first.**"
        try:
            actor = principal(self.s, request)
            limit = self.s.settings.max_dataset_bytes
            with open(path, "rb") as fh:
                raw = fh.read(limit + 1)
            info = self.s.prompt_sets.import_bytes(os.path.basename(path), raw, actor=actor,
                                                   name=(name or "").strip() or None)
        except StudioError as exc:
            return f"**Not imported.** {escape_md(exc.message)}"
        return (f"Imported prompt set **#{info.id} {escape_md(info.name)}**: "
                f"{info.prompt_count} prompts ({info.source_format}). Pick it as prompt set.")

    # --- launching -----------------------------------------------------------------------------

    def launch(self, request: gr.Request | None, kind: str, name: str,
               values: dict[str, Any]) -> tuple[Any, ...]:
        """Queue a job of ``kind`` from the form values; (message, table, page info, job)."""
        info = next(s for s in self.s.jobs.stages() if s.kind == kind)
        config = config_from_form(info, values)
        try:
            job = self.s.jobs.create(kind, config, actor=principal(self.s, request),
                                     name=name or "")
        except ValidationError as exc:
            title = exc.message.split("\n", 1)[0]
            body = problems_md(f"Not queued. {title}", exc.problems) if exc.problems \
                else f"**Not queued.** {escape_md(exc.message)}"
            return body, gr.skip(), gr.skip(), gr.skip()
        except StudioError as exc:
            return f"**Not queued.** {escape_md(exc.message)}", gr.skip(), gr.skip(), gr.skip()
        rows, page_info = self.queue(1, "")
        return (f"Queued job **#{job.id}** ({escape_md(info.title)}). It runs in the "
                "background; you can leave this page and come back.", rows, page_info,
                gr.update(choices=self.job_choices(), value=job.id))

    # --- queue ---------------------------------------------------------------------------------

    def job_choices(self) -> list[tuple[str, int]]:
        jobs, _ = self.s.jobs.list_jobs(limit=200)
        # no status in the label: a picked label is not refreshed while the job runs, so a
        # status there went stale ("(queued)" on a finished job); the status line shows it
        return [(f"#{j.id} {j.name} · {j.kind}", j.id) for j in jobs]

    @staticmethod
    def linked_job(request: gr.Request | None, choices: list[tuple[str, int]]) -> int | None:
        """The job a link (``?job=ID``) named when it exists, else the newest job."""
        params = getattr(request, "query_params", None) if request is not None else None
        wanted = params.get("job") if params is not None else None
        ids = [c[1] for c in choices]
        if wanted is not None and str(wanted).isdigit() and int(wanted) in ids:
            return int(wanted)
        return ids[0] if ids else None

    def _page(self, page: float | None, statuses: list[str] | None) -> tuple[int, int]:
        """(page clamped to the pages there are, how many pages)."""
        _, total = self.s.jobs.list_jobs(limit=1, statuses=statuses)
        pages = max(1, -(-total // PAGE))
        return min(max(1, int(page or 1)), pages), pages

    def queue(self, page: float | None, status: str | None) -> tuple[list[list[Any]], str]:
        """One page of the queue (newest first) and a 'page X of Y' line."""
        statuses = [status] if status else None
        index, pages = self._page(page, statuses)
        jobs, total = self.s.jobs.list_jobs(offset=(index - 1) * PAGE, limit=PAGE,
                                            statuses=statuses)
        rows = [[j.id, j.name, j.kind, j.status, j.attempt,
                 _step_cell(self.s.jobs.last_step(j.id), j) if j.status != "queued" else "",
                 j.created_at.strftime("%Y-%m-%d %H:%M:%S"), j.created_by] for j in jobs]
        return rows, f"Page {index} of {pages} · {total} jobs"

    def page_moved(self, page: float | None, delta: int, status: str | None
                   ) -> tuple[Any, ...]:
        index, _ = self._page(int(page or 1) + delta, [status] if status else None)
        rows, info = self.queue(index, status)
        return index, rows, info

    def select_row(self, evt: gr.SelectData) -> Any:
        row = evt.row_value if isinstance(evt.row_value, list) else None
        if not row:
            return gr.skip()
        try:
            return int(row[0])
        except (TypeError, ValueError):
            return gr.skip()

    # --- one job -------------------------------------------------------------------------------

    def status(self, job_id: int | None) -> str:
        if job_id is None:
            return "Pick a job to follow its log and curves."
        try:
            j = self.s.jobs.get(int(job_id))
        except StudioError as exc:
            return escape_md(exc.message)
        step = self.s.jobs.last_step(j.id)
        parts = [f"Job **#{j.id}** {escape_md(j.name)} · {escape_md(j.kind)} · "
                 f"**{j.status}** · attempt {j.attempt}", self._progress(j, step)]
        if j.status == "running":
            parts.append(f"worker {escape_md(j.worker)} · heartbeat {_ago(j.heartbeat_at)}")
            if j.cancel_requested:
                parts.append("cancel requested")
        if j.exit_code is not None:
            parts.append(f"exit code {j.exit_code}")
        text = " · ".join(parts)
        if j.error:
            why = "Why it failed" if j.status == "failed" else "Note"
            text = (f"**{why}:** {escape_md(error_cause(j.error))}\n\n{text}\n\n"
                    "The full message is under *Error details* below.")
        if j.result and j.status == "succeeded":
            outputs = j.result.get("outputs")
            if isinstance(outputs, dict) and outputs:
                text += "\n\nOutputs: " + ", ".join(
                    f"{escape_md(str(k))} = {escape_md(str(v))}" for k, v in outputs.items())
        return text + tracking_line(j.config, j.artifact_dir)

    def _progress(self, j: JobInfo, step: int | None) -> str:
        """'step 40 of 100 · about 2 min left' (the ETA from this attempt's pace)."""
        if step is None:
            return "no step logged yet"
        total = total_steps(j.config)
        if total is None:
            return f"step {step}"
        text = f"step {step} of {total}"
        if j.status == "running" and j.started_at is not None and step < total:
            first = self.s.jobs.metrics(j.id).attempt_starts.get(j.attempt, 0)
            started = j.started_at if j.started_at.tzinfo else j.started_at.replace(tzinfo=UTC)
            elapsed = (datetime.now(UTC) - started).total_seconds()
            done = step - first + 1
            if done > 0 and elapsed > 0:
                text += f" · about {_duration(elapsed / done * (total - step))} left"
        return text

    def controls(self, job_id: int | None) -> tuple[Any, Any, str]:
        """(cancel button, resume button, error details) for the picked job: cancel only while
        it is queued or running, resume only when it can be resumed."""
        try:
            j = self.s.jobs.get(int(job_id)) if job_id is not None else None
        except StudioError:
            j = None
        if j is None:
            return gr.update(interactive=False), gr.update(interactive=False), ""
        return (gr.update(interactive=not j.finished),
                gr.update(interactive=j.status in ("interrupted", "failed", "cancelled")),
                j.error)

    def log(self, job_id: int | None) -> str:
        if job_id is None:
            return ""
        try:
            return self.s.jobs.log_tail(int(job_id), max_bytes=60_000)
        except StudioError as exc:
            return exc.message

    def curves(self, job_id: int | None) -> Any:
        if job_id is None:
            return None
        try:
            info = self.s.jobs.get(int(job_id))
        except StudioError:
            return None
        return charts.curves_figure({f"#{info.id} {info.name}": self.s.jobs.metrics(info.id)},
                                    title=f"Job #{info.id}")

    def view(self, job_id: int | None) -> tuple[Any, ...]:
        """Status, log, curves and file list of the picked job; and what the view showed."""
        return (self.status(job_id), self.log(job_id), self.curves(job_id),
                self.files(job_id), self._signature(job_id))

    def _signature(self, job_id: int | None) -> list[Any]:
        if job_id is None:
            return []
        try:
            j = self.s.jobs.get(int(job_id))
        except StudioError:
            return []
        return [j.id, j.status, j.attempt, self.s.jobs.last_step(j.id)]

    def tick(self, job_id: int | None, page: float | None, status_filter: str | None,
             shown: list[Any] | None) -> tuple[Any, ...]:
        """The 2-second poll: the queue page always; the job's curves and files only when its
        step or status moved (so a finished job's plot is not redrawn every tick)."""
        rows, page_info = self.queue(page, status_filter)
        signature = self._signature(job_id)
        if job_id is None:
            return rows, page_info, gr.skip(), gr.skip(), gr.skip(), gr.skip(), signature
        changed = signature != (shown or [])
        return (rows, page_info, self.status(job_id), self.log(job_id),
                self.curves(job_id) if changed else gr.skip(),
                self.files(job_id) if changed else gr.skip(), signature)

    def cancel(self, request: gr.Request | None, job_id: int | None) -> str:
        if job_id is None:
            return "**Pick a job first.**"
        try:
            j = self.s.jobs.cancel(int(job_id), actor=principal(self.s, request))
        except StudioError as exc:
            return f"**Not cancelled.** {escape_md(exc.message)}"
        if j.status == "cancelled":
            return f"Job #{j.id} cancelled."
        return (f"Cancelling job #{j.id}: its worker stops the whole process group within a few "
                "seconds.")

    def resume(self, request: gr.Request | None, job_id: int | None) -> str:
        if job_id is None:
            return "**Pick a job first.**"
        try:
            j = self.s.jobs.resume(int(job_id), actor=principal(self.s, request))
        except ValidationError as exc:
            return (problems_md("Not resumed.", exc.problems) if exc.problems
                    else f"**Not resumed.** {escape_md(exc.message)}")
        except StudioError as exc:
            return f"**Not resumed.** {escape_md(exc.message)}"
        return (f"Job #{j.id} queued again as attempt {j.attempt}; it continues from its last "
                "checkpoint.")

    # --- compare and artifacts -----------------------------------------------------------------

    def compare(self, job_ids: list[int] | None) -> tuple[Any, str]:
        ids = [int(i) for i in (job_ids or [])]
        if len(ids) < 2:
            return None, "Pick two or more jobs to compare."
        runs = {}
        for job_id in ids:
            try:
                info = self.s.jobs.get(job_id)
            except StudioError as exc:
                return None, escape_md(exc.message)
            runs[f"#{info.id} {info.name}"] = self.s.jobs.metrics(job_id)
        figure = charts.curves_figure(runs, title="Comparison")
        escaped = {escape_md(label): m for label, m in runs.items()}
        return figure, charts.summary_table(escaped)

    def files(self, job_id: int | None) -> Any:
        if job_id is None:
            return gr.update(choices=[], value=None)
        try:
            found = self.s.jobs.artifacts(int(job_id))
        except StudioError:
            return gr.update(choices=[], value=None)
        choices = [(f"{a.name} ({a.size:,} bytes)", a.name) for a in found]
        preferred = next((a.name for a in found if a.name == "manifest.json"),
                         found[0].name if found else None)
        return gr.update(choices=choices, value=preferred)

    def download_file(self, job_id: int | None, name: str | None) -> tuple[Any, str]:
        if job_id is None or not name:
            return None, "**Pick a job and a file.**"
        try:
            return str(self.s.jobs.export_artifact(int(job_id), name)), ""
        except StudioError as exc:
            return None, f"**No download.** {escape_md(exc.message)}"

    def download_model(self, job_id: int | None) -> tuple[Any, str]:
        if job_id is None:
            return None, "**Pick a job.**"
        try:
            return str(self.s.jobs.export_archive(int(job_id), "output")), ""
        except StudioError as exc:
            return None, f"**No download.** {escape_md(exc.message)}"

    def export_dataset(self, job_id: int | None, repo: str, request: gr.Request | None
                       ) -> tuple[Any, str]:
        """Export the dataset the picked job made as a Hugging Face ``datasets`` folder and
        Parquet file (a zip to download); with a repo id, also push it to the Hub."""
        if job_id is None:
            return None, "**Pick a job** (an SL-CAI data or preference data job)."
        exports = self.s.dataset_exports
        try:
            actor = principal(self.s, request)
            dataset_id = exports.job_dataset(int(job_id))
            done = exports.export(dataset_id, actor=actor)
            archive = exports.archive(done)
            message = (f"Exported {done.rows} rows of {done.kind} dataset {done.dataset_id} "
                       f"(load the unzipped `hf/` folder with `datasets.load_from_disk`; the "
                       f"Parquet file is beside it). On the server: "
                       f"{escape_md(str(done.folder))}.")
        except StudioError as exc:
            return None, f"**Not exported.** {escape_md(exc.message)}"
        if (repo or "").strip():
            try:
                url = exports.publish(done, repo, actor=actor)
                message += f" Pushed to {escape_md(url)}."
            except StudioError as exc:
                message += f"\n\n**Not pushed.** {escape_md(exc.message)}"
        return str(archive), message
