"""Events derived from each load (issue 14 item 3): the pure rule (``streak_warehouse/derived_events.py``)
and the set-based insert of only new events (``streak_warehouse/events_table.py``), without HTTP.

The identity checks run one Streak object both ways: as a webhook delivery
(``webhook_events.event_from_object``) and as the row the loader's own transform puts in the copy
(``streak_source/transform.py``, columns named as dlt names them): the two must be one event.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import pytest

from streak_eventlog.spool import ROW_COLUMNS
from streak_eventlog.webhook_events import event_from_object
from streak_source import transform
from streak_source.clashes import column_name
from streak_warehouse import events_table
from streak_warehouse.derived_events import KINDS, STAY_COLUMNS, derive_events, stage_change_events
from streak_warehouse.stage_history import StageChangeEvent

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
RUN_AT = datetime(2026, 2, 1, tzinfo=UTC)
BOX = {"key": "box-1", "boxKey": "box-1", "pipelineKey": "p-1", "name": "Acme", "stageKey": "s-2",
       "creationTimestamp": T0, "lastUpdatedTimestamp": T0 + 9_000, "lastSavedTimestamp": T0 + 9_000,
       "lastStageChangeTimestamp": T0 + 5_000}
TASK = {"key": "task-1", "boxKey": "box-1", "pipelineKey": "p-1", "text": "Call Ana", "status": "DONE",
        "creationDate": T0 + 1_000, "lastStatusChangeDate": T0 + 7_000, "lastSavedTimestamp": T0 + 8_000,
        "dueDate": T0 + 86_400_000}
COMMENT = {"key": "c-1", "commentKey": "c-1", "boxKey": "box-1", "pipelineKey": "p-1", "message": "Sent it",
           "timestamp": T0 + 2_000, "lastSavedTimestamp": T0 + 6_000}
MEETING = {"key": "m-1", "boxKey": "box-1", "pipelineKey": "p-1", "meetingType": "CALL_LOG",
           "creationDate": T0 + 3_000, "startTimestamp": T0 - 60_000, "lastSavedTimestamp": T0 + 4_000}
THREAD = {"key": "th-1", "boxKey": "box-1", "pipelineKey": "p-1", "subject": "Quote",
          "creationTimestamp": T0 + 4_000, "lastUpdatedTimestamp": T0 + 9_000}
BOX_ROW = {"box_key": "box-1", "pipelineKey": "p-1"}


def copy_row(row: dict[str, Any]) -> dict[str, Any]:
    """A transformed object as the copy holds it: columns as dlt names them."""
    return {column_name(name): value for name, value in row.items()}


def the_copy() -> dict[str, list[dict[str, Any]]]:
    return {
        "boxes": [copy_row(transform.box_row(dict(BOX), {"s-2": "Won"}))],
        "box_tasks": [copy_row(transform.task_row(dict(TASK), BOX_ROW))],
        "box_comments": [copy_row(transform.comment_row(dict(COMMENT), BOX_ROW))],
        "box_meetings": [copy_row(transform.meeting_row(dict(MEETING), BOX_ROW))],
        "box_threads": [copy_row(transform.thread_row(dict(THREAD), BOX_ROW))],
    }


def stay(box: str, stage: str, entered: int, left: int | None, *, pipeline: str = "p-1", left_exact: bool = True,
         known_from: str = "newsfeed") -> dict[str, Any]:
    ms = lambda v: None if v is None else datetime.fromtimestamp(v / 1000, tz=UTC)
    return {"box_key": box, "pipeline_key": pipeline, "stage_key": stage, "entered_at": ms(entered),
            "left_at": ms(left), "known_from": known_from, "entered_exact": True,
            "left_exact": None if left is None else left_exact}


def by_name(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        out.setdefault(row["event_name"], []).append(row)
    return out


@pytest.mark.parametrize(("event", "obj"), [
    ("BOX_CREATE", BOX), ("TASK_CREATE", TASK), ("TASK_COMPLETE", TASK), ("COMMENT_CREATE", COMMENT),
    ("MEETING_CREATE", MEETING),
])
def test_a_change_seen_by_webhook_and_in_the_copy_has_one_identity(event: str, obj: dict[str, Any]) -> None:
    hook = event_from_object(event, dict(obj))
    derived = by_name(derive_events(the_copy(), [], RUN_AT))[event]
    assert len(derived) == 1
    row = derived[0]
    assert row["event_key"] == row["distinct_id"] == hook.distinct_id
    assert round(row["timestamp"].timestamp() * 1000) == hook.timestamp_ms
    assert (row["box_key"], row["pipeline_key"]) == (hook.box_key, hook.pipeline_key) == ("box-1", "p-1")
    assert row["source"] == "derived" and set(row) == set(ROW_COLUMNS)
    # the webhook's property names, where the copy has the value
    assert row["properties"]["object_key"] == hook.properties["object_key"]
    shared = set(row["properties"]) & set(hook.properties)
    assert {k: row["properties"][k] for k in shared} == {k: hook.properties[k] for k in shared}


def test_the_object_time_is_the_one_later_edits_do_not_move() -> None:
    """Creation (not the last update) times a *_CREATE, the status change a TASK_COMPLETE."""
    events = {r["event_name"]: r["event_key"] for r in derive_events(the_copy(), [], RUN_AT)}
    assert events == {
        "BOX_CREATE": f"streak:BOX_CREATE:box-1:{T0}",
        "TASK_CREATE": f"streak:TASK_CREATE:task-1:{T0 + 1_000}",
        "TASK_COMPLETE": f"streak:TASK_COMPLETE:task-1:{T0 + 7_000}",
        "COMMENT_CREATE": f"streak:COMMENT_CREATE:c-1:{T0 + 2_000}",
        "MEETING_CREATE": f"streak:MEETING_CREATE:m-1:{T0 + 3_000}",
        "THREAD_CREATE": f"streak:THREAD_CREATE:th-1:{T0 + 4_000}",
    }
    edited = the_copy()
    edited["box_tasks"][0]["last_saved_timestamp"] = datetime(2026, 3, 1, tzinfo=UTC)
    edited["boxes"][0]["last_updated_timestamp"] = datetime(2026, 3, 1, tzinfo=UTC)
    later = RUN_AT + timedelta(days=1)
    assert {r["event_key"] for r in derive_events(edited, [], later)} == set(events.values())


def test_only_done_tasks_complete_and_rows_without_key_or_time_derive_nothing() -> None:
    copy = the_copy()
    open_task = dict(copy["box_tasks"][0], task_key="task-2", status="NOT_DONE")
    copy["box_tasks"] += [open_task, dict(open_task, task_key=None), dict(open_task, task_key="task-3", creation_date=None)]
    copy["box_meetings"].append(dict(copy["box_meetings"][0], meeting_key=""))
    names = by_name(derive_events(copy, [], RUN_AT))
    assert [r["properties"]["object_key"] for r in names["TASK_COMPLETE"]] == ["task-1"]
    assert sorted(r["properties"]["object_key"] for r in names["TASK_CREATE"]) == ["task-1", "task-2"]
    assert len(names["MEETING_CREATE"]) == 1
    assert derive_events({}, [], RUN_AT) == []


def test_ids_already_stored_are_not_derived_again() -> None:
    every = derive_events(the_copy(), [], RUN_AT)
    known = {every[0]["event_key"], every[-1]["event_key"], "api:unrelated"}
    rest = derive_events(the_copy(), [], RUN_AT, known)
    assert [r["event_key"] for r in rest] == [r["event_key"] for r in every[1:-1]]
    stays = [stay("box-1", "s-1", T0, T0 + 5_000), stay("box-1", "s-2", T0 + 5_000, None)]
    copy = {"box_stage_history": stays}
    [move] = derive_events(copy, [], RUN_AT)
    assert derive_events(copy, [], RUN_AT, {move["event_key"]}) == []


def test_properties_follow_the_events_contract() -> None:
    copy = the_copy()
    copy["box_comments"][0]["message"] = "x" * 2_000
    copy["box_meetings"][0]["meeting_type"] = None
    copy["boxes"][0]["name"] = ""
    names = by_name(derive_events(copy, [], RUN_AT))
    assert names["COMMENT_CREATE"][0]["properties"]["message"] == "x" * 500
    assert names["MEETING_CREATE"][0]["properties"] == {"object_key": "m-1"}
    assert names["BOX_CREATE"][0]["properties"] == {"object_key": "box-1"}
    assert names["TASK_COMPLETE"][0]["properties"] == {"object_key": "task-1", "text": "Call Ana", "status": "DONE"}
    for row in derive_events(copy, [], RUN_AT):
        assert all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in row["properties"].values())


def test_a_stage_change_is_a_stay_that_follows_an_earlier_stay_of_the_box() -> None:
    stays = [
        stay("box-1", "s-1", T0, T0 + 5_000),                     # created here: no move
        stay("box-1", "s-2", T0 + 5_000, T0 + 9_000, left_exact=False),
        stay("box-1", "s-3", T0 + 20_000, None),                  # after a gap: from unknown
        stay("box-2", "s-4", T0 + 1_000, None, known_from="snapshot"),  # its only stay: no move
        stay("box-1", "q-1", T0 + 30_000, None, pipeline="p-2"),  # another pipeline: no stage change
    ]
    rows = stage_change_events(stays, [], {"box-1": "Acme"}, RUN_AT)
    assert [(r["event_key"], r["properties"].get("fromStageKey")) for r in rows] == [
        (f"streak:BOX_CHANGE_STAGE:box-1:{T0 + 5_000}", "s-1"),
        (f"streak:BOX_CHANGE_STAGE:box-1:{T0 + 20_000}", None),
    ]
    assert rows[0]["properties"] == {"object_key": "box-1", "stageKey": "s-2", "fromStageKey": "s-1", "name": "Acme"}
    assert rows[0]["box_key"] == "box-1" and rows[0]["pipeline_key"] == "p-1"
    # the same through derive_events, with the stay rows as the copy holds them (STAY_COLUMNS)
    copy = {"box_stage_history": [{k: s[k] for k in STAY_COLUMNS} for s in stays]}
    assert [r["event_key"] for r in derive_events(copy, [], RUN_AT)] == [r["event_key"] for r in rows]


def test_a_stage_change_takes_the_time_of_the_webhook_that_saw_the_same_move() -> None:
    """Newsfeed and webhook clocks may differ a little: within the stage history's tolerance the
    stay IS the webhook's move, so it takes the webhook's identity (one event, not two)."""
    stays = [stay("box-1", "s-1", T0, T0 + 5_000), stay("box-1", "s-2", T0 + 5_000, None)]
    hook = event_from_object("BOX_CHANGE_STAGE", dict(BOX, stageKey="s-2", lastStageChangeTimestamp=T0 + 5_700))
    near = StageChangeEvent("box-1", "s-2", T0 + 5_700, "p-1")
    [row] = stage_change_events(stays, [near], {}, RUN_AT)
    assert row["event_key"] == hook.distinct_id
    assert round(row["timestamp"].timestamp() * 1000) == T0 + 5_700
    for other in (StageChangeEvent("box-1", "s-2", T0 + 8_000, "p-1"),   # too far apart
                  StageChangeEvent("box-1", "s-9", T0 + 5_000, "p-1"),   # another stage
                  StageChangeEvent("box-9", "s-2", T0 + 5_000, "p-1")):  # another box
        [row] = stage_change_events(stays, [other], {}, RUN_AT)
        assert row["event_key"] == f"streak:BOX_CHANGE_STAGE:box-1:{T0 + 5_000}"


def test_every_kind_reads_the_column_dlt_makes_of_the_webhook_time_field() -> None:
    from streak_eventlog.webhook_events import IDENTITY_TIME_FIELD

    for kind in KINDS:
        if kind.event in IDENTITY_TIME_FIELD:
            assert kind.time_field == IDENTITY_TIME_FIELD[kind.event]
        assert kind.time_column == column_name(kind.time_field)
        assert kind.time_column in copy_columns(kind.table), kind


def copy_columns(table: str) -> set[str]:
    return set(the_copy()[table][0])


# --- into crm.events: only new event keys, never touching a stored event -----------------------------


class DuckClient:
    """What a dlt sql client offers the events table code, over a DuckDB connection."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.native_connection = con

    def execute_sql(self, sql: str) -> list[Any]:
        return self.native_connection.execute(sql).fetchall()


