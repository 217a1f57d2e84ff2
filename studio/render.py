"""Turning studio data into Markdown that is safe to show.

Untrusted text (principle texts, titles, names, messages, responses) is escaped so Markdown
and HTML have no effect: single-line values with ``escape_md``, long texts with ``prose`` (which
keeps line breaks and wraps), exact texts (prompts as sent, parameters) in a fenced code block.
gr.Markdown's sanitiser stays on as a second line of defence.
"""

from __future__ import annotations

import difflib
import re

from backend.cai.diff import ConstitutionDiff, FieldChange

_MD_SPECIAL = set("\\`*_{}[]()#+-.!|<>&~\"'=:")


def escape_md(text: str) -> str:
    """Backslash-escape every character that Markdown or HTML could interpret."""
    flat = " ".join(text.split())
    return "".join("\\" + ch if ch in _MD_SPECIAL else ch for ch in flat)


def prose(text: str) -> str:
    """Long untrusted text as wrapped Markdown prose: every line escaped (no markup, no HTML),
    line breaks kept as hard breaks, blank lines as paragraph breaks."""
    paragraphs = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        lines = [escape_md(line) for line in block.split("\n") if line.strip()]
        if lines:
            paragraphs.append("  \n".join(lines))
    return "\n\n".join(paragraphs) or "*(empty)*"


def side_by_side(a: str, b: str, left: str = "Response A", right: str = "Response B") -> str:
    """Two untrusted texts in the two columns of a Markdown table (escaped, wrapping)."""
    return f"| {left} | {right} |\n|---|---|\n| {escape_md(a)} | {escape_md(b)} |"


def word_diff(old: str, new: str) -> str:
    """Word-level diff as escaped Markdown: removed words ~~struck~~, added words **bold**."""
    a, b = old.split(), new.split()
    out: list[str] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            out.append(escape_md(" ".join(a[i1:i2])))
            continue
        if i2 > i1:
            out.append(f"~~{escape_md(' '.join(a[i1:i2]))}~~")
        if j2 > j1:
            out.append(f"**{escape_md(' '.join(b[j1:j2]))}**")
    return " ".join(out) or "*(empty)*"


def _field_md(f: FieldChange) -> str:
    return f"\n*{f.field.replace('_', ' ')}*\n\n{word_diff(f.old, f.new)}"


def fenced(body: str, lang: str = "") -> str:
    fence = "```"
    while fence in body:
        fence += "`"
    return f"{fence}{lang}\n{body}\n{fence}"


def record_link(record_id: int) -> str:
    """A link that opens a critique-log record on the Audit tab."""
    return f"[#{int(record_id)}](?record={int(record_id)})"


def job_link(job_id: int) -> str:
    """A link that opens a job on the Training tab."""
    return f"[job {int(job_id)}](?job={int(job_id)})"


def dataset_link(dataset_id: int) -> str:
    """A link that lists the critique-log records behind a training dataset (Audit tab)."""
    return f"[dataset {int(dataset_id)}](?dataset={int(dataset_id)})"


def progress_bar(fraction: float, width: int = 30) -> str:
    """A text progress bar (█ done, ░ to do) for a run's progress line."""
    done = int(fraction * width)
    return "█" * done + "░" * (width - done)


def problems_md(title: str, problems: list[str]) -> str:
    lines = [f"**{escape_md(title)}**"]
    lines.extend(f"- {escape_md(p)}" for p in problems)
    return "\n".join(lines)


def diff_md(diff: ConstitutionDiff, old_label: str, new_label: str) -> str:
    head = f"### {escape_md(old_label)} → {escape_md(new_label)}"
    if diff.is_empty:
        return f"{head}\n\nNo differences."
    counts = ", ".join(f"{n} {kind}" for kind, n in sorted(diff.summary_counts.items()))
    lines = [head, counts or "Principles unchanged.",
             "\nWords removed are ~~struck through~~, words added are **bold**."]
    if diff.few_shots_changed:
        lines.append("\nFew-shot examples changed.")
    for c in diff.changes:
        if c.kind in ("moved", "changed") and c.old_position != c.new_position:
            pos = f"#{c.old_position} → #{c.new_position}"
        else:
            pos = f"#{c.new_position or c.old_position}"
        lines.append(f"\n**{c.kind.upper()}** {pos} · {escape_md(c.key)} · {escape_md(c.title)}")
        lines.extend(_field_md(f) for f in c.fields)
    return "\n".join(lines)


_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit)\b:?")


def error_cause(error: str) -> str:
    """The one line that says why: a one-line message as it is; for a log tail with a
    traceback, the exception line that ends it."""
    lines = [line.strip() for line in error.splitlines() if line.strip()]
    if len(lines) <= 1:
        return lines[0] if lines else ""
    for line in reversed(lines):
        if _EXCEPTION_LINE.match(line):
            return line[:300]
    return lines[0][:300]
