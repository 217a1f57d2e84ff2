"""Event handlers of the Agreement tab. They call services only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from backend.errors import StudioError
from backend.services.container import Services
from backend.services.datasets import import_report
from backend.services.evaluations import EvaluationConfig
from studio import agreement_charts as charts
from studio.judge_marks import hard_mark, judge_line
from studio.render import escape_md, prose, record_link, side_by_side
from studio.run_controls import progress_line, run_action, safe_progress
from studio.session import principal

FORMATS = [("HH-RLHF (chosen/rejected dialogues)", "hh_rlhf"),
           ("CAI paper: 438 HHH evaluations", "hhh_eval"),
           ("CAI paper: HarmfulVsEthical", "harmful_vs_ethical"),
           ("Generic JSONL (map the columns)", "jsonl"),
           ("Generic CSV (map the columns)", "csv")]
RUN_HEADERS = ["id", "name", "status", "progress", "model", "updated (UTC)"]
DATASET_HEADERS = ["id", "name", "format", "items", "duplicates skipped", "source sha256"]
PAGE = 10
LABELS = {1.0: "A", 0.0: "B", 0.5: "tie"}


def sample_size(value: str | float | None) -> int | str | None:
    """The sample size box: empty means all items; a positive whole number, or the problem."""
    text = str(value if value is not None else "").strip()
    if not text:
        return None
    try:
        number = float(text)
    except ValueError:
        return f"Sample size {text[:20]!r} is not a number; leave it empty for all items."
    if number < 1 or not number.is_integer():
        return (f"Sample size must be a whole number of at least 1 (got {text[:20]}); leave it "
                "empty for all items.")
    return int(number)


class AgreementHandlers:
    def __init__(self, services: Services) -> None:
        self.s = services

    # --- lists -------------------------------------------------------------------------------

    def dataset_rows(self) -> list[list[Any]]:
        return [[d.id, d.name, d.source_format, d.item_count, d.skipped_duplicates,
                 d.source_sha256[:12]] for d in self.s.datasets.list_all()]

    def run_rows(self) -> list[list[Any]]:
        return [[r.id, r.name, r.status, f"{r.done_count}/{r.total_count} "
                 f"({r.progress:.0%})", r.model, r.updated_at.strftime("%H:%M:%S")]
                for r in self.s.evaluations.list_all()]

    def run_choices(self) -> list[tuple[str, int]]:
        return [(f"#{r.id} {r.name}", r.id) for r in self.s.evaluations.list_all()]

    def load(self) -> tuple[Any, ...]:
        datasets = [(f"{d.name} ({d.item_count})", d.id) for d in self.s.datasets.list_all()]
        constitutions = [(c.name, c.id) for c in self.s.constitutions.list_all()]
        runs = self.run_choices()
        first_run = runs[0][1] if runs else None
        return (self.dataset_rows(), gr.update(choices=datasets,
                                               value=datasets[0][1] if datasets else None),
                gr.update(choices=constitutions,
                          value=constitutions[0][1] if constitutions else None),
                self.run_rows(), gr.update(choices=runs, value=first_run),
                gr.update(choices=runs, value=first_run),
                gr.update(choices=runs, value=runs[1][1] if len(runs) > 1 else first_run))

    def refresh(self, dataset_id: int | None, constitution_id: int | None,
                version_id: int | None, seen_head: int | None, run_id: int | None,
                run_a: int | None, run_b: int | None) -> tuple[Any, ...]:
        """On opening the tab: relist datasets, constitutions, versions and runs that other
        tabs or the CLI changed, keeping each pick that still exists. A version picker that
        showed the head follows a newer head; an older version picked on purpose stays.
        Returns updates for (dataset, constitution, version, seen head, run, run a, run b)."""
        def keep(choices: list[tuple[str, Any]], value: Any) -> Any:
            ids = [c[1] for c in choices]
            return gr.update(choices=choices,
                             value=value if value in ids else (ids[0] if ids else None))

        datasets = [(f"{d.name} ({d.item_count})", d.id) for d in self.s.datasets.list_all()]
        constitutions = [(c.name, c.id) for c in self.s.constitutions.list_all()]
        constitution = keep(constitutions, constitution_id)
        versions = self.versions(constitution["value"])
        head = versions["value"] if isinstance(versions, dict) else None
        listed = {c[1] for c in versions.get("choices", [])} if isinstance(versions, dict) \
            else set()
        if version_id is not None and version_id != seen_head and version_id in listed:
            versions["value"] = version_id
        runs = self.run_choices()
        return (keep(datasets, dataset_id), constitution, versions, head, keep(runs, run_id),
                keep(runs, run_a), keep(runs, run_b))

    def versions(self, constitution_id: int | None) -> Any:
        if constitution_id is None:
            return gr.update(choices=[], value=None)
        items = self.s.constitutions.history(int(constitution_id), limit=200)
        choices = [(f"v{v.number}", v.id) for v in items]
        return gr.update(choices=choices, value=choices[0][1] if choices else None)

    # --- datasets ----------------------------------------------------------------------------

    def import_dataset(self, request: gr.Request, path: str | None, fmt: str, name: str,
                       prompt_col: str, a_col: str, b_col: str, label_col: str,
                       label_values: str = "") -> tuple[Any, ...]:
        if not path:
            return "**Choose a file to import.**", gr.skip(), gr.skip()
        mapping = None
        if fmt in ("jsonl", "csv"):
            mapping = {"prompt": prompt_col.strip(), "response_a": a_col.strip(),
                       "response_b": b_col.strip(), "label": label_col.strip(),
                       "label_values": (label_values or "").strip() or None}
        try:
            info = self.s.datasets.import_file(Path(path).name, Path(path).read_bytes(), fmt,
                                               actor=principal(self.s, request),
                                               name=name.strip() or None, mapping=mapping)
        except StudioError as exc:
            return f"**Nothing was imported.** {escape_md(exc.message)}", gr.skip(), gr.skip()
        datasets = [(f"{d.name} ({d.item_count})", d.id) for d in self.s.datasets.list_all()]
        report = escape_md(import_report(info))
        if info.same_source_as:
            gr.Warning(f"The same file was imported before (sha256 {info.source_sha256[:12]}).")
            report = "⚠️ " + report
        return (f"Imported **{escape_md(info.name)}**: {report}", self.dataset_rows(),
                gr.update(choices=datasets, value=info.id))

    # --- runs --------------------------------------------------------------------------------

    def launch(self, request: gr.Request, dataset_id: int | None, version_id: int | None,
               sample: str | float | None, cot: bool, both: bool, k: float, seed: float,
               few_shots: bool = True, form: str = "chat", judge: str = "scored"
               ) -> tuple[Any, ...]:
        if dataset_id is None or version_id is None:
            return ("**Pick a dataset and a constitution version.**",
                    *([gr.skip()] * 4))
        size = sample_size(sample)
        if isinstance(size, str):
            return (f"**Not started.** {escape_md(size)}", *([gr.skip()] * 4))
        config = EvaluationConfig(sample_size=size, seed=int(seed),
                                  cot=bool(cot), both_orders=bool(both), k_principles=int(k),
                                  use_few_shots=bool(few_shots),
                                  form="raw" if form == "raw" else "chat",
                                  judge="parsed" if judge == "parsed" else "scored")
        try:
            actor = principal(self.s, request)
            info = self.s.evaluations.create(dataset_id=int(dataset_id),
                                             version_id=int(version_id), config=config,
                                             actor=actor)
            self.s.evaluations.start(info.id, actor=actor)
        except StudioError as exc:
            return (f"**Not started.** {escape_md(exc.message)}", *([gr.skip()] * 4))
        runs = self.run_choices()
        return (f"Started run #{info.id} on {info.total_count} pairs; it continues if you "
                "leave this page.", self.run_rows(), gr.update(choices=runs, value=info.id),
                gr.update(choices=runs), gr.update(choices=runs))

    def cancel(self, request: gr.Request, run_id: int | None) -> tuple[Any, ...]:
        """Returns (runs table, progress line); a refusal is shown in the progress line."""
        return run_action(lambda i: self.s.evaluations.cancel(i, actor=principal(self.s, request)),
                          run_id, self.run_rows, self.progress, noun="run", refused="cancelled")

    def resume(self, request: gr.Request, run_id: int | None) -> tuple[Any, ...]:
        return run_action(lambda i: self.s.evaluations.start(i, actor=principal(self.s, request)),
                          run_id, self.run_rows, self.progress, noun="run", refused="resumed")

    def progress(self, run_id: int | None) -> str:
        def line(i: int) -> str:
            r = self.s.evaluations.get(i)
            return progress_line(f"Run #{r.id}", r.status, r.progress, r.done_count,
                                 r.total_count, r.error)
        return safe_progress(line, run_id)

    def tick(self, run_id: int | None) -> tuple[Any, ...]:
        return self.run_rows(), self.progress(run_id)

    # --- report and disagreements -----------------------------------------------------------

    def report(self, run_id: int | None) -> tuple[Any, ...]:
        if run_id is None:
            return "**Pick a run.**", None, None, None, gr.skip()
        try:
            report = self.s.agreement.report(int(run_id))
        except StudioError as exc:
            return f"**No report.** {escape_md(exc.message)}", None, None, None, gr.skip()
        titles = self._titles(int(run_id))
        keys = [("any principle", "")] + [(titles.get(p.principle, p.principle), p.principle)
                                          for p in report.per_principle]
        table = charts.metrics_table(report) + judge_line(report.judge, report.unparsed_verdicts,
                                                          report.summary.n) + (
            f"\n\n**{report.bounded_verdicts} of {report.summary.n} verdicts bounded**: a "
            "choice was missing from the server's top tokens, so its probability is an "
            "estimate (at most the smallest listed)." if report.bounded_verdicts else "")
        return (table, charts.reliability_figure(report),
                charts.principle_figure(report, titles), charts.histogram_figure(report),
                gr.update(choices=keys, value=""))

    def disagreements(self, run_id: int | None, principle: str, low: float, high: float,
                      label: str, only_wrong: bool, page: float) -> str:
        if run_id is None:
            return "Pick a run."
        human = {"A": 1.0, "B": 0.0, "tie": 0.5}.get(label)
        page_index = max(0, int(page or 1) - 1)
        rows, total = self.s.agreement.disagreements(
            int(run_id), principle=principle or None, min_confidence=float(low),
            max_confidence=float(high), human_label=human, only_disagreements=bool(only_wrong),
            limit=PAGE, offset=page_index * PAGE)
        titles = self._titles(int(run_id))
        pages = max(1, -(-total // PAGE))
        out = [f"**{total} items** match · page {page_index + 1} of {pages}"]
        for r in rows:
            principles = ", ".join(escape_md(titles.get(k, k)) for k in r.principles)
            out.append(f"---\n**Item {r.item_id}** · human: **{LABELS.get(r.human_label, '?')}**"
                       f" · AI p(A) = **{r.p_a:.3f}**{hard_mark(r.hard, r.unparsed)}"
                       f" · principles: {principles} · records "
                       + ", ".join(record_link(i) for i in r.record_ids))
            out.append("**Prompt**\n\n" + prose(r.prompt))
            out.append(side_by_side(r.response_a, r.response_b))
            for cot in r.cot:
                out.append("**Chain of thought**\n\n" + prose(cot))
        return "\n\n".join(out)

    def compare(self, run_a: int | None, run_b: int | None) -> str:
        if run_a is None or run_b is None:
            return "Pick two runs."
        try:
            c = self.s.agreement.compare(int(run_a), int(run_b))
        except StudioError as exc:
            return f"**Cannot compare.** {escape_md(exc.message)}"
        a, b = self.s.evaluations.get(int(run_a)), self.s.evaluations.get(int(run_b))
        table = charts.comparison_table(c, f"#{a.id} {a.name}", f"#{b.id} {b.name}")
        flips = [f"| {f.item_id} | {LABELS.get(f.human, '?')} | {LABELS.get(f.decision_a, '?')}"
                 f" | {LABELS.get(f.decision_b, '?')} | {f.direction.replace('_', ' ')} |"
                 for f in c.flips[:50]]
        if flips:
            table += ("\n\n| item | human | first run | second run | direction |\n"
                      "|---|---|---|---|---|\n" + "\n".join(flips))
        return table

    def _titles(self, run_id: int) -> dict[str, str]:
        info = self.s.evaluations.get(run_id)
        content = self.s.constitutions.version(info.constitution_version_id).content
        return {p.key: p.title for p in content.principles}
