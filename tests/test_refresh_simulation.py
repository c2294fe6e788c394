"""``--refresh changed`` equals a full load of the same day, table by table and row for row, day after
day (issue 15, "done means", short): benchmarks/refresh.py's ``equality`` with a few days here; the
30-day runs on DuckDB and Postgres are in benchmarks/results/refresh.json (docs/refresh.md).

Each day the sandbox moves on (moves, tasks, comments, threads, meetings, files, field edits, new
and deleted boxes, new stages and fields), then one ``--refresh changed`` run goes into one
destination and one full load into another. Every table of the two copies must be equal (the
run's own stamp and clock columns aside: benchmarks/refresh.py names them and why), and the
refresh must make exactly the full load's calls less the child calls of the boxes the sandbox left
alone that day.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from benchmarks.refresh import equality, two_postgres_databases

pytestmark = pytest.mark.slow


def check(result: dict[str, Any], days: int) -> None:
    assert result["equal_every_day"], result["problems"]
    assert [d["refresh_mode"] for d in result["per_day"]] == ["full"] + ["changed"] * days
    assert "refresh_basis_children" in result["tables_compared"] and "boxes" in result["tables_compared"]
    later = result["per_day"][1:]
    assert all(d["refresh_calls"] < d["full_calls"] for d in later)
    assert sum(d["boxes_reread_expected"] for d in later) > 0  # the days really changed boxes


def test_refresh_equals_a_full_load_every_day_on_duckdb(dlt_isolated: Any, tmp_path: Path) -> None:
    check(equality(boxes=30, days=3, work=tmp_path), days=3)


@pytest.mark.postgres
def test_refresh_equals_a_full_load_every_day_on_postgres(dlt_isolated: Any, postgres_url: str, tmp_path: Path) -> None:
    with two_postgres_databases(postgres_url) as urls:
        check(equality(boxes=30, days=2, work=tmp_path, postgres=urls), days=2)
