"""The upgrade from a real layout-2 destination (history mode, before ``load_history.privacy``) to
this code's layout, and the switch of that copy to ``preset = "strict"`` (issue 25, item 4).

``tests/fixtures/layout2`` is what the release before layout 3 (commit ded47dd) wrote: two
``--demo --demo-boxes 10`` runs with events, so every ``crm.<table>_history`` has versions, with the
dlt working dir of that machine. Regenerate with ``tests/fixtures/make_layout1.py --code <that
checkout> --out tests/fixtures/layout2`` (docs/development.md, "Changing the warehouse layout").
"""

from __future__ import annotations

import io
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import duckdb
import pytest

from benchmarks.marker_search import found_in
from streak_source.sandbox import Sandbox
from streak_warehouse import layout_version
from streak_warehouse.layout_version import written_layout_version
from tests.fixtures.make_layout1 import DEMO_ARGS, fixture_anchor_date, restore

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "layout2"
DEMO_BOXES = int(DEMO_ARGS[-1])
WRITTEN = 2
"""The layout the fixture was written with."""
KEPT_VERSIONS = ("boxes_history", "contacts_history", "box_threads_history", "box_tasks_history")
SALT = "layout2-upgrade-salt-0123456789"


def fixture_sandbox() -> Sandbox:
    """The demo account anchored at the fixture's day 0 (see tests/test_upgrade.py)."""
    return Sandbox(boxes=DEMO_BOXES, anchor_date=fixture_anchor_date(FIXTURE))


def run(sb: Sandbox) -> tuple[dict[str, Any], str]:
    from pipelines.job import run_full_load

    printed = io.StringIO()
    summary = run_full_load({"api_key": sb.api_key, "base_url": sb.base_url, "max_requests_per_second": 1000},
                            progress=printed)
    return asdict(summary), printed.getvalue()


def versions(con: duckdb.DuckDBPyConnection, table: str, columns: list[str]) -> set[tuple[Any, ...]]:
    """Each version's values (``valid_to`` aside: a later run may close a version the fixture left open)."""
    names = ", ".join(f'"{c}"' for c in columns if c != "valid_to")
    return set(con.execute(f"SELECT {names} FROM crm.{table}").fetchall())


def column_names(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    return [d[0] for d in con.execute(f"SELECT * FROM crm.{table} LIMIT 0").description]


def test_the_fixture_is_small_and_was_written_by_layout_2(tmp_path: Path) -> None:
    assert sum(p.stat().st_size for p in FIXTURE.rglob("*") if p.is_file()) < 1_000_000
    path = tmp_path / "streak.duckdb"
    restore(FIXTURE, path)
    with duckdb.connect(str(path), read_only=True) as con:
        assert written_layout_version(lambda sql: con.execute(sql).fetchall(), "crm") == WRITTEN
        assert "privacy" not in column_names(con, "load_history")
        for table in KEPT_VERSIONS:
            assert con.execute(f"SELECT count(*) FROM crm.{table}").fetchone()[0] > 0


@pytest.mark.slow
def test_layout_2_upgrades_keeping_every_version_then_strict_leaves_no_clear_address(
    dlt_isolated: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("NORMALIZE__WORKERS", "1")
    monkeypatch.setenv("PRIVACY__PRESET", "none")
    old = tmp_path / "fixture-copy.duckdb"
    restore(FIXTURE, old)
    with duckdb.connect(str(old), read_only=True) as con:
        before = {t: (column_names(con, t), versions(con, t, column_names(con, t))) for t in KEPT_VERSIONS}
        addresses = sorted({a for (raw,) in con.execute("SELECT email_addresses FROM crm.contacts_history")
                            .fetchall() for a in json.loads(raw)})
        old_runs = con.execute("SELECT run_id FROM crm.load_history ORDER BY started_at").fetchall()
    assert addresses
    restore(FIXTURE, dlt_isolated.duckdb_path, dlt_isolated.pipelines_dir)

    with fixture_sandbox() as sb:
        _, printed = run(sb)
        assert printed.count(f"upgrade: the destination was written by warehouse layout {WRITTEN}, this is layout "
                             f"{layout_version.LAYOUT_VERSION}: ") == 1
        with duckdb.connect(str(dlt_isolated.duckdb_path), read_only=True) as con:
            assert written_layout_version(lambda sql: con.execute(sql).fetchall(), "crm") == \
                layout_version.LAYOUT_VERSION
            for table, (names, kept) in before.items():  # every version of layout 2, value for value
                missing = kept - versions(con, table, names)
                assert not missing, f"{table}: {len(missing)} of {len(kept)} versions lost"
            runs = con.execute("SELECT run_id, privacy, layout_version FROM crm.load_history "
                               "ORDER BY started_at").fetchall()
        assert [r[:1] for r in runs[:2]] == old_runs
        assert [r[1:] for r in runs] == [(None, WRITTEN), (None, WRITTEN), ("none", layout_version.LAYOUT_VERSION)]

        monkeypatch.setenv("PRIVACY__PRESET", "strict")
        monkeypatch.setenv("PRIVACY__SALT", SALT)
        _, printed = run(sb)
    assert "privacy: the rules changed since the previous load" in printed
    with duckdb.connect(str(dlt_isolated.duckdb_path), read_only=True) as con:
        for table in KEPT_VERSIONS:  # the versions are kept, protected
            assert con.execute(f"SELECT count(*) FROM crm.{table}").fetchone()[0] >= len(before[table][1])
        joined = con.execute("SELECT count(*) FROM crm.contacts c, unnest(CAST(c.email_addresses AS VARCHAR[])) a(x)"
                             " WHERE a.x LIKE 'h:%'").fetchone()[0]
        assert joined > 0
    assert found_in(dlt_isolated.root, addresses) == []  # not in the file, nor in dlt's working dir
