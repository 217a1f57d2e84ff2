"""Turning studio data into Markdown that is safe to show.

Untrusted text (principle texts, titles, names, messages) is either escaped so Markdown and
HTML have no effect, or placed inside a fenced code block. gr.Markdown's sanitiser stays on as
a second line of defence.
"""

from __future__ import annotations

from backend.cai.diff import ConstitutionDiff

_MD_SPECIAL = set("\\`*_{}[]()#+-.!|<>&~\"'=:")


def escape_md(text: str) -> str:
    """Backslash-escape every character that Markdown or HTML could interpret."""
    flat = " ".join(text.split())
    return "".join("\\" + ch if ch in _MD_SPECIAL else ch for ch in flat)


def fenced(body: str, lang: str = "") -> str:
    fence = "```"
    while fence in body:
        fence += "`"
    return f"{fence}{lang}\n{body}\n{fence}"


def problems_md(title: str, problems: list[str]) -> str:
    lines = [f"**{escape_md(title)}**"]
    lines.extend(f"- {escape_md(p)}" for p in problems)
    return "\n".join(lines)


def diff_md(diff: ConstitutionDiff, old_label: str, new_label: str) -> str:
    head = f"### {escape_md(old_label)} → {escape_md(new_label)}"
    if diff.is_empty:
        return f"{head}\n\nNo differences."
    counts = ", ".join(f"{n} {kind}" for kind, n in sorted(diff.summary_counts.items()))
    lines = [head, counts or "Principles unchanged."]
    if diff.few_shots_changed:
        lines.append("\nFew-shot examples changed.")
    for c in diff.changes:
        if c.kind in ("moved", "changed") and c.old_position != c.new_position:
            pos = f"#{c.old_position} → #{c.new_position}"
        else:
            pos = f"#{c.new_position or c.old_position}"
        lines.append(f"\n**{c.kind.upper()}** {pos} · {escape_md(c.key)} · {escape_md(c.title)}")
        for f in c.fields:
            lines.append(f"\n*{f.field.replace('_', ' ')}*\n")
            lines.append(fenced(f.unified() or f"- {f.old}\n+ {f.new}", "diff"))
    return "\n".join(lines)
