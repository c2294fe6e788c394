"""A newcomer's first query (issue 21): the README's command works from any folder, shows the boxes
with what matters (pipeline, name, stage, owner, a value), and never creates an empty DuckDB file."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.loadtools import REPO_ROOT, run_main_job

pytestmark = pytest.mark.timeout(300)

HEADER = ["pipeline", "box", "stage", "owner", "value_field", "value", "last_updated"]


def readme_query_command() -> list[str]:
    """The first-query command the README's quick start gives (``python -m ...``)."""
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    quick_start = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"`(python -m pipelines\.streak_query)`", quick_start)
    assert commands, "the quick start gives no first query"
    return commands[0].split()


def run_elsewhere(command: list[str], folder: Path) -> subprocess.CompletedProcess[str]:
    """``command`` with ``folder`` (not the project) as the current directory; env as the test's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOURCES__", "DESTINATION__"))}
    return subprocess.run([sys.executable, *command[1:]], cwd=str(folder), env=env, capture_output=True, text=True,
                          timeout=120)


@pytest.fixture
def elsewhere(tmp_path: Path) -> Path:
    folder = tmp_path / "somewhere-else"
    folder.mkdir()
    return folder


def test_the_readme_query_shows_the_latest_boxes_from_any_folder(dlt_isolated: Any, elsewhere: Path) -> None:
    loaded = run_main_job(["--demo", "--demo-boxes", "12", "--quiet"], env={})
    assert loaded.returncode == 0, loaded.stderr
    result = run_elsewhere(readme_query_command(), elsewhere)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == HEADER and lines[-1] == "(10 rows)"
    with duckdb.connect(str(dlt_isolated.duckdb_path), read_only=True) as con:
        latest = con.execute("SELECT b.name, b.stage_name, p.name FROM crm.boxes b JOIN crm.pipelines p "
                             "USING (pipeline_key) ORDER BY b.last_updated_timestamp DESC NULLS LAST, b.box_key "
                             "LIMIT 10").fetchall()
    for line, (box, stage, pipeline) in zip(lines[2:-1], latest, strict=True):
        shown = " ".join(line.split())
        assert shown.startswith(f"{pipeline} {' '.join(box.split())[:30]}") and f" {stage} " in shown, line
    assert list(elsewhere.iterdir()) == []
    from_the_project = subprocess.run([sys.executable, "pipelines/streak_query.py"], cwd=str(REPO_ROOT),
                                      capture_output=True, text=True, timeout=120)
    assert from_the_project.stdout == result.stdout, from_the_project.stderr


def test_without_a_copy_it_says_how_to_load_one_and_creates_nothing(dlt_isolated: Any, elsewhere: Path) -> None:
    result = run_elsewhere(readme_query_command(), elsewhere)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"error: no copy at {dlt_isolated.duckdb_path} yet; load one first: python pipelines/streak_full.py --demo "
        "(or your own account: see README.md)"]
    assert list(elsewhere.iterdir()) == [] and not dlt_isolated.duckdb_path.exists()


def test_any_query_and_its_errors(dlt_isolated: Any, elsewhere: Path) -> None:
    with duckdb.connect(str(dlt_isolated.duckdb_path)) as con:
        con.execute("CREATE SCHEMA crm; CREATE TABLE crm.boxes AS SELECT 'Acme' AS name, 1250000.5 AS amount")
    ok = run_elsewhere([*readme_query_command(), "SELECT name, amount FROM crm.boxes"], elsewhere)
    assert ok.stdout.splitlines() == ["name        amount", "----  ------------", "Acme  1,250,000.50", "(1 row)"]
    bad = run_elsewhere([*readme_query_command(), "SELECT nope FROM crm.boxes"], elsewhere)
    assert bad.returncode == 1 and len(bad.stderr.splitlines()) == 1
    assert bad.stderr.startswith('error: the query failed: Binder Error: Referenced column "nope" not found')