def stored(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, Any]]:
    cursor = con.execute(f"SELECT {', '.join(ROW_COLUMNS)} FROM crm.events")
    return {r[0]: dict(zip(ROW_COLUMNS, r, strict=True)) for r in cursor.fetchall()}


def webhook_row(key: str, received: datetime, **props: Any) -> dict[str, Any]:
    event = key.split(":")[1]
    return {"event_key": key, "event_name": event, "distinct_id": key, "box_key": "box-1", "pipeline_key": "p-1",
            "timestamp": datetime.fromtimestamp(int(key.rsplit(":", 1)[1]) / 1000, tz=UTC),
            "first_received_at": received, "last_received_at": received, "source": "webhook",
            "properties": {"object_key": key.split(":")[2], **props}}


def test_only_new_event_keys_are_added_and_a_stored_event_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    from streak_warehouse import persistent

    bulk_loads: list[int] = []
    arrow_insert = persistent._bulk_insert_duckdb

    def spy(con: Any, table: Any, schema: str, rows: Any) -> None:
        bulk_loads.append(len(rows))
        arrow_insert(con, table, schema, rows)

    monkeypatch.setattr(persistent, "_bulk_insert_duckdb", spy)  # the set-based path (not INSERT per row)
    con = duckdb.connect()
    client = DuckClient(con)
    derived = derive_events(the_copy(), [], RUN_AT)
    task_key = f"streak:TASK_CREATE:task-1:{T0 + 1_000}"
    first = RUN_AT - timedelta(days=3)
    events_table.merge_rows(client.execute_sql, "crm", [webhook_row(task_key, first, text="Call Ana", status="NOT_DONE")])
    assert events_table.add_new_events(client, "crm", derived) == len(derived) - 1
    assert bulk_loads == [len(derived)]
    rows = stored(con)
    assert set(rows) == {r["event_key"] for r in derived}
    task = rows[task_key]
    assert task["source"] == "webhook" and json.loads(task["properties"])["status"] == "NOT_DONE"
    assert task["first_received_at"] == first
    # a reload derives the same ids: nothing added, nothing changed
    again = derive_events(the_copy(), [], RUN_AT + timedelta(days=1))
    assert events_table.add_new_events(client, "crm", again) == 0
    assert stored(con) == rows
    assert not con.execute("SELECT 1 FROM information_schema.tables WHERE table_name = ?",
                           [events_table.NEW_EVENTS.name]).fetchall()


