"""Accounts the dashboard tests read, derived from the demo load by plain SQL on a copy.

* :func:`as_own_account`: the demo load as a user's own account would leave it (no account defaults).
* :func:`add_load_history`: a ``load_history`` with ok and failed runs (contract shape).
* :func:`one_box_account`, :func:`empty_account`, :func:`malformed_account`: issue 12 #10.
* :func:`hostile_account`: names that would be Markdown/HTML/LaTeX, pointing at a local port.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb

DATASET = "crm"


def copy_db(source: Path, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return target


def _relations(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    rows = con.execute(
        "SELECT table_name, table_type FROM information_schema.tables WHERE table_schema = ?", [DATASET]
    ).fetchall()
    return {str(name): str(kind) for name, kind in rows}


def as_own_account(path: Path) -> Path:
    """The copy as a load of a user's own account leaves it: without the settings the demo account
    comes with (``account_defaults``: its closed stages), the only difference a real account makes."""
    from streak_warehouse.account_defaults import VIEW

    con = duckdb.connect(str(path))
    try:
        con.execute(f"DROP VIEW IF EXISTS {DATASET}.{VIEW}")
    finally:
        con.close()
    return path


def add_load_history(path: Path, ok_runs: int = 3, failed_runs: int = 1) -> None:
    """A ``load_history`` (contract shape) with ``ok_runs`` successful and ``failed_runs`` failed runs."""
    con = duckdb.connect(str(path))
    try:
        con.execute("DROP TABLE IF EXISTS crm.load_history")
        con.execute(
            """
            CREATE TABLE crm.load_history (
              run_id VARCHAR PRIMARY KEY, started_at TIMESTAMPTZ, finished_at TIMESTAMPTZ,
              outcome VARCHAR, error VARCHAR, mode VARCHAR, destination VARCHAR, rows_per_table VARCHAR,
              rows_total BIGINT, api_calls BIGINT, boxes_read BIGINT, boxes_skipped BIGINT, duration_s DOUBLE)
            """
        )
        for i in range(ok_runs + failed_runs):
            outcome = "ok" if i < ok_runs else "failed"
            con.execute(
                "INSERT INTO crm.load_history VALUES (?, TIMESTAMPTZ '2026-01-01 00:00:00+00' + ? * INTERVAL 1 DAY, "
                "TIMESTAMPTZ '2026-01-01 00:05:00+00' + ? * INTERVAL 1 DAY, ?, ?, 'full', 'duckdb', '{}', 0, 0, 0, 0, 300)",
                [f"run{i}", i, i, outcome, None if outcome == "ok" else "boom"],
            )
    finally:
        con.close()


def _box_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Tables (not views) of the dataset that carry ``box_key``, ``boxes`` last."""
    rows = con.execute(
        "SELECT DISTINCT c.table_name FROM information_schema.columns c JOIN information_schema.tables t "
        "USING (table_schema, table_name) WHERE c.table_schema = ? AND c.column_name = 'box_key' "
        "AND t.table_type = 'BASE TABLE'",
        [DATASET],
    ).fetchall()
    names = sorted(str(r[0]) for r in rows if r[0] != "boxes")
    return names + ["boxes"]


def one_box_account(demo: Path, target: Path) -> Path:
    """The demo account cut down to its first box (and that box's children, stays and events)."""
    copy_db(demo, target)
    add_history(target)
    add_events(target)
    con = duckdb.connect(str(target))
    try:
        keep = con.execute("SELECT MIN(box_key) FROM crm.boxes").fetchone()[0]
        for table in _box_tables(con):
            con.execute(f'DELETE FROM crm."{table}" WHERE box_key IS DISTINCT FROM ?', [keep])
    finally:
        con.close()
    return target


def empty_account(demo: Path, target: Path) -> Path:
    """Every table of the demo account kept, every row deleted (an account with nothing in it)."""
    copy_db(demo, target)
    add_history(target)
    add_events(target)
    con = duckdb.connect(str(target))
    try:
        for name, kind in _relations(con).items():
            if kind == "BASE TABLE" and not name.startswith("_dlt"):
                con.execute(f'DELETE FROM crm."{name}"')
    finally:
        con.close()
    return target


NO_STAGES_PIPELINE = "pipeline-without-stages"


