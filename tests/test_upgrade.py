"""Upgrades between warehouse layouts (issue 16, item 5).

The starting point is a destination written by the release before layout numbers were recorded
(``tests/fixtures/layout1``: two ``--demo --demo-boxes 10`` runs with events; regenerate with
``tests/fixtures/make_layout1.py``), with the dlt working dir of the machine that wrote it. The
code is then turned into a simulated layout 2 (:func:`layout2`): a column of a copy table renamed
by the source, a new copy table, a renamed column in a persistent table (a declared migration) and
a new persistent table. The next run must succeed without anyone deleting files, keep every row of
the tables kept across runs (migrated), and publish a copy without the old columns.
"""

from __future__ import annotations

import hashlib
import io
import shutil
from collections.abc import Iterator
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from streak_source.sandbox import Sandbox
from streak_warehouse import kept_tables, layout_version, migrations, persistent
from streak_warehouse.kept_tables import Migration, PersistentTable
from streak_warehouse.layout_version import written_layout_version
from streak_warehouse.migrations import MigrationDeclarationError
from tests.fixtures.make_layout1 import DEMO_ARGS, FIXTURE, fixture_anchor_date, restore

DEMO_BOXES = int(DEMO_ARGS[-1])
FAST = {"NORMALIZE__WORKERS": "1"}
"""One normalize worker: no process pool to start for a 10-box account."""
RENAMED = ("boxes_skipped", "boxes_gone")
"""The simulated next layout renames ``load_history.boxes_skipped``."""
CURRENT = layout_version.LAYOUT_VERSION
NEXT = CURRENT + 1
"""The simulated next layout (the fixture is layout 1; this code writes ``LAYOUT_VERSION``)."""


# --- the simulated layout 2 ---------------------------------------------------------------------


@pytest.fixture
def layout2(monkeypatch: pytest.MonkeyPatch) -> None:
    simulate_layout2(monkeypatch)


def simulate_layout2(monkeypatch: pytest.MonkeyPatch) -> None:
    """This code, as if the next release had changed the layout: what a real release would change in
    its source and table definitions, patched in."""
    import dlt

    import streak_source
    from streak_source import objects
    from streak_warehouse import history

    monkeypatch.setattr(layout_version, "LAYOUT_VERSION", NEXT)
    monkeypatch.setattr(kept_tables, "MIGRATIONS", (Migration(NEXT, "load_history", renamed=(RENAMED,)),))
    old = kept_tables.LOAD_HISTORY
    renamed_columns = tuple((RENAMED[1] if name == RENAMED[0] else name, kind) for name, kind in old.columns)
    renamed = PersistentTable(old.name, renamed_columns, old.primary_key)
    marks = PersistentTable("layout2_marks", (("mark_key", "text"), ("note", "text")), ("mark_key",))
    # the declaration of layout 2: load_history's column renamed, one kept table added
    monkeypatch.setattr(kept_tables, "KEPT_TABLES",
                        (*(renamed if table is old else table for table in kept_tables.KEPT_TABLES), marks))
    real_row = history.history_row

    def history_row(**kwargs: Any) -> dict[str, Any]:
        row = real_row(**kwargs)
        row[RENAMED[1]] = row.pop(RENAMED[0])
        return row

    monkeypatch.setattr(history, "history_row", history_row)
    snippets = next(obj for obj in objects.ACCOUNT_OBJECTS if obj.table == "snippets")
    real_snippet = snippets.build_row
    assert real_snippet is not None

    def snippet_row(snippet: Any, parent: objects.Parent) -> dict[str, Any]:  # the source renames snippet_text
        row = real_snippet(snippet, parent)
        row["snippetBody"] = row.pop("snippetText", None)
        return row

    monkeypatch.setattr(objects, "ACCOUNT_OBJECTS", tuple(
        replace(obj, build_row=snippet_row) if obj is snippets else obj for obj in objects.ACCOUNT_OBJECTS))
    from streak_source.columns import TABLE_COLUMNS  # ... and declares the renamed column

    monkeypatch.setitem(TABLE_COLUMNS, "snippets", {("snippet_body" if name == "snippet_text" else name): column
                                                    for name, column in TABLE_COLUMNS["snippets"].items()})
    real_resources = streak_source.all_resources

    def resources(*args: Any, **kwargs: Any) -> Iterator[Any]:  # and loads a new table
        yield from real_resources(*args, **kwargs)
        yield dlt.resource([{"note_key": "n1", "text": "new in layout 2"}], name="layout2_notes",
                           primary_key="note_key", write_disposition="replace")

    monkeypatch.setattr(streak_source, "all_resources", resources)


