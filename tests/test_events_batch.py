"""Batched custom events (issue 26): ``POST /events/ingestion/v1/batch``, a JSON array of up to 1,000.

Each event of a batch is judged by the single route's rules: its result is what
``POST /events/ingestion/v1`` answers for that event alone (checked against a second receiver),
a refused event refuses only itself, the accepted ones are stored in one commit, and every one
acknowledged survives a SIGKILL right after the answer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests
from events_support import API_KEY, LIMIT, TOKEN, ReceiverProcess, receiver_client, sigkill_mid_stream

from streak_eventlog.spool import Spool

BATCH = "/events/ingestion/v1/batch"
SINGLE = "/events/ingestion/v1"
JSON = {"content-type": "application/json"}

# One batch's events as raw JSON text (so NaN, lone surrogates and huge integers stay as sent), good
# ones among every kind of fault the single route names.
EVENTS: list[str] = [
    '{"event_name": "Offer made", "distinct_id": "g-1", "timestamp": 1700000000, "properties": {"amount": 12000, "currency": "EUR"}}',
    '{"distinct_id": "b-1"}',
    '{"event_name": "x", "distinct_id": "b-2", "timestamp": "soon"}',
    '{"event_name": "Paid", "distinct_id": 42, "timestamp": 1700000000123, "box_key": "box-2", "location_id": "loc-9", "contact_id": "c-1"}',
    '{"event_name": "x", "distinct_id": "b-3", "properties": {"ok": 1, "bad_one": null}}',
    '{"event_name": "x", "distinct_id": "b-4", "properties": {"amount": NaN}}',
    '{"event_name": "x", "distinct_id": "a\\u0000b"}',
    '{"event_name": "x", "distinct_id": "\\ud800"}',
    '{"event_name": "x", "distinct_id": "b-6", "properties": {"n": 123456789012345678901234567890}}',
    '[1, 2]',
    '"text"',
    '{"event_name": "' + "n" * 201 + '"}',
    '{"event_name": "x", "properties": {"deep": ' + "[" * 70 + "]" * 70 + "}}",
    '{"event_name": "ping", "timestamp": "2023-11-14T22:13:20Z"}',
    '{"event_name": "Offer accepted", "distinct_id": "g-5", "properties": {"amount": 9.5}}',
]
REFUSED = {1, 2, 4, 5, 6, 7, 8, 9, 10, 11, 12}


def raw_batch(events: list[str]) -> bytes:
    return ("[" + ", ".join(events) + "]").encode("utf-8", "surrogatepass")


def post(client: Any, path: str, raw: bytes | Any, key: str = API_KEY, headers: dict[str, str] = JSON) -> Any:
    return client.post(path, content=raw, headers={"X-API-Key": key, **headers})


def assert_error(response: Any, status: int, field: str, words: str) -> None:
    assert response.status_code == status, response.text
    assert response.text.count("\n") == 1 and response.text.endswith("\n")
    body = response.json()
    assert body["field"] == field and body["error"].startswith(field) and words in body["error"], body


def comparable(row: dict[str, Any]) -> dict[str, Any]:
    """A stored row without what differs between two receivers (receipt times, random keys)."""
    kept = {k: v for k, v in row.items() if k not in ("first_received_at", "last_received_at")}
    if row["distinct_id"] is None:
        kept["event_key"] = "api:~"
    if row["timestamp"] == row["first_received_at"]:  # sent without one: the time of receipt
        kept["timestamp"] = "received"
    return kept


@pytest.fixture()
def rc(tmp_path: Path) -> Any:
    with receiver_client(tmp_path / "spool.sqlite") as pair:
        yield pair


def test_each_event_gets_what_the_single_route_answers_and_only_the_good_ones_are_stored(tmp_path: Path) -> None:
    with receiver_client(tmp_path / "batch.sqlite") as (client, spool), \
            receiver_client(tmp_path / "single.sqlite") as (single_client, single_spool):
        answer = post(client, BATCH, raw_batch(EVENTS))
        singles = [post(single_client, SINGLE, e.encode("utf-8", "surrogatepass")) for e in EVENTS]
        batch_rows, single_rows = spool.all_rows(), single_spool.all_rows()
    assert answer.status_code == 200 and answer.text.count("\n") == 1
    body = answer.json()
    results = body["results"]
    assert len(results) == len(EVENTS)
    assert (body["accepted"], body["refused"], body["success"]) == (len(EVENTS) - len(REFUSED), len(REFUSED), False)
    assert {i for i, r in enumerate(results) if r["status"] != 202} == REFUSED
    for i, (result, single) in enumerate(zip(results, singles, strict=True)):
        expected = {"status": single.status_code, **single.json()}
        if single.status_code == 202:
            expected.pop("success")
            if expected["event_key"].startswith("api:~"):  # no distinct_id: a new random key each
                assert result["event_key"].startswith("api:~") and result["event_key"] != expected["event_key"]
                expected["event_key"] = result["event_key"]
        assert result == expected, (i, result, expected)
    assert results[5]["field"] == "properties.amount" and results[8]["field"] == "properties.n"
    assert [comparable(r) for r in batch_rows] == [comparable(r) for r in single_rows]
    assert [r["event_key"] for r in batch_rows] == [
        results[i]["event_key"] for i in range(len(EVENTS)) if i not in REFUSED
    ]


def test_a_batch_is_stored_in_one_commit_and_answered_in_order(tmp_path: Path) -> None:
    events = [{"event_name": "e", "distinct_id": f"e-{i}", "properties": {"i": i}} for i in range(1000)]
    with receiver_client(tmp_path / "spool.sqlite", limit=1_048_576) as (client, spool):
        commits = spool.commits
        answer = post(client, BATCH, json.dumps(events).encode())
        assert spool.commits == commits + 1
        rows = spool.all_rows()
    assert answer.status_code == 200
    body = answer.json()
    assert (body["success"], body["accepted"], body["refused"]) == (True, 1000, 0)
    assert [r["event_key"] for r in body["results"]] == [f"api:e-{i}" for i in range(1000)]
    assert {r["status"] for r in body["results"]} == {202}
    assert [(r["event_key"], r["properties"]["i"]) for r in rows] == [(f"api:e-{i}", i) for i in range(1000)]


def test_a_repeated_distinct_id_in_one_batch_updates_as_two_posts_would(rc: Any) -> None:
    client, spool = rc
    events = [
        {"event_name": "Offer made", "distinct_id": "o-1", "timestamp": 1700000000, "properties": {"v": 1}, "box_key": "b-1"},
        {"event_name": "Offer accepted", "distinct_id": "o-1", "timestamp": 1800000000, "properties": {"v": 2}},
    ]
    results = post(client, BATCH, json.dumps(events).encode()).json()["results"]
    assert results == [{"status": 202, "event_key": "api:o-1"}] * 2
    (row,) = spool.all_rows()
    assert (row["event_name"], row["properties"], row["box_key"]) == ("Offer accepted", {"v": 2}, "b-1")
    assert row["timestamp"].timestamp() == 1700000000  # the first timestamp stays


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b"[]", "empty array"),
        (b'{"event_name": "x"}', "must be a JSON array"),
        (b'"x"', "must be a JSON array"),
        (b"null", "must be a JSON array"),
        (b'[{"event_name": "x"}', "not valid JSON"),
        (b"\xff\xfe[]", "not valid JSON"),
        (b"[" + b",".join([b"{}"] * 1001) + b"]", "holds 1001 events; at most 1000"),
    ],
)
def test_a_body_that_is_no_batch_is_refused_whole(rc: Any, raw: bytes, words: str) -> None:
    client, spool = rc
    assert_error(post(client, BATCH, raw), 400, "body", words)
    assert spool.all_rows() == []


def test_a_body_nested_beyond_the_parser_is_refused_whole(tmp_path: Path) -> None:
    raw = b"[" + b"[" * 5000 + b"]" * 5000 + b', {"event_name": "x"}]'
    with receiver_client(tmp_path / "spool.sqlite", limit=1_048_576) as (client, spool):
        assert_error(post(client, BATCH, raw), 400, "body", "nests deeper than 64 levels")
        assert spool.all_rows() == []


def test_a_body_over_max_body_bytes_is_413_whole(rc: Any) -> None:
    client, spool = rc
    events = [{"event_name": "x", "distinct_id": f"d-{i}", "properties": {"blob": "y" * 100}} for i in range(40)]
    raw = json.dumps(events).encode()
    assert len(raw) > LIMIT
    assert_error(post(client, BATCH, raw), 413, "body", f"larger than {LIMIT} bytes")
    chunked = client.post(BATCH, content=iter([raw[:100], raw[100:]]), headers={"X-API-Key": API_KEY, **JSON})
    assert_error(chunked, 413, "body", f"larger than {LIMIT} bytes")
    assert spool.all_rows() == []
    assert post(client, BATCH, json.dumps(events[:20]).encode()).json()["accepted"] == 20


@pytest.mark.parametrize("key", [None, "", "wrong", API_KEY + "x", TOKEN])
def test_missing_or_wrong_key_is_401(rc: Any, key: str | None) -> None:
    client, spool = rc
    headers = dict(JSON) if key is None else {"X-API-Key": key, **JSON}
    response = client.post(BATCH, content=b'[{"event_name": "x"}]', headers=headers)
    assert_error(response, 401, "X-API-Key", "missing or wrong")
    assert API_KEY not in response.text and spool.all_rows() == []


def test_not_json_is_415(rc: Any) -> None:
    client, spool = rc
    response = post(client, BATCH, b'[{"event_name": "x"}]', headers={"content-type": "text/plain"})
    assert_error(response, 415, "content-type", "application/json")
    assert spool.all_rows() == []


def test_other_paths_and_methods_answer_one_line_json(rc: Any) -> None:
    client, spool = rc
    assert_error(client.get(BATCH), 405, "method", "must be POST")
    assert client.get(BATCH).headers["allow"] == "POST"
    assert_error(post(client, BATCH + "/more", b"[]"), 404, "path", "not a route")
    assert_error(post(client, "/webhooks/streak/BOX_CREATE/x", b"[]"), 404, "path", "not a route")
    assert spool.all_rows() == []


def test_sigkill_right_after_a_batch_answer_loses_no_accepted_event(tmp_path: Path) -> None:
    """Batches of 25 (one poisoned event in each) from 4 clients; SIGKILL mid-stream: every event a
    result accepted is in the spool, no refused one is."""
    spool_path = tmp_path / "spool.sqlite"
    receiver = ReceiverProcess(spool_path, tmp_path)
    refused: list[str] = []

    def post_batch(session: requests.Session, n: int, i: int) -> list[str]:
        events: list[dict[str, Any]] = [{"event_name": "k", "distinct_id": f"c{n}-{i}-{k}"} for k in range(25)]
        events[7] = {"distinct_id": f"c{n}-{i}-poisoned"}  # no event_name
        answer = session.post(receiver.url + BATCH.lstrip("/"), json=events, headers={"X-API-Key": API_KEY}, timeout=5)
        if answer.status_code != 200:
            return []
        results = answer.json()["results"]
        refused.extend(f"api:{e['distinct_id']}" for e, r in zip(events, results, strict=True) if r["status"] != 202)
        return [r["event_key"] for r in results if r["status"] == 202]

    acknowledged = sigkill_mid_stream(receiver, post_batch, at_least=1000)
    with Spool(spool_path, writer=False) as reader:
        keys = {row["event_key"] for row in reader.all_rows()}
    assert len(acknowledged) >= 1000 and len(refused) >= 40
    assert set(acknowledged) <= keys
    assert not keys & set(refused)
