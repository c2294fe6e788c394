"""Issue 25, "Done means" (first bullet): with ``[privacy] preset = "strict"``, a full load, a
``--refresh changed``, a backfill, webhook deliveries and an events load, on DuckDB, Postgres and
parquet files: no marker the sandbox's canary planted is in any file produced (the DuckDB file and
WAL, the dlt working dir with its load packages and trace, the refresh basis, the spool, the logs,
the summary JSON) nor in a ``pg_dump`` of the Postgres database; and hashed addresses still join
contacts to threads.

One sequence per destination on a 15-box account: the main job as a subprocess (its log file and
``--summary-json``) for the first load, then in this process a ``changed`` refresh after a
simulated day (whose webhooks reach the events receiver, a real subprocess with the same
``[privacy]``), a backfill and ``streak_events.py load``. Custom events with planted properties go
to the receiver too. benchmarks/marker_search.py searches compressed files as well.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pytest
import requests
from events_support import API_KEY, TOKEN, ReceiverProcess
from benchmarks.marker_search import found_in, pg_dump

from pipelines.events_cli import main as events_main
from streak_source.privacy import policy_from
from streak_source.sandbox import Sandbox
from tests.destinations_support import filesystem_env, postgres_env, source_env
from tests.loadtools import run_main_job

CANARY = "zqxcanary"
SALT = "e2e-salt-0123456789abcdef"
PRIVACY = {"PRIVACY__PRESET": "strict", "PRIVACY__SALT": SALT}
HOOKED = ("BOX_CREATE", "BOX_EDIT", "BOX_CHANGE_STAGE", "TASK_CREATE", "TASK_COMPLETE", "COMMENT_CREATE",
          "MEETING_CREATE")


def _custom_events(receiver_url: str) -> None:
    """A custom event and a batch whose properties and ids carry planted personal data."""
    marked = {"email": f"{CANARY}-v000001.buyer@example.com", "phone": f"+1 555 0199 ext. {CANARY}-v000001",
              "customer_name": f"{CANARY}-v000001 Ada", "notes": f"{CANARY}-v000002 asked for a discount",
              "plan": "pro", "seats": 5}
    headers = {"X-API-Key": API_KEY}
    one = {"event_name": "signup", "distinct_id": f"{CANARY}-v000003.user@example.com", "properties": marked}
    assert requests.post(receiver_url + "events/ingestion/v1", json=one, headers=headers, timeout=10).status_code == 202
    batch = [{"event_name": "upgrade", "distinct_id": f"{CANARY}-v00000{n}@example.com", "properties": marked}
             for n in (4, 5)]
    answer = requests.post(receiver_url + "events/ingestion/v1/batch", json=batch, headers=headers, timeout=10)
    assert answer.json()["accepted"] == 2


def _read(destination: str, dlt_dirs: Any, bucket: Path, url: str | None, sql_table: str, column: str,
          whole: bool = False) -> list[Any]:
    """Every value of JSON list column ``column`` of ``crm.<sql_table>``, one by one (``whole``: the
    column's values as they are)."""
    if destination == "postgres":
        import psycopg2

        with psycopg2.connect(url) as con, con.cursor() as cur:
            cur.execute(f"select {column} from crm.{sql_table} where {column} is not null")
            rows = [r[0] for r in cur.fetchall()]
    else:
        with duckdb.connect(str(dlt_dirs.duckdb_path) if destination == "duckdb" else ":memory:",
                            read_only=destination == "duckdb") as con:
            source = (f"crm.{sql_table}" if destination == "duckdb"
                      else f"read_parquet('{bucket.as_posix()}/crm/{sql_table}/**/*.parquet', union_by_name=true)")
            rows = [r[0] for r in con.execute(f"select cast({column} as varchar) from {source} "
                                              f"where {column} is not null").fetchall()]
    if whole:
        return rows
    return [value for row in rows for value in (json.loads(row) if isinstance(row, str) else row)]


@pytest.mark.slow
@pytest.mark.parametrize("destination", ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres), "filesystem"])
def test_strict_leaves_no_planted_marker_in_any_file_and_addresses_still_join(
    destination: str, dlt_isolated: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    bucket = tmp_path / "bucket"
    url = request.getfixturevalue("fresh_postgres_url") if destination == "postgres" else None
    destination_env = {"duckdb": {}, "postgres": postgres_env(url or ""), "filesystem": filesystem_env(bucket)}[destination]
    spool = tmp_path / "spool.sqlite"
    env = {**destination_env, **PRIVACY, "EVENTS__API_KEY": API_KEY, "EVENTS__WEBHOOK_TOKEN": TOKEN,
           "EVENTS__SPOOL_PATH": str(spool)}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    receiver = ReceiverProcess(spool, tmp_path)
    try:
        with Sandbox(boxes=15, seed=11, canary=CANARY, webhook_backoff_s=0.2, rates={"changed": 0.4}) as sb:
            served = requests.get(sb.base_url + "v2/teams/" + sb.account.teams[0].key + "/contacts",
                                  auth=(sb.api_key, ""), timeout=10).text
            assert f"{CANARY}-c000001" in served  # the canary is planted in what Streak serves
            for pipeline in sb.account.pipelines:
                for event in HOOKED:
                    sb.server.webhooks.register(event, receiver.url + "webhooks/streak/" + event, "pipelineKey",
                                                pipeline.key, TOKEN, 0)
            _custom_events(receiver.url)
            summary_path = tmp_path / "summary.json"
            first = run_main_job(["--refresh", "changed", "--summary-json", str(summary_path)],
                                 {**source_env(sb), **env})
            (tmp_path / "job.out").write_text(first.stdout + first.stderr)  # the job's own output is searched too
            assert first.returncode == 0, first.stderr
            assert "privacy: preset strict" in first.stdout
            sb.advance(1)
            assert sb.wait_for_deliveries(60)
            assert any(d["outcome"] == "delivered" for d in sb.deliveries())
            source = {"api_key": sb.api_key, "base_url": sb.base_url, "max_requests_per_second": 500}
            from pipelines.job import run_full_load

            refreshed = run_full_load(dict(source), progress=None, refresh="changed")
            if destination != "filesystem":  # files keep no basis: a refresh falls back to a full load there
                assert refreshed.mode == "changed", refreshed.mode_reason
            backfilled = run_full_load(dict(source), progress=None, refresh="changed", backfill_history=True)
            assert backfilled.history_calls >= 15  # every box's newsfeed read
            if destination != "filesystem":  # files have no crm.events: the events stay in the (searched) spool
                assert events_main(["load"]) == 0
            contact_address = sb.account.contacts[sb.account.teams[0].key][0].email_addresses[0]
    finally:
        receiver.stop()
    assert json.loads(summary_path.read_text())["exit_code"] == 0

    hashed = policy_from("strict", SALT).hash("email", contact_address)
    if url is not None:
        dump = pg_dump(url, tmp_path / "dump.sql").read_text()
        assert hashed in dump  # the dump holds the data, protected
    leaks = found_in(tmp_path, CANARY)
    assert not leaks, f"planted markers found in: {leaks[:10]}"
    assert spool.stat().st_size > 0 and (dlt_isolated.pipelines_dir).is_dir()

    if destination != "filesystem":  # the refresh basis (raw responses) was searched, not absent
        assert _read(destination, dlt_isolated, bucket, url, "refresh_basis_children", "items_json", whole=True)

    # hashed addresses still join: a contact's address, hashed, is in the threads' participants
    contacts = _read(destination, dlt_isolated, bucket, url, "contacts", "email_addresses")
    threads = _read(destination, dlt_isolated, bucket, url, "box_threads", "email_addresses")
    assert hashed in contacts and all(value.startswith("h:") for value in contacts + threads)
    assert set(contacts) & set(threads), "no contact's hashed address joins a thread's"

