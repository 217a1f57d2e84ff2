"""Handlers of the Pipelines tab (issue 17): launch the paper's recipe as chained jobs, watch
its stages, their curves and the final comparison (services only; untrusted text escaped)."""

from __future__ import annotations

import json
from typing import Any

import gradio as gr

from backend.errors import StudioError
from backend.services.container import Services
from backend.services.pipelines import STAGES, PipelineInfo, PipelineSpec, StageView
from studio import compare_charts
from studio.render import escape_md, job_link
from studio.session import principal
from studio.training_charts import curves_figure

STAGE_HEADERS = ["Stage", "Job", "Status", "Attempt", "Needs", "Message"]
STAGE_TITLES = {"sl_cai_data": "SL-CAI data", "sft": "SFT", "preference_data":
                "AI preference labels", "reward": "Reward model", "rl": "RL (KL to SFT)"}


def stage_title(stage: StageView) -> str:
    """The stage's name in the tab; preference pairs say where they come from."""
    if stage.stage == "preference_data" and stage.job.config.get("source") == "revisions":
        return "Preference pairs (SL-CAI revisions)"
    return STAGE_TITLES.get(stage.stage, stage.stage)


class PipelineHandlers:
    def __init__(self, services: Services) -> None:
        self.s = services

    def choices(self) -> list[tuple[str, int]]:
        return [(f"#{p.id} {p.name} · {p.status}", p.id) for p in self.s.pipelines.list_all()]

    def version_choices(self) -> list[tuple[str, int]]:
        out: list[tuple[str, int]] = []
        for c in self.s.constitutions.list_all():
            for v in self.s.constitutions.history(c.id, limit=20):
                out.append((f"{c.name} v{v.number}", v.id))
        return out

    def load(self) -> tuple[Any, ...]:
        versions = self.version_choices()
        pipelines = self.choices()
        defaults = self.s.engines.job_defaults()  # the studio's model, not the demo model
        base = gr.update(value=defaults.model) if defaults is not None else gr.skip()
        return (gr.update(choices=versions, value=versions[0][1] if versions else None),
                gr.update(choices=pipelines, value=pipelines[0][1] if pipelines else None),
                base)

    def launch(self, request: gr.Request, name: str, version_id: int | None, base_model: str,
               prompt_set: str, prompts: float | None, steps: float | None,
               compare_prompts: float | None, algorithm: str, device: str,
               overrides: str, preference_source: str = "labeller") -> tuple[Any, ...]:
        try:
            extra = json.loads(overrides) if (overrides or "").strip() else {}
            if not isinstance(extra, dict):
                raise ValueError("give an object such as {\"sft\": {\"lora\": true}}")
        except ValueError as exc:
            return f"**Not queued.** Stage settings are not valid JSON: {escape_md(str(exc))}", \
                gr.skip()
        n, k = int(prompts or 16), int(steps or 20)
        stages: dict[str, dict[str, Any]] = {
            "sl_cai_data": {"max_prompts": n}, "sft": {"max_steps": k},
            "preference_data": {"max_prompts": n,
                                "source": preference_source or "labeller"},
            "reward": {"max_steps": k},
            "rl": {"max_steps": k, "max_prompts": n, "algorithm": algorithm or "grpo"}}
        comparison: dict[str, Any] = {"max_prompts": int(compare_prompts or 8)}
        more = extra.pop("comparison", None)
        if isinstance(more, dict):
            comparison.update(more)
        for stage, values in extra.items():
            if isinstance(values, dict):
                stages.setdefault(str(stage), {}).update(values)
            else:
                stages[str(stage)] = values
        spec = PipelineSpec(base_model=(base_model or "tiny").strip(),
                            constitution_version_id=int(version_id) if version_id else None,
                            prompt_set=(prompt_set or "default").strip(),
                            device=(device or "auto").strip(), name=name or "",
                            stages=stages,
                            comparison=comparison)
        try:
            info = self.s.pipelines.launch(spec, actor=principal(self.s, request))
        except StudioError as exc:
            problems = getattr(exc, "problems", None) or []
            listed = "".join(f"\n- {escape_md(p)}" for p in problems)
            return f"**Not queued.** {escape_md(exc.message)}{listed}", gr.skip()
        ids = [s.job.id for s in info.stages]
        choices = self.choices()
        return (f"Queued pipeline #{info.id}: jobs #{ids[0]}–#{ids[-1]}, each starting when the "
                "jobs it needs have succeeded; the comparison follows the last one.",
                gr.update(choices=choices, value=info.id))

    def view(self, pipeline_id: int | None) -> tuple[Any, ...]:
        if pipeline_id is None:
            return "**No pipeline yet.** Launch one above.", [], None, ""
        try:
            info = self.s.pipelines.advance(int(pipeline_id))
        except StudioError as exc:
            return f"**Cannot show it.** {escape_md(exc.message)}", [], None, ""
        return self._summary(info), self._rows(info), self._curves(info), self._result(info)

    def _summary(self, info: PipelineInfo) -> str:
        version = self.s.constitutions.version(info.constitution_version_id)
        line = (f"**Pipeline #{info.id}** {escape_md(info.name)}: **{info.status}** · "
                f"constitution {escape_md(version.constitution.name)} v{version.info.number} "
                f"(`{version.info.content_hash[:16]}…`) · by {escape_md(info.created_by)}")
        if info.error:
            line += f"\n\n{escape_md(info.error)}"
        links = " · ".join(f"{stage_title(s)}: {job_link(s.job.id)}"
                           for s in info.stages)
        return f"{line}\n\nCurves and logs on the Training tab: {links}"

    @staticmethod
    def _rows(info: PipelineInfo) -> list[list[Any]]:
        rows: list[list[Any]] = []
        for s in info.stages:
            needs = ", ".join(f"#{n}" for n in s.needs)
            rows.append([stage_title(s), f"#{s.job.id}", s.job.status,
                         s.job.attempt, needs, s.job.error[-300:]])
        if info.comparison is not None:
            c = info.comparison
            rows.append(["Comparison", f"comparison #{c.id}", c.status, "",
                         ", ".join(f"#{s.job.id}" for s in info.stages if s.stage in
                                   ("sft", "rl")), c.error[-300:]])
        return rows

    def _curves(self, info: PipelineInfo) -> Any:
        runs = {f"{stage_title(s)} #{s.job.id}": self.s.jobs.metrics(s.job.id)
                for s in info.stages if s.stage in ("sft", "reward", "rl")}
        return curves_figure(runs, title=f"Pipeline #{info.id}")

    def _result(self, info: PipelineInfo) -> str:
        c = info.comparison
        if c is None:
            return "The final comparison starts when every stage has succeeded."
        if c.status != "done":
            return f"Comparison #{c.id} is {c.status} ({c.done_count} of {c.total_count} steps)."
        try:
            report = self.s.comparison_reports.report(c.id)
        except StudioError as exc:
            return f"**No report.** {escape_md(exc.message)}"
        return f"### Final comparison #{c.id}\n\n" + compare_charts.summary_md(report)

    def cancel(self, request: gr.Request, pipeline_id: int | None) -> str:
        return self._act(request, pipeline_id, "cancel")

    def resume(self, request: gr.Request, pipeline_id: int | None) -> str:
        return self._act(request, pipeline_id, "resume")

    def _act(self, request: gr.Request, pipeline_id: int | None, what: str) -> str:
        if pipeline_id is None:
            return "**Pick a pipeline.**"
        try:
            actor = principal(self.s, request)
            act = self.s.pipelines.cancel if what == "cancel" else self.s.pipelines.resume
            info = act(int(pipeline_id), actor=actor)
        except StudioError as exc:
            return f"**Not {what}ed.** {escape_md(exc.message)}"
        done = "cancelled" if what == "cancel" else "resumed"
        return f"Pipeline #{info.id} {done}: now {info.status}."


def stage_order() -> list[str]:
    return [STAGE_TITLES[s] for s in STAGES]