def test_a_webhook_arriving_after_the_derived_event_takes_it_over() -> None:
    con = duckdb.connect()
    client = DuckClient(con)
    derived = derive_events(the_copy(), [], RUN_AT)
    events_table.add_new_events(client, "crm", derived)
    key = f"streak:COMMENT_CREATE:c-1:{T0 + 2_000}"
    before = stored(con)[key]
    late = RUN_AT + timedelta(hours=5)
    events_table.merge_rows(client.execute_sql, "crm", [webhook_row(key, late, message="Sent it!")])
    after = stored(con)
    assert len(after) == len(derived)
    row = after[key]
    assert row["source"] == "webhook" and json.loads(row["properties"])["message"] == "Sent it!"
    assert row["timestamp"] == before["timestamp"] and row["first_received_at"] == before["first_received_at"] == RUN_AT
    assert row["last_received_at"] == late
    # and a custom (api) event is never turned into anything else
    api = dict(webhook_row(key, late), event_key="api:x", distinct_id="x", source="api")
    events_table.merge_rows(client.execute_sql, "crm", [api])
    events_table.merge_rows(client.execute_sql, "crm", [dict(api, source="webhook")])
    assert stored(con)["api:x"]["source"] == "api"


def test_read_copy_skips_what_the_copy_lacks() -> None:
    """An account without meetings (no table) or an old copy without a column still derives the rest."""
    con = duckdb.connect()
    con.execute("CREATE SCHEMA crm")
    con.execute("CREATE TABLE crm.boxes (box_key VARCHAR, pipeline_key VARCHAR, name VARCHAR, "
                "creation_timestamp TIMESTAMPTZ)")
    con.execute("INSERT INTO crm.boxes VALUES ('box-1', 'p-1', 'Acme', TIMESTAMPTZ '2026-01-01 00:00:00.123+00')")
    con.execute("CREATE TABLE crm.box_tasks (task_key VARCHAR, box_key VARCHAR, creation_date TIMESTAMPTZ)")
    con.execute("INSERT INTO crm.box_tasks VALUES ('task-1', 'box-1', TIMESTAMPTZ '2026-01-02 00:00:00+00')")
    client = DuckClient(con)
    result = events_table.add_derived_events(client, "crm", RUN_AT)
    assert (result.new, result.added) == (2, 2)
    assert set(stored(con)) == {f"streak:BOX_CREATE:box-1:{T0 + 123}", f"streak:TASK_CREATE:task-1:{T0 + 86_400_000}"}


