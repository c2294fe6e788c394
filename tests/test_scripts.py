"""The project's scripts (benchmarks, and the commands in pipelines/) use its packages as a user would:
installed (the ``-e .`` of requirements.txt), through their public names. None edits ``sys.path`` to
find them, and none reaches into a module's private (``_``-prefixed) names, which may change without
notice."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("streak_source", "streak_warehouse", "streak_eventlog", "pipelines", "dashboards", "benchmarks")
SCRIPTS = sorted([*(REPO_ROOT / "benchmarks").glob("*.py"), *(REPO_ROOT / "pipelines").glob("streak_*.py")])


def _problems(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Attribute) and node.attr == "path" and isinstance(node.value, ast.Name) \
                and node.value.id == "sys":
            found.append(f"line {node.lineno}: uses sys.path")
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] in PACKAGES:
            private = [alias.name for alias in node.names if alias.name.startswith("_")]
            if private:
                found.append(f"line {node.lineno}: imports {', '.join(private)} from {node.module}")
    return found


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: f"{path.parent.name}/{path.name}")
def test_a_script_imports_only_public_names_and_leaves_sys_path_alone(script: Path) -> None:
    assert _problems(script) == []
