"""Issue 25, items 4 and 5, on DuckDB and Postgres, with the sandbox's canary (a marker per person):

* ``forget``: after ``python pipelines/streak_privacy.py forget --email ADDRESS`` no marker of that
  contact is in any file produced (the DuckDB file's bytes and WAL, the spool, dlt's working dir)
  nor in a ``pg_dump``; the other people's markers still are, and the row counts changed only by
  the contact's own rows. The copy is loaded under preset ``contacts``, so the contact's rows are
  hashed and the threads name them in clear: ``forget`` finds both forms.
* a rule change: two loads under ``none``, then one under ``strict``: afterwards no marker anywhere.

benchmarks/marker_search.py searches compressed files and DuckDB columns too.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from benchmarks.marker_search import found_in, pg_dump

import streak_clock
from streak_eventlog.spool import Spool, SpoolRecord
from streak_source.sandbox import Sandbox
from tests.destinations_support import Reader, postgres_env, source_env
from tests.loadtools import REPO_ROOT

CANARY = "zqxforget"
SALT = "forget-salt-0123456789abcdef"
FORGET = REPO_ROOT / "pipelines" / "streak_privacy.py"
BOTH = ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)]


def _marker(value: str) -> str:
    """``TOKEN-c000001`` of a planted value (``TOKEN-c000001-Robert``)."""
    return "-".join(value.split("-")[:2])


def _spool_custom_events(path: Path, addresses: list[str]) -> None:
    """One custom event per address, keyed by it (``api:<address>``), the address in its properties."""
    now = streak_clock.now_ms()
    with Spool(path) as spool:
        spool.write([SpoolRecord(event_key=f"api:{address}", event_name="signup", source="api", received_ms=now,
                                 distinct_id=address, properties={"email": address, "plan": "pro"})
                     for address in addresses])


def _two_loads(sb: Sandbox) -> None:
    """A load, a simulated day, a ``changed`` load: history versions, a refresh basis, events merged."""
    from pipelines.job import run_full_load

    source = {"api_key": sb.api_key, "base_url": sb.base_url, "max_requests_per_second": 500}
    run_full_load(dict(source), progress=None, refresh="changed")
    sb.advance(1)
    run_full_load(dict(source), progress=None, refresh="changed")


def _setup(destination: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch,
           dlt_isolated: Any, privacy: dict[str, str]) -> tuple[str | None, Path, dict[str, str]]:
    url = request.getfixturevalue("fresh_postgres_url") if destination == "postgres" else None
    spool = dlt_isolated.root / "spool.sqlite"
    env = {**(postgres_env(url) if url else {}), **privacy, "EVENTS__SPOOL_PATH": str(spool)}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return url, spool, env


def _found(root: Path, url: str | None, dump: Path, marker: str) -> list[str]:
    """Where ``marker`` is under ``root`` and, for Postgres, in a fresh dump of the database."""
    hits = found_in(root, marker)
    if url is not None:
        hits += [f"pg_dump: {dump.name}"] if marker in pg_dump(url, dump).read_text() else []
    return hits


def _counts(duckdb_path: Path, url: str | None) -> dict[str, int]:
    with (Reader(postgres_url=url) if url else Reader(duckdb_path=duckdb_path)) as db:
        return db.counts()


def _forget(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(FORGET), "forget", *args], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=240, cwd=str(REPO_ROOT.parent))


@pytest.mark.slow
@pytest.mark.parametrize("destination", BOTH)
def test_forget_leaves_no_marker_of_the_person_and_only_their_rows_go(
    destination: str, dlt_isolated: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    url, spool, env = _setup(destination, request, monkeypatch, dlt_isolated,
                             {"PRIVACY__PRESET": "contacts", "PRIVACY__SALT": SALT})
    with Sandbox(boxes=6, seed=5, canary=CANARY) as sb:
        in_threads = {a for box in sb.account.all_boxes() for thread in box.threads for a in thread.email_addresses}
        person, other = [c for c in sb.account.contacts[sb.account.teams[0].key] if c.email_addresses[0] in in_threads][:2]
        address = person.email_addresses[0]
        _spool_custom_events(spool, [address, other.email_addresses[0]])
        _two_loads(sb)
        mine, theirs = _marker(person.given_name), _marker(other.given_name)
        user = _marker(next(iter(sb.account.users.values())).display_name)
        before = _counts(dlt_isolated.duckdb_path, url)
        with (Reader(postgres_url=url) if url else Reader(duckdb_path=dlt_isolated.duckdb_path)) as db:
            versions = db.count("contacts_history") - db.rows(
                "select count(*) from crm.contacts_history where contact_key <> ?", [person.key])[0][0]
            named = db.rows("select count(*) from crm.box_threads_history where cast(names as varchar) like ?",
                            [f"%{mine}%"])[0][0]
        assert named, "the threads name the person in clear before"

        done = _forget({**env, **source_env(sb)}, "--email", address.upper())
        assert done.returncode == 0, done.stderr
        assert "crm.contacts: 1 row deleted" in done.stdout and f"contact key(s): {person.key}" in done.stdout
        assert f"Streak still holds contact {person.key}: the next run brings them back" in done.stdout

    assert not _found(dlt_isolated.root, url, tmp_path / "after.sql", mine)
    if url is None:  # not in the file's free blocks either: the raw bytes, not only what a query sees
        assert mine.encode() not in dlt_isolated.duckdb_path.read_bytes()
    for kept in (theirs, user):
        assert _found(dlt_isolated.root, url, tmp_path / "kept.sql", kept), f"{kept} was erased too"
    after = _counts(dlt_isolated.duckdb_path, url)
    assert {name: before[name] - after.get(name, 0) for name in before if before[name] != after.get(name, 0)} == {
        "contacts": 1, "contacts_history": versions}

    # again, Streak gone: nothing left to erase, and the line says Streak could not be asked
    again = _forget({**env, **source_env(sb), "RUNTIME__REQUEST_MAX_ATTEMPTS": "1"}, "--contact", person.key)
    assert again.returncode == 0, again.stderr
    assert "nothing of that person in the copy" in again.stdout
    assert "Streak: could not ask whether the contact still exists" in again.stdout


def test_forget_waits_for_no_load_and_refuses_bad_input(dlt_isolated: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from streak_warehouse.locks import FileRunLock, RunOwner
    from streak_warehouse.targets.duckdb_file import lock_path

    with FileRunLock(lock_path(dlt_isolated.duckdb_path), "streak.duckdb", RunOwner.this_process()):
        locked = _forget({}, "--email", "ada@example.com")
    assert locked.returncode == 75 and "another run is loading" in locked.stderr
    bad = _forget({}, "--email", "not-an-address")
    assert bad.returncode == 2 and "is not an e-mail address" in bad.stderr
    config = _forget({"PRIVACY__PRESET": "strictest"}, "--email", "ada@example.com")
    assert config.returncode == 3 and "preset" in config.stderr and len(config.stderr.strip().splitlines()) == 1


@pytest.mark.slow
@pytest.mark.parametrize("destination", BOTH)
def test_switching_none_to_strict_leaves_no_clear_marker_anywhere(
    destination: str, dlt_isolated: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    from pipelines.job import run_full_load

    url, spool, _ = _setup(destination, request, monkeypatch, dlt_isolated, {"PRIVACY__PRESET": "none"})
    with Sandbox(boxes=6, seed=7, canary=CANARY) as sb:
        contact = sb.account.contacts[sb.account.teams[0].key][0]
        _spool_custom_events(spool, [contact.email_addresses[0]])
        _two_loads(sb)
        with (Reader(postgres_url=url) if url else Reader(duckdb_path=dlt_isolated.duckdb_path)) as db:
            assert db.rows("select count(*) from crm.contacts_history where full_name like ?", [f"%{CANARY}%"])[0][0]
        monkeypatch.setenv("PRIVACY__PRESET", "strict")
        monkeypatch.setenv("PRIVACY__SALT", SALT)
        summary = run_full_load({"api_key": sb.api_key, "base_url": sb.base_url, "max_requests_per_second": 500},
                                progress=None, refresh="changed")
    assert summary.versions_added == {}  # nothing changed in Streak: the history rewritten as the source writes it
    leaks = _found(dlt_isolated.root, url, tmp_path / "strict.sql", CANARY)
    assert not leaks, f"clear markers left: {leaks[:10]}"
    with (Reader(postgres_url=url) if url else Reader(duckdb_path=dlt_isolated.duckdb_path)) as db:
        recorded = [row[0] for row in db.rows("select privacy from crm.load_history order by finished_at")]
        hashed = db.rows("select distinct_id from crm.events where source = 'api'")
    assert recorded[:2] == ["none", "none"] and recorded[2] not in (None, "none")
    assert [row[0][:2] for row in hashed] == ["h:"]