def test_add_new_events_through_postgres_copy(fresh_postgres_url: str) -> None:
    import psycopg2

    class PgClient:
        def __init__(self, con: Any) -> None:
            self.native_connection = con

        def execute_sql(self, sql: str) -> list[Any]:
            with self.native_connection.cursor() as cursor:
                cursor.execute(sql)
                return cursor.fetchall() if cursor.description else []

    con = psycopg2.connect(fresh_postgres_url)
    try:
        client = PgClient(con)
        derived = derive_events(the_copy(), [], RUN_AT)
        derived[0]["properties"]["name"] = "Tab\there, new\nline \\ and 'quote'"
        assert events_table.add_new_events(client, "crm", derived) == len(derived)
        assert events_table.add_new_events(client, "crm", derived) == 0
        con.commit()
        rows = dict(client.execute_sql("SELECT event_key, properties FROM crm.events"))
        assert set(rows) == {r["event_key"] for r in derived}
        assert json.loads(rows[derived[0]["event_key"]])["name"] == "Tab\there, new\nline \\ and 'quote'"
        # the copy read back from Postgres (times as epoch ms there too): nothing new to add
        client.execute_sql("CREATE TABLE crm.box_comments (comment_key TEXT, box_key TEXT, pipeline_key TEXT, "
                           "message TEXT, timestamp TIMESTAMPTZ)")
        client.execute_sql("INSERT INTO crm.box_comments VALUES ('c-1', 'box-1', 'p-1', 'Sent it', "
                           "TIMESTAMPTZ '2026-01-01 00:00:02+00'), ('c-2', 'box-1', 'p-1', NULL, "
                           "TIMESTAMPTZ '2026-01-01 00:00:02.999+00')")
        result = events_table.add_derived_events(client, "crm", RUN_AT)
        assert (result.new, result.added) == (1, 1)
        assert f"streak:COMMENT_CREATE:c-2:{T0 + 2_999}" in dict(client.execute_sql("SELECT event_key, 1 FROM crm.events"))
    finally:
        con.close()