# --- helpers --------------------------------------------------------------------------------------


def fixture_rows(tmp_path: Path) -> dict[str, Any]:
    """What the layout-1 fixture holds, read from a restored copy of it."""
    path = tmp_path / "fixture-copy" / "streak.duckdb"
    restore(FIXTURE, path)
    with duckdb.connect(str(path), read_only=True) as con:
        return {
            "load_history": con.execute("SELECT run_id, outcome, api_calls, boxes_skipped FROM crm.load_history "
                                         "ORDER BY started_at").fetchall(),
            "events": con.execute("SELECT * FROM crm.events ORDER BY event_key").fetchall(),
            "event_columns": [d[0] for d in con.execute("SELECT * FROM crm.events LIMIT 0").description],
            "stays": con.execute(STAYS).fetchall(),
        }


STAYS = "SELECT stay_key, box_key, pipeline_key, stage_key, entered_at, entered_exact FROM crm.box_stage_history"


def fixture_sandbox() -> Sandbox:
    """The demo account anchored at the fixture's day 0, not today: anchored today, every time in the
    account would move by the fixture's age and the run would see moves that never were (the cause
    of the two stays that went missing on main). Its contents follow this release's sandbox."""
    return Sandbox(boxes=DEMO_BOXES, anchor_date=fixture_anchor_date())


def assert_stays_kept(before: list[tuple[Any, ...]], after: list[tuple[Any, ...]]) -> None:
    """Every stay the old copy knew is still there: the same row, or (docs/history.md) the same stay
    whose flagged entry bound a later run replaced with an exact, earlier entry time."""
    keys = {row[0] for row in after}
    exact_entries: dict[tuple[Any, ...], list[datetime]] = {}
    for _, box, pipeline, stage, entered, exact in after:
        if exact:
            exact_entries.setdefault((box, pipeline, stage), []).append(entered)
    lost = [row for row in before if row[0] not in keys
            and not (not row[5] and any(entered < row[4] for entered in exact_entries.get(row[1:4], ())))]
    assert not lost, f"stays lost: {lost}"


def upgrade_run(sb: Sandbox) -> tuple[dict[str, Any], str]:
    """One main-job run in this process; its summary and what it printed."""
    from pipelines.job import run_full_load

    printed = io.StringIO()
    summary = run_full_load({"api_key": sb.api_key, "base_url": sb.base_url, "max_requests_per_second": 1000},
                            progress=printed)
    return asdict(summary), printed.getvalue()


