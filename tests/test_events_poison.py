"""Issue 21: no single event poisons the receiver or the loader.

Each probe is posted to a real receiver (``streak_events.py serve``, a subprocess) between a valid
event before and one after it: the probe gets the documented one-line JSON status naming the field
(and no traceback on the receiver's stderr), and both valid events reach ``crm.events`` through
``load``. Concurrent innocent posts sharing commit groups with poisoned ones all succeed. Rows an
older receiver spooled that cannot be loaded go to ``crm.rejected_records`` instead of stopping the
load, and stay there across the main job's replace runs: tests/test_events_load.py.
"""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
import requests
from events_support import API_KEY, TOKEN, ReceiverProcess, receiver_env

from pipelines.events_load import load_spooled_events
from streak_eventlog.spool import Spool

INGEST = "events/ingestion/v1"
DEEP = "[" * 10_000 + "]" * 10_000
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z


class Live:
    """The receiver subprocess of this module, its spool and its stderr log."""

    def __init__(self, spool: Path, log_dir: Path) -> None:
        self.spool = spool
        self.log_dir = log_dir
        self.process = ReceiverProcess(spool, log_dir)
        self.url = self.process.url

    def stderr(self) -> str:
        return "".join(p.read_text(errors="replace") for p in self.log_dir.glob("receiver-*.err"))

    def post(self, route: str, raw: str | bytes, session: Any = requests) -> requests.Response:
        secret = {"X-API-Key": API_KEY} if route == INGEST else {"X-Streak-Webhook-Token": TOKEN}
        data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
        return session.post(self.url + route, data=data, timeout=30,  # type: ignore[no-any-return]
                            headers={"content-type": "application/json", **secret})


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    where = tmp_path_factory.mktemp("poison")
    receiver = Live(where / "spool.sqlite", where)
    yield receiver
    assert receiver.process.stop(signal.SIGTERM) == 0


