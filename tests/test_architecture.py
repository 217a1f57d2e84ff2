"""docs/architecture.md matches the tree (issue 18 point 7): every module is named in its
layout section, and the import direction it draws holds — in every import, including those
inside functions."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("studio", "backend", "db")
DOC = ROOT / "docs" / "architecture.md"

# (importer package prefix, imported prefixes it must never reach)
FORBIDDEN: list[tuple[str, tuple[str, ...]]] = [
    ("backend", ("studio",)),
    ("db", ("studio", "backend")),
    ("backend.cai", ("backend.services", "backend.jobs", "backend.training", "backend.common",
                     "db")),
    ("backend.engines", ("backend.services", "backend.jobs", "backend.training",
                         "backend.common", "backend.cai")),
    ("backend.common", ("backend.services", "backend.jobs", "backend.training")),
    ("backend.training", ("backend.services", "backend.jobs")),
    ("backend.jobs", ("backend.services", "backend.training")),
]


def _modules() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")
                  if "migrations" not in p.parts and p.name != "__init__.py")


def _name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


def _layout() -> str:
    text = DOC.read_text(encoding="utf-8")
    return text[text.index("## Layout and import direction"):text.index("## Data model")]


def test_every_module_is_named_in_the_layout_section() -> None:
    layout = _layout()
    missing = [_name(p) for p in _modules()
               if not re.search(rf"(?<![\w]){re.escape(p.stem)}(?![\w])", layout)]
    assert missing == [], f"name these in docs/architecture.md's layout: {missing}"


@pytest.mark.parametrize(("importer", "never"), FORBIDDEN)
def test_imports_point_down(importer: str, never: tuple[str, ...]) -> None:
    wrong = []
    for path in _modules():
        name = _name(path)
        if name != importer and not name.startswith(importer + "."):
            continue
        for target in _imports(path):
            if any(target == n or target.startswith(n + ".") for n in never):
                wrong.append(f"{name} imports {target}")
    assert wrong == []