def test_the_job_derives_only_where_the_sql_is_known_to_work() -> None:
    """DuckDB/Postgres: spool events merged, then derived ones added; another destination's client
    (whose SQL these statements were not written for) gets none and the run says so."""
    import io

    from pipelines.events_load import merge_with_client

    con = duckdb.connect()
    con.execute("CREATE SCHEMA crm")
    con.execute("CREATE TABLE crm.boxes (box_key VARCHAR, pipeline_key VARCHAR, name VARCHAR, creation_timestamp TIMESTAMPTZ)")
    con.execute("INSERT INTO crm.boxes VALUES ('box-1', 'p-1', 'Acme', TIMESTAMPTZ '2026-01-01 00:00:00+00')")
    said = io.StringIO()
    merge_with_client(DuckClient(con), "crm", None, said)
    assert set(stored(con)) == {f"streak:BOX_CREATE:box-1:{T0}"}
    assert said.getvalue().startswith("events: 1 new events derived from the copy (")

    class OtherClient(DuckClient):
        native_connection: Any = object()

        def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
            self.con = con

        def execute_sql(self, sql: str) -> list[Any]:
            return self.con.execute(sql).fetchall()

    con.execute("DELETE FROM crm.events")
    said = io.StringIO()
    merge_with_client(OtherClient(con), "crm", None, said)
    assert stored(con) == {} and "no events derived" in said.getvalue()