def malformed_account(demo: Path, target: Path) -> Path:
    """A box with a NULL stage key, a box in a stage that does not exist, a box with no dates, a
    task with no due date and no assignee, and a pipeline with no stages and no boxes; in the
    history a stay in an unknown stage, one with no end flags and a zero-length one; events with
    no properties, an array instead of an object, and an empty name."""
    copy_db(demo, target)
    add_history(target)
    add_events(target)
    con = duckdb.connect(str(target))
    try:
        boxes = [r[0] for r in con.execute("SELECT box_key FROM crm.boxes ORDER BY box_key LIMIT 3").fetchall()]
        con.execute("UPDATE crm.boxes SET stage_key = NULL, stage_name = NULL WHERE box_key = ?", [boxes[0]])
        con.execute("UPDATE crm.boxes SET stage_key = '99999', stage_name = NULL WHERE box_key = ?", [boxes[1]])
        con.execute(
            "UPDATE crm.boxes SET creation_timestamp = NULL, last_stage_change_timestamp = NULL WHERE box_key = ?",
            [boxes[2]],
        )
        con.execute(
            "UPDATE crm.box_tasks SET due_date = NULL, assignee_names = NULL WHERE task_key = "
            "(SELECT MIN(task_key) FROM crm.box_tasks WHERE status = 'NOT_DONE')"
        )
        con.execute(
            "INSERT INTO crm.pipelines (pipeline_key, name, _dlt_load_id, _dlt_id) "
            "SELECT ?, 'Empty pipeline', MIN(_dlt_load_id), 'x-no-stages' FROM crm.pipelines",
            [NO_STAGES_PIPELINE],
        )
        con.execute(
            "INSERT INTO crm.box_stage_history (stay_key, box_key, pipeline_key, stage_key, entered_at, left_at, "
            "time_in_stage_s, exact) SELECT 'odd-' || stay_key, box_key, pipeline_key, '99999', entered_at, left_at, "
            "time_in_stage_s, NULL FROM crm.box_stage_history WHERE box_key = ? LIMIT 2",
            [boxes[0]],
        )
        con.execute("UPDATE crm.box_stage_history SET left_at = entered_at, time_in_stage_s = 0 WHERE stay_key = "
                    "(SELECT MIN(stay_key) FROM crm.box_stage_history WHERE left_at IS NOT NULL)")
        con.execute("UPDATE crm.events SET properties = NULL WHERE event_key = 'ev-0001'")
        con.execute("UPDATE crm.events SET properties = '[1, 2]' WHERE event_key = 'ev-0002'")
        con.execute("UPDATE crm.events SET event_name = '' WHERE event_key = 'ev-0003'")
    finally:
        con.close()
    return target


def hostile_account(demo: Path, target: Path, port: int) -> Path:
    """Streak names that are Markdown, HTML and LaTeX, every URL pointing at ``127.0.0.1:port``.

    The biggest pipeline gets the image name (issue 12 #5); its stages, owners, fields and boxes
    get links, HTML, LaTeX and coloured text.
    """
    base = f"http://127.0.0.1:{port}"
    names = {
        "pipeline": f"![x]({base}/pixel.png)",
        "stage": f"$\\frac{{a}}{{b}}$ :red[Won] <b>{base}/stage</b>",
        "owner": f"[click me]({base}/owner) <img src='{base}/owner.png'> evil@example.com www.example.com",
        "field": f"**Deal** ![f]({base}/field.png)",
        "box": f"<script>fetch('{base}/box')</script> [box]({base}/box-link)",
    }
    as_own_account(copy_db(demo, target))  # someone's own account: no closed stages of its own
    add_history(target)
    add_events(target)
    con = duckdb.connect(str(target))
    try:
        con.execute("UPDATE crm.events SET event_name = ? WHERE event_name = 'Tag added'", [names["box"]])
        con.execute(
            "UPDATE crm.events SET properties = CAST(json_object(?, 12, 'tag', ?) AS JSON) WHERE event_name = 'Offer made'",
            [names["field"], names["stage"]],
        )
        pipeline = con.execute(
            "SELECT pipeline_key FROM crm.boxes GROUP BY 1 ORDER BY COUNT(*) DESC, 1 LIMIT 1"
        ).fetchone()[0]
        con.execute("UPDATE crm.pipelines SET name = ? WHERE pipeline_key = ?", [names["pipeline"], pipeline])
        stage = con.execute(
            "SELECT stage_key FROM crm.boxes WHERE pipeline_key = ? GROUP BY 1 ORDER BY COUNT(*) DESC, 1 LIMIT 1",
            [pipeline],
        ).fetchone()[0]
        con.execute("UPDATE crm.stages SET name = ? WHERE pipeline_key = ? AND stage_key = ?", [names["stage"], pipeline, stage])
        con.execute("UPDATE crm.boxes SET stage_name = ? WHERE pipeline_key = ? AND stage_key = ?", [names["stage"], pipeline, stage])
        con.execute("UPDATE crm.boxes SET owner_name = ? WHERE owner_email = (SELECT MIN(owner_email) FROM crm.boxes)", [names["owner"]])
        con.execute("UPDATE crm.boxes SET name = ? WHERE box_key = (SELECT MIN(box_key) FROM crm.boxes WHERE pipeline_key = ?)", [names["box"], pipeline])
        field = con.execute(
            "SELECT field_key FROM crm.box_field_values WHERE pipeline_key = ? AND value_number IS NOT NULL "
            "GROUP BY 1 ORDER BY COUNT(*) DESC, 1 LIMIT 1",
            [pipeline],
        ).fetchone()
        if field is not None:
            for table, column in (("box_field_values", "field_name"), ("pipeline_fields", "name"), ("wide_view_columns", "display_name")):
                if table in _relations(con):
                    con.execute(
                        f"UPDATE crm.{table} SET {column} = ? WHERE pipeline_key = ? AND field_key = ?",
                        [names["field"], pipeline, field[0]],
                    )
        if "box_task_assignees" in _relations(con):
            con.execute("UPDATE crm.box_task_assignees SET name = ? WHERE email = (SELECT MIN(email) FROM crm.box_task_assignees)", [names["owner"]])
    finally:
        con.close()
    return target


