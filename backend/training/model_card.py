"""The model card of a trained model: README.md in the job's ``output/`` folder (issue 17).

Written by the entry point when a model stage succeeds, from the completed manifest and the
result: the constitution (name, version, content hash), the datasets and models the run read,
its metrics, and how to reproduce it (the config and the commands that run it again).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

CARD_NAME = "README.md"


def _scalar_metrics(summary: dict[str, Any]) -> dict[str, object]:
    return {k: v for k, v in summary.items() if isinstance(v, int | float | str | bool)}


def render(manifest: dict[str, Any], summary: dict[str, Any]) -> str:
    """The card's Markdown (YAML front matter for the Hub, then the sections)."""
    kind = str(manifest.get("kind", ""))
    config: dict[str, Any] = dict(manifest.get("config") or {})
    constitution = manifest.get("constitution") or {}
    models = manifest.get("models") or {}
    base = next((m.get("location") for role, m in models.items()
                 if isinstance(m, dict) and role in ("model", "policy", "base")), None)
    front: dict[str, Any] = {
        "library_name": "transformers",
        "tags": ["constitutional-ai", "constitution-studio", kind],
        "constitution_sha256": constitution.get("content_hash"),
    }
    if isinstance(base, str) and "/" in base and not Path(base).is_absolute():
        front["base_model"] = base
    lines = ["---", yaml.safe_dump(front, sort_keys=False).strip(), "---", "",
             f"# {kind} model trained by Constitution Studio (job {manifest.get('job_id')})",
             "", "## Constitution", ""]
    if constitution:
        lines += [f"- name: {constitution.get('name') or '(unknown)'}",
                  f"- version: {constitution.get('number')} (id {constitution.get('version_id')})",
                  f"- content hash (sha256): `{constitution.get('content_hash')}`"]
    else:
        lines.append("- none recorded (this stage was launched without a constitution version)")
    lines += ["", "## Datasets", ""]
    datasets = manifest.get("datasets") or {}
    lines += [f"- {role}: `{json.dumps(info, sort_keys=True)}`" for role, info in
              datasets.items()] or ["- none"]
    lines += ["", "## Models read", ""]
    lines += [f"- {role}: `{m.get('ref')}` ({m.get('location')})" for role, m in models.items()
              if isinstance(m, dict)] or ["- none"]
    lines += ["", "## Metrics", ""]
    metrics = _scalar_metrics(summary)
    lines += [f"- {k}: {v}" for k, v in sorted(metrics.items())] or ["- none reported"]
    packages = manifest.get("packages") or {}
    lines += ["", "## Reproduce", "",
              f"Git commit `{manifest.get('git_commit')}`; packages "
              + ", ".join(f"{k} {v}" for k, v in sorted(packages.items()) if v) + ".",
              "", "Config (`config_sha256` " + str(manifest.get("config_sha256")) + "):", "",
              "```yaml", yaml.safe_dump(config, sort_keys=True).strip(), "```", "",
              "Queue it again (save the config above as config.yaml):", "", "```sh",
              f"cstudio job submit {kind} --config config.yaml",
              "# or, in a job folder holding job.json:",
              "python -m backend.training.entry --job-dir <job folder>", "```", ""]
    return "\n".join(lines)


def write(output_dir: Path, manifest: dict[str, Any], summary: dict[str, Any]) -> Path:
    path = output_dir / CARD_NAME
    path.write_text(render(manifest, summary), encoding="utf-8")
    return path
