"""Writing benchmark results: bench/results/<name>.json and a row in docs/benchmarks.md.

Each benchmark measures its ratios side by side in one run and records the command that
reproduces them.
"""

from __future__ import annotations

import json
import os
import platform
import re
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
DOC = ROOT / "docs" / "benchmarks.md"
DOC_HEADER = (
    "# Benchmarks\n\n"
    "Ratios are measured side by side in one run on the machine named. Each row comes from\n"
    "`bench/results/<name>.json`; rerun the command to reproduce it.\n\n"
    "| benchmark | result | figures | machine | date | command |\n"
    "|---|---|---|---|---|---|\n"
)


def machine() -> str:
    cpus = os.cpu_count() or 0
    system = f"{platform.system()} Python {platform.python_version()}"
    return f"{platform.machine()} {cpus} CPUs, {system}"


def record(name: str, figures: dict[str, float], unit: str, command: str, summary: str) -> Path:
    """Write the JSON result and replace this benchmark's row in docs/benchmarks.md."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    data: dict[str, object] = {
        "name": name,
        "figures": {k: round(float(v), 6) for k, v in figures.items()},
        "unit": unit,
        "command": command,
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": machine(),
        "summary": summary,
    }
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    _write_row(data)
    return path


def _write_row(data: dict[str, object]) -> None:
    text = DOC.read_text(encoding="utf-8") if DOC.exists() else DOC_HEADER
    figures = data["figures"]
    assert isinstance(figures, dict)
    shown = ", ".join(f"{k}={v:g}" for k, v in figures.items())
    row = (f"| {data['name']} | {data['summary']} | {shown} ({data['unit']}) | {data['machine']} "
           f"| {data['date']} | `{data['command']}` |\n")
    # a row is one benchmark measured by one script: two scripts may report the same figure
    # name (e.g. the tiny model's and SmolLM2's verdict speed-up), and each keeps its own row
    script = str(data["command"]).split()[:3]
    same = [m for m in re.finditer(rf"^\| {re.escape(str(data['name']))} \|.*\n", text,
                                   re.MULTILINE)
            if m.group(0).rstrip().rstrip("|").rstrip().rstrip("`").rsplit("| `", 1)[-1]
            .split()[:3] == script]
    if same:
        text = text[:same[0].start()] + row + text[same[0].end():]
    else:  # a new row goes at the end of the table, before any notes below it
        rows = list(re.finditer(r"^\|.*\|\n", text, re.MULTILINE))
        end = rows[-1].end() if rows else len(text)
        text = text[:end] + row + text[end:]
    DOC.write_text(text, encoding="utf-8")