@pytest.fixture
def warehouse(live: Live, dlt_isolated: Any, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This test's own DuckDB copy, loaded from the module's spool (earlier tests' events are acked)."""
    for name, value in receiver_env(live.spool).items():
        if name.startswith("EVENTS__"):
            monkeypatch.setenv(name, value)
    return dlt_isolated.duckdb_path  # type: ignore[no-any-return]


def custom(name: str, distinct_id: str, **more: Any) -> str:
    return json.dumps({"event_name": name, "distinct_id": distinct_id, "timestamp": T0, **more})


def box(key: str, **fields: Any) -> str:
    return json.dumps([{"key": key, "pipelineKey": "p-1", "name": "Acme", "creationTimestamp": T0, **fields}])


# (route, raw body, status, field): raw text, so lone surrogates and huge integers stay as sent
PROBES: dict[str, tuple[str, str, int, str]] = {
    "webhook time year 287168": ("webhooks/streak/BOX_CREATE", box("b-far", creationTimestamp=9_000_000_000_000_000),
                                 400, "body[0].creationTimestamp"),
    "webhook time negative": ("webhooks/streak/BOX_CREATE", box("b-neg", creationTimestamp=-1), 400,
                              "body[0].creationTimestamp"),
    "webhook time beyond int64": ("webhooks/streak/BOX_EDIT", box("b-big").replace('"creationTimestamp": 1767225600000',
                                  '"lastUpdatedTimestamp": 99999999999999999999999'), 400, "body[0].lastUpdatedTimestamp"),
    "webhook integer beyond int64": ("webhooks/streak/BOX_CREATE", box("b-int").replace('"name"', '"size": -9223372036854775809, "name"'),
                                     400, "body[0].size"),
    "webhook lone surrogate": ("webhooks/streak/BOX_CREATE", box("b-sur").replace("Acme", "Ac\\ud800me"), 400, "body[0].name"),
    "webhook NUL in a key": ("webhooks/streak/BOX_CREATE", box("b\u0000nul"), 400, "body[0].key"),
    "webhook 10,000 levels": ("webhooks/streak/BOX_CREATE", DEEP, 400, "body"),
    "event time year 287168": (INGEST, custom("x", "far", timestamp=9_000_000_000_000_000), 400, "timestamp"),
    "event NUL in distinct_id": (INGEST, custom("x", "a\u0000b"), 400, "distinct_id"),
    "event lone surrogate in a name": (INGEST, custom("x", "s1", properties={"k": 1}).replace('"k"', '"k\\udc00"'),
                                       400, "properties.k\\udc00"),
    "event lone surrogate in event_name": (INGEST, custom("x", "s2").replace('"x"', '"\\ud800x"'), 400, "event_name"),
    "event integer beyond int64": (INGEST, custom("x", "i1", properties={"n": 1}).replace('"n": 1', '"n": 9223372036854775808'),
                                   400, "properties.n"),
    "event number beyond float": (INGEST, custom("x", "f1", properties={"n": 1}).replace('"n": 1', '"n": 1e400'), 400,
                                  "properties.n"),
    "event 10,000 levels": (INGEST, DEEP, 400, "body"),
    "event nested 65 levels": (INGEST, custom("x", "d1", properties={"n": 1}).replace('1}', "[" * 65 + "]" * 65 + "}"),
                               400, "body"),
}


def warehouse_keys(path: Path) -> dict[str, str]:
    with duckdb.connect(str(path), read_only=True) as con:
        return dict(con.execute("SELECT event_key, event_name FROM crm.events").fetchall())


@pytest.mark.parametrize("probe", PROBES)
def test_each_probe_gets_its_status_and_the_events_around_it_load(live: Live, warehouse: Path, probe: str) -> None:
    route, raw, status, field = PROBES[probe]
    tag = probe.replace(" ", "-").replace(",", "")
    colliding = probe == "event NUL in distinct_id"
    before = live.post(INGEST, custom("before", "ab" if colliding else f"before-{tag}"))
    answer = live.post(route, raw)
    after = live.post(INGEST, custom("after", f"after-{tag}"))
    assert (before.status_code, after.status_code) == (202, 202), (before.text, after.text)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    assert answer.text.endswith("\n") and answer.text.count("\n") == 1, answer.text
    assert answer.json()["field"] == field, answer.text
    assert answer.json()["error"].startswith(field + " "), answer.text
    assert "Traceback" not in live.stderr()

    result = load_spooled_events()
    assert (result.events, result.rejected) == (2, 0)
    events = warehouse_keys(warehouse)
    first = "api:ab" if colliding else f"api:before-{tag}"
    assert events == {first: "before", f"api:after-{tag}": "after"}  # "a\u0000b" never became "ab"


def test_innocent_posts_in_the_commit_groups_of_poisoned_ones_all_succeed(live: Live, warehouse: Path) -> None:
    """Poisoned bodies (a lone surrogate, an integer beyond int64, a year 287168) posted while others
    post valid events: the poisoned get 400, every innocent one 2xx and lands in ``crm.events``."""
    poisons = [(r, raw) for r, raw, _, _ in PROBES.values() if raw is not DEEP]
    innocents: dict[str, list[int]] = {}
    refused: list[int] = []

    def innocent(worker: int) -> None:
        with requests.Session() as session:
            for i in range(60):
                key = f"ok-{worker}-{i}"
                route, raw = (INGEST, custom("ok", key)) if i % 2 else ("webhooks/streak/BOX_CREATE", box(key))
                innocents[key] = [live.post(route, raw, session).status_code]

    def poisoner() -> None:
        with requests.Session() as session:
            for _ in range(6):
                refused.extend(live.post(route, raw, session).status_code for route, raw in poisons)

    threads = [threading.Thread(target=innocent, args=(w,)) for w in range(4)] + [threading.Thread(target=poisoner) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(innocents) == 240 and all(codes in ([200], [202]) for codes in innocents.values()), {
        k: v for k, v in innocents.items() if v not in ([200], [202])}
    assert set(refused) == {400} and len(refused) == 2 * 6 * len(poisons)
    assert "Traceback" not in live.stderr()
    assert load_spooled_events().events == 240
    stored = warehouse_keys(warehouse)
    assert {k for k in stored if k.startswith("api:")} == {f"api:{k}" for k in innocents if int(k.rsplit("-", 1)[1]) % 2}
    assert sum(1 for k in stored if k.startswith("streak:BOX_CREATE:ok-")) == 120


def test_the_spool_and_its_wal_are_private(live: Live, warehouse: Path) -> None:
    assert live.post(INGEST, custom("x", "private")).status_code == 202
    files = [live.spool, Path(f"{live.spool}-wal"), Path(f"{live.spool}-shm")]
    assert {p.name: oct(p.stat().st_mode & 0o777) for p in files} == {p.name: "0o600" for p in files}
    assert load_spooled_events().events == 1
    assert Spool(live.spool, writer=False).pending() == 0