# --- Stage history and events (issues 13 and 14), built by hand so every rule has data. ---

DELETED_BOX = "box-deleted-from-streak"
"""A box with stays and events whose box is no longer in ``boxes``."""


def _history_rows(con: duckdb.DuckDBPyConnection) -> list[dict[str, object]]:
    """Deterministic paths: each box walked through its pipeline's stages up to its current one."""
    from datetime import timedelta

    stages: dict[str, list[tuple[str, str, int]]] = {}
    for pipeline, key, name, order in con.execute(
        "SELECT pipeline_key, stage_key, name, stage_order FROM crm.stages ORDER BY pipeline_key, stage_order"
    ).fetchall():
        stages.setdefault(pipeline, []).append((key, name, order))
    boxes = con.execute(
        "SELECT box_key, pipeline_key, stage_key, creation_timestamp, last_stage_change_timestamp "
        "FROM crm.boxes WHERE creation_timestamp IS NOT NULL ORDER BY box_key"
    ).fetchall()
    boxes.append((DELETED_BOX, boxes[0][1], stages[boxes[0][1]][1][0], boxes[0][3], None))
    rows: list[dict[str, object]] = []
    for n, (box, pipeline, current, created, last_change) in enumerate(boxes):
        path = stages.get(pipeline, [])
        keys = [k for k, _, _ in path]
        end = keys.index(current) if current in keys else 0
        walk = [path[i] for i in range(end + 1) if i == 0 or i == end or (n + i) % 4 != 0]
        if n % 9 == 0 and end >= 2:  # moved back once and forward again
            walk = walk[:-1] + [path[end - 1], path[end]]
        steps = [timedelta(days=1 + (n * 7 + i * 13) % 23, hours=(n + i) % 11) for i in range(len(walk))]
        room = max((last_change or created) - created, timedelta(hours=len(walk)))
        squeeze = min(1.0, room / sum(steps[:-1], timedelta(0))) if len(walk) > 1 else 1.0
        at = created
        for i, (key, name, order) in enumerate(walk):
            last = i == len(walk) - 1
            step = steps[i] * squeeze  # the path ends by the box's last stage change: nothing in the future
            left = None if last or (box == DELETED_BOX and i == 1) else at + step
            entered_exact = not (i == 0 and n % 5 == 0)
            left_exact = None if left is None else not (n % 7 == 3 and i == len(walk) - 2)
            rows.append({
                "stay_key": f"{box}-{i}", "box_key": box, "pipeline_key": pipeline, "stage_key": key,
                "stage_name": name, "stage_order": order, "entered_at": at, "left_at": left,
                "time_in_stage_s": None if left is None else (left - at).total_seconds(),
                "known_from": "newsfeed" if entered_exact else "snapshot",
                "exact": entered_exact and left_exact is not False, "entered_exact": entered_exact,
                "left_exact": left_exact, "last_seen_at": at, "box_deleted_at": None,
            })
            if left is None:
                break
            at = left
    return rows


def add_history(path: Path) -> int:
    """Replace ``crm.box_stage_history`` with hand-built paths (exact and inexact, open and ended)."""
    import pandas as pd

    con = duckdb.connect(str(path))
    try:
        history = pd.DataFrame(_history_rows(con))
        con.execute("DROP TABLE IF EXISTS crm.box_stage_history")
        con.execute(
            "CREATE TABLE crm.box_stage_history AS SELECT * REPLACE (CAST(box_deleted_at AS TIMESTAMPTZ) AS box_deleted_at) "
            "FROM history"
        )
        return len(history)
    finally:
        con.close()


