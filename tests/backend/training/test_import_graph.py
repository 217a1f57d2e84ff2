"""Issue 18 point 3: the training modules import each other without a circle (``rl`` ↔ ``ppo``
was one; their shared parts are ``rl_common`` now). Imports inside functions count too."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[3] / "backend" / "training"


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    names = {p.stem for p in PACKAGE.glob("*.py")}
    for path in PACKAGE.glob("*.py"):
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                if node.module == "backend.training":
                    found |= {a.name for a in node.names if a.name in names}
                elif node.module.startswith("backend.training."):
                    found.add(node.module.split(".")[2])
            elif isinstance(node, ast.Import):
                found |= {a.name.split(".")[2] for a in node.names
                          if a.name.startswith("backend.training.")}
        graph[path.stem] = found - {path.stem}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_circle_in_training() -> None:
    graph = _graph()
    assert "rl_common" in graph["ppo"] and "rl" not in graph["ppo"]
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_the_checker_finds_a_circle() -> None:
    assert _cycle({"rl": {"ppo"}, "ppo": {"rl"}}) == ["ppo", "rl", "ppo"]
