"""Latency, the server-side rate limit and every injectable fault do what they say."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from streak_source.sandbox import FaultSpecError, Sandbox, parse_fault
from streak_source.sandbox.faults import TokenBucket, retry_after_seconds

pytestmark = pytest.mark.timeout(60)

TASKS_ROUTE = "/api/v2/boxes/{box_key}/tasks"


def poll(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.01)


# ---------------------------------------------------------------------------- spec parsing


def test_parse_fault_specs() -> None:
    spec = parse_fault("status=503:share=0.2:route=/api/v2/boxes/{box_key}/tasks")
    assert (spec.kind, spec.amount, spec.share, spec.route, spec.times) == (
        "status",
        503,
        0.2,
        TASKS_ROUTE,
        None,
    )
    spec = parse_fault("hang=30:route=v1/pipelines/{pipeline_key}/boxes:times=1")
    assert (spec.kind, spec.amount, spec.route, spec.times) == (
        "hang",
        30.0,
        "/api/v1/pipelines/{pipeline_key}/boxes",
        1,
    )
    assert parse_fault("gone=3").amount == 3
    assert parse_fault("malformed:route=/api/v1/snippets").kind == "malformed"
    spec = parse_fault("revoke-after=200:key=strk_x")
    assert (spec.kind, spec.amount, spec.key) == ("revoke-after", 200, "strk_x")
    assert parse_fault("status=500:route=/api/{path:path}").route == "/api/{path:path}"


@pytest.mark.parametrize(
    "text, message",
    [
        ("explode=1", "unknown fault kind"),
        ("status=abc", "not an integer"),
        ("status=200", "must be >= 400"),
        ("status=503:share=2", "within 0..1"),
        ("status=503:key=demo", "does not apply"),
        ("status=503:route=/a:route=/b", "given twice"),
        ("malformed=3", "takes no value"),
        ("null=1", "takes no value"),
        ("gone=0", "must be >= 1"),
        ("gone=2:share=0.5", "does not apply"),
        ("hang", "needs a value"),
        ("revoke-after=5:times=2", "does not apply"),
        ("status=503:times=0", "must be >= 1"),
    ],
)
def test_bad_fault_specs_are_explained(text: str, message: str) -> None:
    with pytest.raises(FaultSpecError, match=message):
        parse_fault(text)


def test_specs_that_do_not_fit_the_server_are_rejected() -> None:
    with pytest.raises(FaultSpecError, match="unknown route"):
        Sandbox(boxes=5, faults=["status=503:route=/api/v2/nothing"])
    with pytest.raises(FaultSpecError, match="box routes only"):
        Sandbox(boxes=5, faults=["gone=1:route=/api/v1/snippets"])
    with pytest.raises(FaultSpecError, match="only"):
        Sandbox(boxes=5, faults=["gone=500"])
    with pytest.raises(FaultSpecError, match="not one of"):
        Sandbox(boxes=5, faults=["revoke-after=3:key=nobody"])


def test_a_single_spec_string_is_one_fault() -> None:
    sandbox = Sandbox(boxes=10, faults="gone=1")  # never started: faults are decided up front
    assert len(sandbox.gone_box_keys) == 1


# ---------------------------------------------------------------------------- status faults


def fetch_all_tasks(sandbox: Sandbox) -> dict[str, int]:
    with requests.Session() as session:
        session.auth = (sandbox.api_key, "")
        return {
            box.key: session.get(sandbox.url(f"v2/boxes/{box.key}/tasks"), timeout=10).status_code
            for box in sandbox.account.all_boxes()
        }


def test_status_share_is_deterministic_and_route_scoped(
    make_sandbox: Callable[..., Sandbox],
) -> None:
    spec = f"status=503:share=0.3:route={TASKS_ROUTE}"
    sandbox = make_sandbox(boxes=60, seed=9, faults=[spec])
    first = fetch_all_tasks(sandbox)
    second = fetch_all_tasks(make_sandbox(boxes=60, seed=9, faults=[spec]))
    failed = {k for k, status in first.items() if status == 503}
    assert first == second, "same seed, same failures, run after run"
    assert set(first.values()) == {200, 503}
    assert 5 <= len(failed) <= 35, "about 30 % of 60"
    with requests.Session() as session:
        session.auth = ("demo", "")
        assert session.get(sandbox.url("v1/pipelines"), timeout=10).status_code == 200, (
            "other routes unaffected"
        )
        for key in list(failed)[:5]:
            assert (
                session.get(sandbox.url(f"v1/boxes/{key}/threads"), timeout=10).status_code == 200
            )


def test_retrying_a_failed_url_draws_again(make_sandbox: Callable[..., Sandbox]) -> None:
    sandbox = make_sandbox(boxes=60, seed=9, faults=[f"status=503:share=0.5:route={TASKS_ROUTE}"])
    failed = [k for k, status in fetch_all_tasks(sandbox).items() if status == 503]
    with requests.Session() as session:
        session.auth = ("demo", "")
        retried = [
            session.get(sandbox.url(f"v2/boxes/{k}/tasks"), timeout=10).status_code for k in failed
        ]
    assert 200 in retried and 503 in retried


@pytest.mark.parametrize("code", [500, 502, 503])
def test_status_times_limits_injections(make_sandbox: Callable[..., Sandbox], code: int) -> None:
    sandbox = make_sandbox(boxes=5, faults=[f"status={code}:times=2"])
    with requests.Session() as session:
        session.auth = ("demo", "")
        responses = [session.get(sandbox.url("v1/users/me"), timeout=10) for _ in range(4)]
    assert [r.status_code for r in responses] == [code, code, 200, 200]
    assert responses[0].json()["success"] is False
    stats = sandbox.stats()
    assert stats["faults"]["injected"] == {f"status={code}:times=2": 2}
    assert stats["responses_by_status"] == {str(code): 2, "200": 2}


# ------------------------------------------------------------------ latency, hang, concurrency


def test_latency_does_not_serialize_sixteen_concurrent_clients(
    make_sandbox: Callable[..., Sandbox],
) -> None:
    sandbox = make_sandbox(boxes=20, latency_ms=400)
    barrier = threading.Barrier(16)

    def one_call(_: int) -> tuple[int, float]:
        with requests.Session() as session:
            session.auth = ("demo", "")
            barrier.wait()
            began = time.perf_counter()
            status = session.get(sandbox.url("v1/pipelines"), timeout=20).status_code
            return status, time.perf_counter() - began

    began = time.perf_counter()
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(one_call, range(16)))
    wall = time.perf_counter() - began
    assert all(status == 200 for status, _ in results)
    assert all(elapsed >= 0.4 for _, elapsed in results), "every request carries the latency"
    assert wall < 16 * 0.4 / 2, "sixteen 400 ms requests overlapped"
    assert sandbox.stats()["max_in_flight"] >= 16


def test_hang_outlasts_the_client_timeout_without_blocking_others(
    make_sandbox: Callable[..., Sandbox],
) -> None:
    sandbox = make_sandbox(boxes=10, faults=["hang=30:route=/api/v1/snippets:times=1"])
    outcome: dict[str, Any] = {}

    def hanging_call() -> None:
        try:
            requests.get(sandbox.url("v1/snippets"), auth=("demo", ""), timeout=1.5)
            outcome["result"] = "answered"
        except requests.exceptions.ReadTimeout:
            outcome["result"] = "timed out"

    thread = threading.Thread(target=hanging_call)
    thread.start()
    poll(lambda: sandbox.stats()["in_flight"] >= 1, 10, "the hanging request to arrive")
    began = time.perf_counter()
    assert requests.get(sandbox.url("v1/users/me"), auth=("demo", ""), timeout=5).status_code == 200
    assert time.perf_counter() - began < 1.0
    thread.join(10)
    assert outcome["result"] == "timed out"
    second = requests.get(sandbox.url("v1/snippets"), auth=("demo", ""), timeout=5)
    assert second.status_code == 200 and isinstance(second.json(), list), "times=1: only once"
    began = time.perf_counter()
    sandbox.stop()
    assert time.perf_counter() - began < 5, "stopping cuts the hang short"


# ---------------------------------------------------------------------------- rate limit


def test_token_bucket_capacity_is_one_second_of_requests() -> None:
    now = [100.0]
    bucket = TokenBucket(4, clock=lambda: now[0])
    assert [bucket.take() for _ in range(4)] == [0.0] * 4
    wait = bucket.take()
    assert wait == pytest.approx(0.25)
    now[0] += 0.25
    assert bucket.take() == 0.0
    now[0] += 10
    assert [bucket.take() for _ in range(4)] == [0.0] * 4 and bucket.take() > 0
    assert retry_after_seconds(0.01) == 1 and retry_after_seconds(1.2) == 2


def test_rate_limit_answers_429_with_integer_retry_after(
    make_sandbox: Callable[..., Sandbox],
) -> None:
    sandbox = make_sandbox(boxes=5, rate_limit=5)
    with requests.Session() as session:
        session.auth = ("demo", "")
        began = time.perf_counter()
        responses = [session.get(sandbox.url("v1/users/me"), timeout=10) for _ in range(15)]
        elapsed = time.perf_counter() - began
    statuses = [r.status_code for r in responses]
    allowed = statuses.count(200)
    assert statuses[:5] == [200] * 5, "a full bucket holds one second of requests"
    assert allowed <= 5 + int(elapsed * 5) + 1
    limited = [r for r in responses if r.status_code == 429]
    assert limited
    for response in limited:
        assert re.fullmatch(r"[1-9][0-9]*", response.headers["Retry-After"])
        assert response.json()["success"] is False
    assert sandbox.stats()["responses_by_status"]["429"] == len(limited)


# ------------------------------------------------------------------ gone, malformed, revoked


def test_gone_boxes_are_listed_but_their_children_404(make_sandbox: Callable[..., Sandbox]) -> None:
    sandbox = make_sandbox(boxes=40, seed=4, faults=["gone=3"])
    again = make_sandbox(boxes=40, seed=4, faults=["gone=3"])
    gone = sandbox.stats()["faults"]["gone_box_keys"]
    assert len(gone) == 3 and gone == again.gone_box_keys == sandbox.gone_box_keys
    stats_over_http = requests.get(sandbox.url("__sandbox__/stats"), timeout=10).json()
    assert stats_over_http["faults"]["gone_box_keys"] == gone
    with requests.Session() as session:
        session.auth = ("demo", "")
        listed = {
            b["key"]
            for p in sandbox.account.pipelines
            for b in session.get(sandbox.url(f"v1/pipelines/{p.key}/boxes"), timeout=10).json()
        }
        assert set(gone) <= listed
        for key in gone:
            for path in (
                "v1/boxes/{k}",
                "v2/boxes/{k}/tasks",
                "v1/boxes/{k}/threads",
                "v2/boxes/{k}/comments",
                "v2/boxes/{k}/meetings",
                "v1/boxes/{k}/files",
            ):
                assert session.get(sandbox.url(path.format(k=key)), timeout=10).status_code == 404
        healthy = next(k for k in listed if k not in gone)
        assert session.get(sandbox.url(f"v2/boxes/{healthy}/tasks"), timeout=10).status_code == 200
    boxes = [sandbox.account.boxes_by_key[k] for k in gone]
    assert sandbox.stats()["faults"]["gone_children"] == {
        "box_tasks": sum(len(b.tasks) for b in boxes),
        "box_threads": sum(len(b.threads) for b in boxes),
        "box_comments": sum(len(b.comments) for b in boxes),
        "box_meetings": sum(len(b.meetings) for b in boxes),
        "box_files": sum(len(b.files) for b in boxes),
    }
    assert all(b.tasks or b.threads or b.comments or b.meetings or b.files for b in boxes)


def test_gone_can_be_limited_to_one_route(make_sandbox: Callable[..., Sandbox]) -> None:
    sandbox = make_sandbox(boxes=40, faults=[f"gone=2:route={TASKS_ROUTE}"])
    with requests.Session() as session:
        session.auth = ("demo", "")
        for key in sandbox.gone_box_keys:
            assert session.get(sandbox.url(f"v2/boxes/{key}/tasks"), timeout=10).status_code == 404
            assert (
                session.get(sandbox.url(f"v1/boxes/{key}/threads"), timeout=10).status_code == 200
            )
            assert session.get(sandbox.url(f"v1/boxes/{key}"), timeout=10).status_code == 200


def test_malformed_body(make_sandbox: Callable[..., Sandbox]) -> None:
    sandbox = make_sandbox(boxes=10, faults=["malformed:route=/api/v1/snippets:times=1"])
    with requests.Session() as session:
        session.auth = ("demo", "")
        broken = session.get(sandbox.url("v1/snippets"), timeout=10)
        assert broken.status_code == 200 and broken.headers["content-type"] == "application/json"
        with pytest.raises(json.JSONDecodeError):
            json.loads(broken.text)
        assert isinstance(session.get(sandbox.url("v1/snippets"), timeout=10).json(), list)
        assert session.get(sandbox.url("v1/users/me"), timeout=10).json()["key"]


def test_null_body(make_sandbox: Callable[..., Sandbox]) -> None:
    sandbox = make_sandbox(boxes=5, faults=["null:route=/api/v1/users/me:times=1"])
    with requests.Session() as session:
        session.auth = ("demo", "")
        broken = session.get(sandbox.url("v1/users/me"), timeout=10)
        assert broken.status_code == 200 and broken.headers["content-type"] == "application/json"
        assert broken.content == b"null"
        assert session.get(sandbox.url("v1/users/me"), timeout=10).json()["key"]
    assert sandbox.stats()["faults"]["injected"] == {"null:route=/api/v1/users/me:times=1": 1}


def test_key_revoked_after_n_calls(make_sandbox: Callable[..., Sandbox]) -> None:
    sandbox = make_sandbox(boxes=5, api_keys=["demo", "backup"], faults=["revoke-after=4"])
    statuses = [
        requests.get(sandbox.url("v1/users/me"), auth=("demo", ""), timeout=10).status_code
        for _ in range(7)
    ]
    assert statuses == [200] * 4 + [401] * 3
    revoked = requests.get(sandbox.url("v1/users/me"), auth=("demo", ""), timeout=10)
    assert revoked.json() == {"success": False, "error": "invalid api key"}
    assert (
        requests.get(
            sandbox.url("v1/users/me"), headers={"Authorization": "Bearer backup"}, timeout=10
        ).status_code
        == 200
    )
    faults = sandbox.stats()["faults"]
    assert faults["revoked_keys_count"] == 1 and faults["revoked_calls"] == 4