def columns(con: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    return {r[0] for r in con.execute("SELECT column_name FROM information_schema.columns "
                                      "WHERE table_schema = 'crm' AND table_name = ?", [table]).fetchall()}


def check_upgraded(path: Path, before: dict[str, Any], printed: str, sb: Sandbox) -> None:
    """The copy at ``path`` is layout 2, holds what ``sb`` serves under the renamed column, and kept
    every row of the layout-1 fixture ``before``."""
    assert (f"upgrade: the destination was written by warehouse layout 1, this is layout {NEXT}: rebuilding the copy "
            "from a clean dlt schema, migrating the tables kept across runs (box_stage_history, events, layout2_marks, "
            "load_history, stage_transitions; load_history.boxes_skipped -> boxes_gone); their rows are kept"
            ) in printed.splitlines()
    with duckdb.connect(str(path), read_only=True) as con:
        execute = lambda sql: con.execute(sql).fetchall()
        assert written_layout_version(execute, "crm") == NEXT
        # the copy: rebuilt from a clean dlt schema, so the renamed column's old name is gone
        assert "snippet_body" in columns(con, "snippets")
        assert "snippet_text" not in columns(con, "snippets")
        assert dict(con.execute("SELECT snippet_key, snippet_body FROM crm.snippets").fetchall()) == {
            snippet.key: snippet.text for snippet in sb.account.snippets}
        assert con.execute("SELECT note_key, text FROM crm.layout2_notes").fetchall() == [("n1", "new in layout 2")]
        assert columns(con, "layout2_marks") == {"mark_key", "note"}
        # history mode (layout 2) starts on the upgrade: every record of the new copy has its first version
        for table in ("boxes", "box_tasks", "snippets"):
            assert con.execute(f"SELECT COUNT(*) FROM crm.{table}_history WHERE valid_to IS NULL").fetchall() == \
                con.execute(f"SELECT COUNT(*) FROM crm.{table}").fetchall() != [(0,)]
        # load_history: migrated (the renamed column kept its values), plus this run's row
        assert RENAMED[0] not in columns(con, "load_history")
        history = con.execute(f"SELECT run_id, outcome, api_calls, {RENAMED[1]}, layout_version FROM crm.load_history "
                              "ORDER BY started_at").fetchall()
        assert [row[:4] for row in history[:len(before["load_history"])]] == before["load_history"]
        assert [row[4] for row in history[:len(before["load_history"])]] == [None] * len(before["load_history"])
        assert history[-1][1:2] + history[-1][4:] == ("ok", NEXT)
        # events: every old row, value for value (the main job may add newly derived ones)
        names = ", ".join(f'"{name}"' for name in before["event_columns"])
        assert set(before["events"]) <= set(con.execute(f"SELECT {names} FROM crm.events").fetchall())
        # stage history: every stay the old copy knew is still there
        assert_stays_kept(before["stays"], con.execute(STAYS).fetchall())


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- the upgrade from the layout-1 fixture (DuckDB) ---------------------------------------------------


def test_fixture_is_small_and_from_before_layouts_were_recorded(tmp_path: Path) -> None:
    size = sum(p.stat().st_size for p in FIXTURE.rglob("*") if p.is_file())
    assert size < 1_000_000
    path = tmp_path / "streak.duckdb"
    restore(FIXTURE, path)
    with duckdb.connect(str(path), read_only=True) as con:
        assert written_layout_version(lambda sql: con.execute(sql).fetchall(), "crm") == 1
        counts = {t: con.execute(f"SELECT count(*) FROM crm.{t}").fetchone()[0]
                  for t in ("load_history", "box_stage_history", "events", "boxes")}
    assert counts["load_history"] == 2 and counts["box_stage_history"] > 0 and counts["events"] > 0
    assert counts["boxes"] == DEMO_BOXES
    with duckdb.connect(str(path), read_only=True) as con:
        first_run = con.execute("SELECT min(started_at) FROM crm.load_history").fetchone()[0]
    assert first_run.astimezone(UTC).date().isoformat() == fixture_anchor_date()


@pytest.mark.slow
def test_upgrade_with_the_old_machines_working_dir(
    dlt_isolated: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, layout2: None
) -> None:
    """The machine that ran layout 1 runs layout 2: its dlt schema still has the old columns."""
    for name, value in FAST.items():
        monkeypatch.setenv(name, value)
    before = fixture_rows(tmp_path)
    restore(FIXTURE, dlt_isolated.duckdb_path, dlt_isolated.pipelines_dir)
    with fixture_sandbox() as sb:
        summary, printed = upgrade_run(sb)
    assert summary["rows"]["layout2_notes"] == 1
    check_upgraded(dlt_isolated.duckdb_path, before, printed, sb)


@pytest.mark.slow
def test_upgrade_on_a_new_machine_and_the_next_run_is_a_plain_one(
    dlt_isolated: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, layout2: None
) -> None:
    """A fresh dlt working dir against the layout-1 destination; afterwards both the destination and
    the working dir say the new layout, so the next run neither rebuilds nor migrates."""
    import dlt

    from streak_warehouse.upgrade import prepare_upgrade, written_layout_of_file

    for name, value in FAST.items():
        monkeypatch.setenv(name, value)
    before = fixture_rows(tmp_path)
    restore(FIXTURE, dlt_isolated.duckdb_path)
    with fixture_sandbox() as sb:
        _, printed = upgrade_run(sb)
    check_upgraded(dlt_isolated.duckdb_path, before, printed, sb)
    with duckdb.connect(str(dlt_isolated.duckdb_path), read_only=True) as con:
        layouts = con.execute("SELECT layout_version FROM crm.load_history ORDER BY started_at").fetchall()
    assert layouts == [(None,), (None,), (NEXT,)]
    pipeline = dlt.pipeline(pipeline_name="streak", pipelines_dir=str(dlt_isolated.pipelines_dir))
    upgrade = prepare_upgrade(pipeline, written_layout_of_file(dlt_isolated.duckdb_path, "crm"), "x")
    assert (upgrade.written, upgrade.working_dir, upgrade.rebuilds, upgrade.message()) == (NEXT, NEXT, False, None)
    assert pipeline.refresh is None


def test_a_destination_written_by_a_newer_layout_stops_the_run_untouched(
    dlt_isolated: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from pipelines.cli import main
    from pipelines.failures import EXIT_CONFIG

    restore(FIXTURE, dlt_isolated.duckdb_path)
    with duckdb.connect(str(dlt_isolated.duckdb_path)) as con:
        con.execute("ALTER TABLE crm.load_history ADD COLUMN layout_version BIGINT")
        con.execute(f"UPDATE crm.load_history SET layout_version = {layout_version.LAYOUT_VERSION + 1}")
    digest = sha256(dlt_isolated.duckdb_path)
    status = main([*DEMO_ARGS])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == EXIT_CONFIG
    assert err == [f"error: {dlt_isolated.duckdb_path} was written by warehouse layout {layout_version.LAYOUT_VERSION + 1}, "
                   f"but this version of the code writes layout {layout_version.LAYOUT_VERSION}: run a version that "
                   f"writes layout {layout_version.LAYOUT_VERSION + 1} or newer, or point the warehouse at another "
                   "destination; nothing was changed"]
    assert sha256(dlt_isolated.duckdb_path) == digest
    assert sorted(p.name for p in dlt_isolated.duckdb_path.parent.iterdir() if p.name.startswith("streak.duckdb")) == [
        "streak.duckdb", "streak.duckdb.lock"]


# --- Postgres: a layout-1 copy written in the test, then layout 2 -----------------------------------


@pytest.mark.postgres
@pytest.mark.slow
def test_upgrade_on_postgres(postgres_warehouse: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import psycopg2

    for name, value in FAST.items():
        monkeypatch.setenv(name, value)
    with Sandbox(boxes=DEMO_BOXES) as sb:
        upgrade_run(sb)  # today's code
        with psycopg2.connect(postgres_warehouse) as con, con.cursor() as cur:
            cur.execute("SELECT run_id, api_calls, boxes_skipped FROM crm.load_history")
            old_runs = cur.fetchall()
            cur.execute("SELECT stay_key, entered_at FROM crm.box_stage_history")
            old_stays = set(cur.fetchall())
            cur.execute("SELECT event_key, event_name FROM crm.events")
            old_events = set(cur.fetchall())
        assert old_runs and old_stays and old_events
        simulate_layout2(monkeypatch)
        _, printed = upgrade_run(sb)
    assert f"upgrade: the destination was written by warehouse layout {CURRENT}, this is layout {NEXT}" in printed
    with psycopg2.connect(postgres_warehouse) as con, con.cursor() as cur:
        execute = lambda sql: (cur.execute(sql), cur.fetchall())[1]
        cur.execute("SELECT run_id, api_calls, boxes_gone, layout_version FROM crm.load_history ORDER BY started_at")
        runs = cur.fetchall()
        assert [r[:3] for r in runs[:-1]] == old_runs and [r[3] for r in runs] == [CURRENT, NEXT]
        assert old_stays <= set(execute("SELECT stay_key, entered_at FROM crm.box_stage_history"))
        assert old_events <= set(execute("SELECT event_key, event_name FROM crm.events"))
        snippet_columns = {r[0] for r in execute("SELECT column_name FROM information_schema.columns "
                                                 "WHERE table_schema = 'crm' AND table_name = 'snippets'")}
        assert "snippet_body" in snippet_columns and "snippet_text" not in snippet_columns
        assert execute("SELECT note_key FROM crm.layout2_notes") == [("n1",)]
        assert {r[0] for r in execute("SELECT schema_name FROM information_schema.schemata")} & {"crm_previous"} == set()


@pytest.mark.postgres
def test_a_newer_postgres_copy_stops_the_run_untouched(postgres_warehouse: str) -> None:
    import psycopg2

    from pipelines.job import run_full_load
    from streak_warehouse.upgrade import LayoutTooNewError

    newer = layout_version.LAYOUT_VERSION + 1
    with psycopg2.connect(postgres_warehouse) as con, con.cursor() as cur:
        cur.execute(f"CREATE SCHEMA crm; CREATE TABLE crm.load_history (run_id TEXT PRIMARY KEY, outcome TEXT, "
                    f"finished_at TIMESTAMPTZ, layout_version BIGINT); "
                    f"INSERT INTO crm.load_history VALUES ('r1', 'ok', now(), {newer})")

    def snapshot() -> list[Any]:
        with psycopg2.connect(postgres_warehouse) as con, con.cursor() as cur:
            cur.execute("SELECT table_schema, table_name FROM information_schema.tables "
                        "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2")
            tables = cur.fetchall()
            cur.execute("SELECT * FROM crm.load_history")
            return [tables, cur.fetchall()]

    before = snapshot()
    with pytest.raises(LayoutTooNewError, match=f"written by warehouse layout {newer}"):
        run_full_load({"api_key": "unused", "base_url": "http://127.0.0.1:9/api/"}, progress=None)
    assert snapshot() == before


# --- the rules, without a load --------------------------------------------------------------------


def test_column_sources_follow_renames_and_drops_in_order() -> None:
    declared = (
        Migration(2, "t", renamed=(("a", "b"),)),
        Migration(2, "other", renamed=(("x", "y"),)),
        Migration(3, "t", dropped=("c",)),
        Migration(4, "t", renamed=(("b", "d"),)),
    )
    assert migrations.column_sources("t", ["a", "c", "x"], 1, 4, declared) == {"d": ("a",), "x": ("x",)}
    assert migrations.column_sources("t", ["b", "c"], 3, 4, declared) == {"d": ("b",), "c": ("c",)}
    # a name dropped by layout 2 and reused by layout 3: layout 1's values stay behind
    reuse = (Migration(2, "t", dropped=("a",)),)
    assert migrations.column_sources("t", ["a"], 1, 3, reuse) == {}
    assert migrations.column_sources("t", ["a"], 2, 3, reuse) == {"a": ("a",)}
    # the new name written meanwhile (by a newer events loader) wins, the old one fills its NULLs
    assert migrations.column_sources("t", ["a", "b"], 1, 2, declared[:2]) == {"b": ("b", "a")}
    # nothing pending: the table as it is
    assert migrations.column_sources("t", ["a"], 4, 4, declared) == {"a": ("a",)}


def test_migrations_must_be_ordered_and_released() -> None:
    with pytest.raises(MigrationDeclarationError, match="oldest layout first"):
        migrations.check([Migration(3, "t"), Migration(2, "t")], 3)
    with pytest.raises(MigrationDeclarationError, match="bump LAYOUT_VERSION"):
        migrations.check([Migration(2, "t")], 1)
    migrations.check(kept_tables.MIGRATIONS, layout_version.LAYOUT_VERSION)  # the declared list is valid


def test_written_layout_version_reads_the_newest_ok_run() -> None:
    with duckdb.connect() as con:
        execute = lambda sql: con.execute(sql).fetchall()
        con.execute("CREATE SCHEMA crm")
        assert written_layout_version(execute, "crm") is None  # no copy
        con.execute("CREATE TABLE crm._dlt_version (version BIGINT)")
        assert written_layout_version(execute, "crm") == 1  # a copy from before load_history
        con.execute("CREATE TABLE crm.load_history (run_id VARCHAR, outcome VARCHAR, finished_at TIMESTAMPTZ)")
        con.execute("INSERT INTO crm.load_history VALUES ('a', 'ok', '2026-01-01')")
        assert written_layout_version(execute, "crm") == 1  # before the number was recorded
        con.execute("ALTER TABLE crm.load_history ADD COLUMN layout_version BIGINT")
        con.execute("INSERT INTO crm.load_history VALUES ('b', 'ok', '2026-01-02', 3), ('c', 'failed', '2026-01-04', 4)")
        assert written_layout_version(execute, "crm") == 3  # failed runs wrote no copy
        con.execute("INSERT INTO crm.load_history VALUES ('d', 'ok', '2026-01-03', 2)")
        assert written_layout_version(execute, "crm") == 2  # the newest, not the largest


def test_stage_history_is_read_through_the_migrations(monkeypatch: pytest.MonkeyPatch) -> None:
    """The previous stays the next history is computed from come through a rename too (their table
    is rewritten whole each run, so a value read under a missing name would be lost)."""
    from streak_warehouse import history_tables

    old = history_tables.BOX_STAGE_HISTORY
    monkeypatch.setattr(layout_version, "LAYOUT_VERSION", NEXT)
    monkeypatch.setattr(kept_tables, "MIGRATIONS", (Migration(NEXT, old.name, renamed=(("known_from", "evidence"),)),))
    renamed = tuple(("evidence" if name == "known_from" else name, kind) for name, kind in old.columns)
    monkeypatch.setattr(history_tables, "BOX_STAGE_HISTORY", PersistentTable(old.name, renamed, old.primary_key, whole=True))
    with duckdb.connect() as con:
        execute = lambda sql: con.execute(sql).fetchall()
        con.execute("CREATE SCHEMA crm")
        con.execute("CREATE TABLE crm.boxes (box_key VARCHAR, last_stage_change_timestamp TIMESTAMPTZ)")
        con.execute("CREATE TABLE crm.load_history (run_id VARCHAR, outcome VARCHAR, finished_at TIMESTAMPTZ)")
        con.execute("INSERT INTO crm.load_history VALUES ('a', 'ok', '2026-01-01')")
        con.execute(persistent.create_sql(old, "crm"))
        con.execute("INSERT INTO crm.box_stage_history (stay_key, box_key, known_from) VALUES ('s1', 'b1', 'newsfeed')")
        previous = history_tables.read_previous(execute, "crm")
    assert [(s["stay_key"], s["evidence"]) for s in previous.stays] == [("s1", "newsfeed")]
    assert all("known_from" not in s for s in previous.stays)


def test_a_working_dir_built_by_another_layout_is_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Machine A's working dir (layout 1) against a copy machine B already upgraded: the copy needs no
    migration, but A's dlt schema would bring the old columns back."""
    import dlt

    from streak_warehouse.upgrade import prepare_upgrade

    shutil.copytree(FIXTURE / "pipelines", tmp_path / "pipelines")
    pipeline = dlt.pipeline(pipeline_name="streak", pipelines_dir=str(tmp_path / "pipelines"), destination="duckdb")
    monkeypatch.setattr(layout_version, "LAYOUT_VERSION", 1)  # the release that wrote the fixture
    current = prepare_upgrade(pipeline, written=1, location="x")
    assert (current.working_dir, current.rebuilds, pipeline.refresh) == (1, False, None)  # layout 1 is its code's
    monkeypatch.setattr(layout_version, "LAYOUT_VERSION", NEXT)
    upgrade = prepare_upgrade(pipeline, written=NEXT, location="x")
    assert (upgrade.migrate_from, upgrade.rebuilds, pipeline.refresh) == (None, True, "drop_sources")
    assert upgrade.message() == (f"upgrade: dlt's working dir was built by warehouse layout 1, this is layout {NEXT}: "
                                 "rebuilding the copy from a clean dlt schema")
    upgrade.finish()
    again = dlt.pipeline(pipeline_name="streak", pipelines_dir=str(tmp_path / "pipelines"), destination="duckdb")
    assert not prepare_upgrade(again, written=NEXT, location="x").rebuilds


class _DuckDBClient:
    """The two things ``record_in_place`` asks of a dlt sql client, over one DuckDB connection."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def execute_sql(self, sql: str) -> list[tuple[Any, ...]]:
        return self.con.execute(sql).fetchall()

    def begin_transaction(self) -> Any:
        import contextlib

        @contextlib.contextmanager
        def transaction() -> Iterator[None]:
            self.con.execute("BEGIN")
            try:
                yield
            except BaseException:
                self.con.execute("ROLLBACK")
                raise
            self.con.execute("COMMIT")

        return transaction()


def test_in_place_destinations_migrate_their_tables_in_one_transaction(monkeypatch: pytest.MonkeyPatch) -> None:
    """Destinations loaded in place (no swap) rebuild each kept table where it is: renamed column
    moved, a retyped one cast, rows kept, the new run's row appended, nothing left aside."""
    from streak_warehouse import history

    old = kept_tables.LOAD_HISTORY
    with duckdb.connect() as con:
        con.execute("CREATE SCHEMA crm")
        con.execute(persistent.create_sql(old, "crm").replace('"api_calls" BIGINT', '"api_calls" VARCHAR'))
        con.execute("INSERT INTO crm.load_history (run_id, outcome, api_calls, boxes_skipped) VALUES ('r1', 'ok', '36', 2)")
        simulate_layout2(monkeypatch)
        row = history.history_row(run_id="r2", started_at=datetime(2026, 1, 2, tzinfo=UTC), outcome="ok", destination="d",
                          boxes_skipped=5)
        persistent.record_in_place(_DuckDBClient(con), "crm", {"load_history": [row]}, migrate_from=1)
        rows = con.execute(f"SELECT run_id, api_calls, {RENAMED[1]}, layout_version FROM crm.load_history ORDER BY run_id").fetchall()
        tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'crm'").fetchall()}
    assert rows == [("r1", 36, 2, None), ("r2", 0, 5, NEXT)]
    assert tables == {t.name for t in kept_tables.KEPT_TABLES}


def test_side_records_left_by_the_old_release_follow_the_renames(dlt_isolated: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run of the old release that failed left its row in a side record; the first run of the new
    layout stores it under the new column names."""
    from streak_warehouse import history

    old = history.history_row(run_id="f1", started_at=datetime(2026, 1, 1, tzinfo=UTC), outcome="failed",
                              destination="d", error="boom", boxes_skipped=3)
    del old["layout_version"]  # the old release did not record it
    history.leave_side_record("somewhere", old)
    simulate_layout2(monkeypatch)
    [row] = history.side_records("somewhere")
    assert (row["run_id"], row[RENAMED[1]], RENAMED[0] in row) == ("f1", 3, False)
    history.forget_side_records("somewhere", {"f1"})
    assert history.side_records("somewhere") == []