EVENT_NAMES = ("Offer made", "Payment received", "Tag added", "Stage changed")


def _event_rows(con: duckdb.DuckDBPyConnection) -> list[dict[str, object]]:
    import json
    from datetime import timedelta

    boxes = con.execute("SELECT box_key, pipeline_key, creation_timestamp FROM crm.boxes ORDER BY box_key").fetchall()
    anchor = con.execute("SELECT MAX(creation_timestamp) FROM crm.boxes").fetchone()[0]
    rows: list[dict[str, object]] = []
    for n in range(480):
        name = EVENT_NAMES[(n * 5) % 7 % len(EVENT_NAMES)]
        box, pipeline = (boxes[n % len(boxes)][0], None) if n % 6 else (None, None)
        if n % 6 == 0 and n % 12 == 0:
            pipeline = boxes[0][1]  # an event with a pipeline and no box
        if n % 31 == 0:
            box = DELETED_BOX
        if name == "Offer made":
            props: dict[str, object] = {"amount": 1000 + (n * 37) % 9000, "currency": ("EUR", "USD")[n % 2]}
        elif name == "Payment received":
            props = {"amount": (n * 13) % 500 + 0.5 if n % 10 else "n/a", "method": ("card", "wire")[n % 2]}
        elif name == "Tag added":
            props = {"tag": ("hot", "cold", "vip")[n % 3]}
        else:
            props = {"from": "Lead", "to": "Qualified"}
        rows.append({
            "event_key": f"ev-{n:04d}", "event_name": name, "distinct_id": f"d-{n}" if n % 2 else None,
            "location_id": None, "contact_key": None, "box_key": box, "pipeline_key": pipeline,
            "timestamp": anchor - timedelta(hours=n * 5 + n % 7), "first_received_at": anchor,
            "last_received_at": anchor, "source": ("api", "webhook", "derived")[n % 3],
            "properties": json.dumps(props),
        })
    return rows


def add_events(path: Path) -> int:
    """Create ``crm.events`` (spool.ROW_COLUMNS shape, ``properties`` as JSON) with varied events."""
    import pandas as pd

    con = duckdb.connect(str(path))
    try:
        events = pd.DataFrame(_event_rows(con))
        con.execute("DROP TABLE IF EXISTS crm.events")
        con.execute(
            "CREATE TABLE crm.events AS SELECT event_key, event_name, distinct_id, CAST(location_id AS VARCHAR) AS location_id, "
            "CAST(contact_key AS VARCHAR) AS contact_key, box_key, "
            "pipeline_key, CAST(\"timestamp\" AS TIMESTAMPTZ) AS \"timestamp\", "
            "CAST(first_received_at AS TIMESTAMPTZ) AS first_received_at, "
            "CAST(last_received_at AS TIMESTAMPTZ) AS last_received_at, source, CAST(properties AS JSON) AS properties "
            "FROM events"
        )
        return len(events)
    finally:
        con.close()


def copy_tables_to_postgres(duckdb_path: Path, url: str, tables: tuple[str, ...]) -> None:
    """Replace ``crm.<table>`` in Postgres with the DuckDB file's rows (JSON columns as jsonb). The
    outcome views that read a replaced table go with it (``CASCADE``): they describe the load's own
    rows, not these."""
    import psycopg2
    from psycopg2.extras import execute_values

    source = duckdb.connect(str(duckdb_path), read_only=True)
    pg = psycopg2.connect(url)
    try:
        with pg, pg.cursor() as cur:
            for table in tables:
                described = source.execute(f"DESCRIBE crm.{table}").fetchall()
                types = {
                    "VARCHAR": "TEXT", "BIGINT": "BIGINT", "DOUBLE": "DOUBLE PRECISION", "BOOLEAN": "BOOLEAN",
                    "TIMESTAMP WITH TIME ZONE": "TIMESTAMPTZ", "JSON": "JSONB",
                }
                columns = [(str(name), types[str(kind)]) for name, kind, *_ in described]
                cur.execute(f"DROP TABLE IF EXISTS crm.{table} CASCADE")
                cur.execute(f"CREATE TABLE crm.{table} (" + ", ".join(f'"{n}" {t}' for n, t in columns) + ")")
                select = ", ".join(f'CAST("{n}" AS VARCHAR)' if t == "JSONB" else f'"{n}"' for n, t in columns)
                rows = source.execute(f"SELECT {select} FROM crm.{table}").fetchall()
                names = ", ".join(f'"{n}"' for n, _ in columns)
                execute_values(cur, f"INSERT INTO crm.{table} ({names}) VALUES %s", rows)
    finally:
        pg.close()
        source.close()
