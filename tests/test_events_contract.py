"""The custom-events contract (issue 14) and the webhook route, rule by rule, over the real spool."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from events_support import API_KEY, LIMIT, TOKEN, post_event, receiver_client

from streak_eventlog.contract import ContractError, parse_json, parse_timestamp
from streak_eventlog.spooled import properties_json


@pytest.fixture()
def rc(tmp_path: Path) -> Any:
    with receiver_client(tmp_path / "spool.sqlite") as pair:
        yield pair


def stored(spool: Any) -> list[dict[str, Any]]:
    return spool.all_rows()


def assert_error(response: Any, status: int, field: str) -> None:
    assert response.status_code == status, response.text
    assert response.text.count("\n") == 1 and response.text.endswith("\n")
    body = response.json()
    assert body["field"] == field and field in body["error"]


# ------------------------------------------------------------------ timestamps


def test_seconds_milliseconds_and_iso_are_the_same_instant() -> None:
    assert parse_timestamp(1700000000) == parse_timestamp(1700000000000) == 1700000000000
    assert parse_timestamp("2023-11-14T22:13:20Z") == 1700000000000
    assert parse_timestamp("2023-11-14T23:13:20+01:00") == 1700000000000
    assert parse_timestamp(1700000000.5) == parse_timestamp("2023-11-14T22:13:20.500Z") == 1700000000500
    assert parse_timestamp("1700000000") == 1700000000000


@pytest.mark.parametrize("bad", [True, None, "yesterday", "", float("nan"), float("inf"), -5, [1], {"a": 1}])
def test_bad_timestamps_are_refused(bad: Any) -> None:
    with pytest.raises(ContractError) as info:
        parse_timestamp(bad)
    assert info.value.status == 400 and info.value.field == "timestamp"


def test_three_forms_store_equal_timestamps(rc: Any) -> None:
    client, spool = rc
    for i, stamp in enumerate([1700000000, 1700000000000, "2023-11-14T22:13:20Z"]):
        assert post_event(client, {"event_name": "x", "distinct_id": f"d{i}", "timestamp": stamp}).status_code == 202
    assert {row["timestamp"].timestamp() for row in stored(spool)} == {1700000000.0}


# ------------------------------------------------------------------ distinct_id


def test_distinct_id_update_keeps_the_first_timestamp(rc: Any) -> None:
    client, spool = rc
    post_event(client, {"event_name": "Offer made", "distinct_id": "o-1", "timestamp": 1700000000, "properties": {"v": 1}})
    post_event(client, {"event_name": "Offer accepted", "distinct_id": "o-1", "timestamp": 1800000000, "properties": {"v": 2}})
    rows = stored(spool)
    assert len(rows) == 1
    row = rows[0]
    assert row["event_name"] == "Offer accepted" and row["properties"] == {"v": 2}
    assert row["timestamp"].timestamp() == 1700000000
    assert row["distinct_id"] == "o-1" and row["source"] == "api"
    assert row["first_received_at"] <= row["last_received_at"]


def test_absent_timestamp_is_the_first_request_time(rc: Any) -> None:
    client, spool = rc
    post_event(client, {"event_name": "a", "distinct_id": "same"})
    first = stored(spool)[0]
    post_event(client, {"event_name": "b", "distinct_id": "same"})
    (again,) = stored(spool)
    assert first["timestamp"] == first["first_received_at"] == again["timestamp"]


def test_without_distinct_id_every_post_is_new(rc: Any) -> None:
    client, spool = rc
    for _ in range(3):
        post_event(client, {"event_name": "ping"})
    rows = stored(spool)
    assert len(rows) == 3 and len({r["event_key"] for r in rows}) == 3
    assert all(r["distinct_id"] is None for r in rows)


def test_ids_are_stored_as_sent(rc: Any) -> None:
    client, spool = rc
    body = {"event_name": "Paid", "location_id": "loc-9", "contact_id": "c-1", "box_key": "b-2", "distinct_id": 42}
    assert post_event(client, body).status_code == 202
    (row,) = stored(spool)
    assert (row["location_id"], row["contact_key"], row["box_key"], row["distinct_id"]) == ("loc-9", "c-1", "b-2", "42")


# ------------------------------------------------------------------ properties


@pytest.mark.parametrize(
    ("value", "raw"),
    [(None, None), (True, None), (False, None), ({"a": 1}, None), ([1, 2], None), (None, "NaN"), (None, "Infinity"), (None, "-Infinity")],
)
def test_each_bad_property_kind_is_refused_by_name(rc: Any, value: Any, raw: str | None) -> None:
    client, spool = rc
    if raw is None:
        response = post_event(client, {"event_name": "x", "properties": {"ok": "fine", "bad_one": value}})
    else:
        body = f'{{"event_name": "x", "properties": {{"ok": 1, "bad_one": {raw}}}}}'
        response = client.post("/events/ingestion/v1", content=body, headers={"X-API-Key": API_KEY, "content-type": "application/json"})
    assert_error(response, 400, "properties.bad_one")
    assert stored(spool) == []


def test_strings_and_finite_numbers_are_accepted(rc: Any) -> None:
    client, spool = rc
    props = {"s": "text", "i": 3, "f": 2.5, "neg": -1e10, "empty": ""}
    assert post_event(client, {"event_name": "x", "properties": props}).status_code == 202
    assert stored(spool)[0]["properties"] == props


def test_properties_must_be_an_object(rc: Any) -> None:
    client, _ = rc
    assert_error(post_event(client, {"event_name": "x", "properties": [1]}), 400, "properties")


# ------------------------------------------------------------------ error statuses


@pytest.mark.parametrize("body", [{}, {"event_name": ""}, {"event_name": "   "}, {"event_name": 5}, {"event_name": None}])
def test_event_name_is_required(rc: Any, body: Any) -> None:
    client, spool = rc
    assert_error(post_event(client, body), 400, "event_name")
    assert stored(spool) == []


def test_bad_timestamp_is_400(rc: Any) -> None:
    client, spool = rc
    assert_error(post_event(client, {"event_name": "x", "timestamp": "soon"}), 400, "timestamp")
    assert stored(spool) == []


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b'"text"', b"\xff\xfe"])
def test_malformed_json_is_400(rc: Any, raw: bytes) -> None:
    client, spool = rc
    response = client.post("/events/ingestion/v1", content=raw, headers={"X-API-Key": API_KEY, "content-type": "application/json"})
    assert_error(response, 400, "body")
    assert stored(spool) == []


@pytest.mark.parametrize("key", [None, "", "wrong", API_KEY + "x", API_KEY.upper()])
def test_missing_or_wrong_key_is_401(rc: Any, key: str | None) -> None:
    client, spool = rc
    headers = {"content-type": "application/json"}
    if key is not None:
        headers["X-API-Key"] = key
    response = client.post("/events/ingestion/v1", content=b'{"event_name": "x"}', headers=headers)
    assert_error(response, 401, "X-API-Key")
    assert API_KEY not in response.text and stored(spool) == []


def test_body_over_the_limit_is_413(rc: Any) -> None:
    client, spool = rc
    big = {"event_name": "x", "properties": {"blob": "y" * LIMIT}}
    assert_error(post_event(client, big), 413, "body")
    # Without Content-Length too (chunked): the stream is cut at the limit.
    chunks = iter([b'{"event_name": "x", "properties": {"blob": "', b"y" * LIMIT, b'"}}'])
    response = client.post("/events/ingestion/v1", content=chunks, headers={"X-API-Key": API_KEY, "content-type": "application/json"})
    assert_error(response, 413, "body")
    assert stored(spool) == []
    just_under = {"event_name": "x", "properties": {"blob": "y" * (LIMIT - 100)}}
    assert post_event(client, just_under).status_code == 202


@pytest.mark.parametrize("kind", [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data"])
def test_not_json_is_415(rc: Any, kind: str | None) -> None:
    client, spool = rc
    headers = {"X-API-Key": API_KEY}
    if kind:
        headers["content-type"] = kind
    response = client.post("/events/ingestion/v1", content=b'{"event_name": "x"}', headers=headers)
    assert_error(response, 415, "content-type")
    assert stored(spool) == []


def test_json_with_charset_is_accepted(rc: Any) -> None:
    client, _ = rc
    response = client.post(
        "/events/ingestion/v1", content=b'{"event_name": "x"}',
        headers={"X-API-Key": API_KEY, "content-type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 202


# ------------------------------------------------------------------ webhooks route


def deliver(client: Any, event: str, body: Any, token: str | None = TOKEN) -> Any:
    headers = {"content-type": "application/json"}
    if token is not None:
        headers["X-Streak-Webhook-Token"] = token
    return client.post(f"/webhooks/streak/{event}", content=json.dumps(body), headers=headers)


BOX = {"key": "box-1", "pipelineKey": "p-1", "stageKey": "5002", "name": "Acme", "lastUpdatedTimestamp": 1700000000000,
       "lastStageChangeTimestamp": 1700000000123}


def test_each_delivered_object_is_one_event_and_redelivery_is_idempotent(rc: Any) -> None:
    client, spool = rc
    task = {"key": "task-1", "boxKey": "box-1", "pipelineKey": "p-1", "text": "Call", "lastSavedTimestamp": 1700000001000}
    for _ in range(3):
        assert deliver(client, "BOX_CHANGE_STAGE", [BOX]).status_code == 200
        assert deliver(client, "TASK_CREATE", [task, dict(task, key="task-2")]).status_code == 200
    rows = {r["event_key"]: r for r in stored(spool)}
    assert len(rows) == 3
    stage = rows["streak:BOX_CHANGE_STAGE:box-1:1700000000123"]
    assert stage["timestamp"].timestamp() == 1700000000.123
    assert (stage["box_key"], stage["pipeline_key"], stage["source"]) == ("box-1", "p-1", "webhook")
    assert stage["properties"]["stageKey"] == "5002"
    assert rows["streak:TASK_CREATE:task-1:1700000001000"]["box_key"] == "box-1"


def test_unknown_event_is_404(rc: Any) -> None:
    client, spool = rc
    assert_error(deliver(client, "BOX_CREATED", [BOX]), 404, "event")
    assert stored(spool) == []


@pytest.mark.parametrize("token", [None, "", "nope", TOKEN[:-1]])
def test_wrong_token_is_401(rc: Any, token: str | None) -> None:
    client, spool = rc
    response = deliver(client, "BOX_CREATE", [BOX], token)
    assert_error(response, 401, "X-Streak-Webhook-Token")
    assert TOKEN not in response.text and stored(spool) == []


@pytest.mark.parametrize("body", [{"key": "b"}, [1], "x", [BOX, "x"]])
def test_delivery_must_be_an_array_of_objects(rc: Any, body: Any) -> None:
    client, spool = rc
    assert_error(deliver(client, "BOX_CREATE", body), 400, "body")
    assert stored(spool) == []


def test_health(rc: Any) -> None:
    client, _ = rc
    assert client.get("/health").json()["ok"] is True


def test_the_spool_holds_no_secret(rc: Any, tmp_path: Path) -> None:
    client, _ = rc
    post_event(client, {"event_name": "x", "properties": {"a": "b"}})
    deliver(client, "BOX_CREATE", [BOX])
    post_event(client, {"event_name": "x"}, key="wrong")
    blob = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    assert API_KEY.encode() not in blob and TOKEN.encode() not in blob


# Bodies where orjson (the fast path) and json differ or are near their edges: parse_json must read
# each as json does (the same value and type, or a 400 where json refuses it).
EDGE_BODIES = [
    b"9223372036854775807", b"-9223372036854775808", b"18446744073709551615", b"18446744073709551616",
    b"-9223372036854775809", b"123456789012345678901234567890", b'{"n": 100000000000000000000}',
    b"1e400", b"NaN", b'[-Infinity]', b'"\\ud800"', b'"\xed\xa0\x80"', b'"a\\u0000b"', b"\xef\xbb\xbf{}",
    '{"a": 1}'.encode("utf-16"), b'{"a": 1, "a": 2}', b"0.1000000000000000055511151231257827", b"-0.0",
    b"1E5", b'"\\u00e9\xc3\xa9"', b"[1,]", b'"\xff"', b"",
]


@pytest.mark.parametrize("raw", EDGE_BODIES)
def test_a_body_parses_as_pythons_json_reads_it(raw: bytes) -> None:
    try:
        expected: Any = json.loads(raw)
    except ValueError:
        with pytest.raises(ContractError) as refused:
            parse_json(raw)
        assert refused.value.status == 400 and refused.value.field == "body"
        return
    got = parse_json(raw)
    assert repr(got) == repr(expected) and type(got) is type(expected)


def test_stored_properties_read_back_equal_keys_sorted() -> None:
    checked = {"b": 1e16, "a": "é", "n": 2**63 - 1, "m": -1.5e-7}
    assert json.loads(properties_json(checked)) == checked
    assert list(json.loads(properties_json(checked))) == ["a", "b", "m", "n"]
    assert json.loads(properties_json({"big": 2**64, "none": None})) == {"big": 2**64, "none": None}
