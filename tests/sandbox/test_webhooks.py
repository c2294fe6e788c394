"""Sandbox webhooks (streak_api.md 6.18): the management routes, and delivery on ``advance``.

Deliveries go to a small recording HTTP server that answers the statuses a test scripts.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from streak_source.sandbox import Sandbox
from streak_source.sandbox.endpoints import WRITE_ENDPOINTS

TOKEN = "sandbox-hook-token-31337"


class Target:
    """Records deliveries; answers ``statuses`` in turn (then 200)."""

    def __init__(self) -> None:
        self.statuses: list[int] = []
        self.received: list[tuple[str, str | None, Any]] = []
        self.lock = threading.Lock()
        target = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with target.lock:
                    status = target.statuses.pop(0) if target.statuses else 200
                    if status == 200:
                        target.received.append((self.path, self.headers.get("X-Streak-Webhook-Token"), json.loads(body)))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture()
def target() -> Iterator[Target]:
    t = Target()
    yield t
    t.server.shutdown()
    t.server.server_close()


@pytest.fixture()
def sb() -> Iterator[Sandbox]:
    with Sandbox(boxes=200, seed=11, anchor_date="2025-03-14", webhook_backoff_s=0.01, webhook_attempts=4) as sandbox:
        yield sandbox


def create(sb: Sandbox, event: str, url: str, token: str | None = TOKEN, **scope: str) -> requests.Response:
    body: dict[str, Any] = {"event": event, "targetUrl": url}
    if token is not None:
        body["token"] = token
    return requests.post(sb.url("v2/webhooks"), params=scope, json=body, auth=(sb.api_key, ""), timeout=30)


def busiest_pipeline(sb: Sandbox) -> str:
    return max(sb.account.pipelines, key=lambda p: len(p.boxes)).key


def advance_until_moved(sb: Sandbox) -> None:
    """Advance day by day until the busiest pipeline has a BOX_CHANGE_STAGE (deterministic seed)."""
    pk, start = busiest_pipeline(sb), sb.day
    for _ in range(20):
        sb.advance(1)
        if any(c["type"] == "BOX_CHANGE_STAGE" and c["pipeline_key"] == pk for c in sb.changes(start)):
            return
    raise AssertionError("no move in 20 days")


def test_write_routes_are_listed() -> None:
    assert [(e.method, e.path) for e in WRITE_ENDPOINTS] == [
        ("POST", "v2/webhooks"),
        ("POST", "v2/webhooks/{webhook_key}"),
        ("DELETE", "v2/webhooks/{webhook_key}"),
    ]


def test_create_list_get_delete(sb: Sandbox, target: Target) -> None:
    pk = busiest_pipeline(sb)
    made = create(sb, "BOX_CREATE", target.url + "a", pipelineKey=pk)
    assert made.status_code == 200, made.text
    hook = made.json()
    assert hook["event"] == "BOX_CREATE" and hook["pipelineKey"] == pk and hook["key"]
    auth = (sb.api_key, "")
    listed = requests.get(sb.url(f"v2/pipelines/{pk}/webhooks"), auth=auth, timeout=30)
    assert [h["key"] for h in listed.json()] == [hook["key"]]
    assert TOKEN not in listed.text  # the token is never served back
    assert requests.get(sb.url(f"v2/webhooks/{hook['key']}"), auth=auth, timeout=30).json()["key"] == hook["key"]
    team = sb.account.teams[0].key
    team_hook = create(sb, "CONTACT_CREATE", target.url + "c", teamKey=team)
    assert team_hook.status_code == 200
    assert len(requests.get(sb.url(f"v2/teams/{team}/webhooks"), auth=auth, timeout=30).json()) == 1
    edited = requests.post(sb.url(f"v2/webhooks/{hook['key']}"), json={"event": "BOX_EDIT"}, auth=auth, timeout=30)
    assert edited.status_code == 200 and edited.json()["event"] == "BOX_EDIT"
    assert sb.server.webhooks.get(hook["key"]).token == TOKEN  # kept when not given
    bad = requests.post(sb.url(f"v2/webhooks/{hook['key']}"), json={"event": "ORG_CREATE"}, auth=auth, timeout=30)
    assert bad.status_code == 400
    assert requests.delete(sb.url(f"v2/webhooks/{hook['key']}"), auth=auth, timeout=30).json() == {"success": True}
    assert requests.delete(sb.url(f"v2/webhooks/{hook['key']}"), auth=auth, timeout=30).status_code == 404
    assert requests.get(sb.url(f"v2/pipelines/{pk}/webhooks"), auth=auth, timeout=30).json() == []
    assert sb.stats()["requests_by_route"]["/api/v2/webhooks"] == 2


@pytest.mark.parametrize(
    ("event", "url", "scope", "status"),
    [
        ("BOX_CREATED", "http://x.test/", "pipeline", 400),  # not a Streak event
        ("CONTACT_CREATE", "http://x.test/", "pipeline", 400),  # a team event on a pipeline
        ("BOX_CREATE", "ftp://x.test/", "pipeline", 400),
        ("BOX_CREATE", "http://x.test/", "none", 400),
        ("BOX_CREATE", "http://x.test/", "unknown", 404),
    ],
)
def test_create_refuses_bad_input(sb: Sandbox, event: str, url: str, scope: str, status: int) -> None:
    params = {"pipeline": {"pipelineKey": busiest_pipeline(sb)}, "none": {}, "unknown": {"pipelineKey": sb.account.teams[0].key}}[scope]
    answer = create(sb, event, url, **params)
    assert answer.status_code == status, answer.text
    assert answer.json()["success"] is False


def test_create_needs_auth(sb: Sandbox) -> None:
    answer = requests.post(sb.url("v2/webhooks"), json={}, timeout=30)
    assert answer.status_code == 401


def test_advance_delivers_arrays_of_objects_with_the_token(sb: Sandbox, target: Target) -> None:
    pk = busiest_pipeline(sb)
    kinds = ("BOX_CHANGE_STAGE", "TASK_CREATE", "COMMENT_CREATE", "BOX_CREATE")
    for kind in kinds:
        assert create(sb, kind, target.url + kind, pipelineKey=pk).status_code == 200
    sb.advance(5)
    assert sb.wait_for_deliveries(60)
    truth = [c for c in sb.changes() if c["pipeline_key"] == pk and c["type"] in kinds]
    assert truth, "the account should change in 5 days"
    got = [(path.strip("/"), obj) for path, _, body in target.received for obj in body]
    assert all(token == TOKEN for _, token, _ in target.received)
    assert all(isinstance(body, list) for _, _, body in target.received)
    assert sorted((kind, obj["key"], obj.get("lastStageChangeTimestamp") if kind == "BOX_CHANGE_STAGE" else obj["lastUpdatedTimestamp"]) for kind, obj in got) == sorted(
        (c["type"], c["key"], c["at"]) for c in truth
    )
    moves = [obj for kind, obj in got if kind == "BOX_CHANGE_STAGE"]
    stage_of = {(c["key"], c["at"]): c["stage_key"] for c in truth if c["type"] == "BOX_CHANGE_STAGE"}
    assert all(obj["stageKey"] == stage_of[(obj["key"], obj["lastStageChangeTimestamp"])] for obj in moves)
    log = sb.deliveries()
    assert log and all(entry["outcome"] == "delivered" for entry in log)
    assert TOKEN not in json.dumps(log) and TOKEN not in json.dumps(sb.stats())


def test_non_2xx_is_retried_with_backoff_then_delivered(sb: Sandbox, target: Target) -> None:
    pk = busiest_pipeline(sb)
    create(sb, "BOX_CHANGE_STAGE", target.url, pipelineKey=pk)
    target.statuses = [500, 503]
    advance_until_moved(sb)
    assert sb.wait_for_deliveries(60)
    outcomes = [e["outcome"] for e in sb.deliveries()]
    assert outcomes[:2] == ["retry", "retry"] and set(outcomes[2:]) == {"delivered"}
    assert target.received


def test_retries_are_bounded(sb: Sandbox, target: Target) -> None:
    create(sb, "BOX_CHANGE_STAGE", target.url, pipelineKey=busiest_pipeline(sb))
    target.statuses = [500] * 100
    advance_until_moved(sb)
    assert sb.wait_for_deliveries(60)
    log = sb.deliveries()
    assert [e["attempt"] for e in log] == [1, 2, 3, 4]
    assert log[-1]["outcome"] == "given up"


def test_410_deletes_the_webhook(sb: Sandbox, target: Target) -> None:
    pk = busiest_pipeline(sb)
    create(sb, "BOX_CHANGE_STAGE", target.url, pipelineKey=pk)
    target.statuses = [410]
    advance_until_moved(sb)
    assert sb.wait_for_deliveries(60)
    assert [e["outcome"] for e in sb.deliveries()] == ["webhook deleted"]
    listed = requests.get(sb.url(f"v2/pipelines/{pk}/webhooks"), auth=(sb.api_key, ""), timeout=30).json()
    assert listed == []
    sb.advance(1)
    assert sb.wait_for_deliveries(60)
    assert len(sb.deliveries()) == 1 and not target.received


def test_an_unreachable_target_does_not_block_the_server(sb: Sandbox, target: Target) -> None:
    create(sb, "BOX_CHANGE_STAGE", "http://127.0.0.1:9/", pipelineKey=busiest_pipeline(sb))
    advance_until_moved(sb)
    # the API answers while deliveries fail and wait for retries
    assert requests.get(sb.url("v1/pipelines"), auth=(sb.api_key, ""), timeout=5).status_code == 200
    assert sb.wait_for_deliveries(60)
    assert sb.deliveries()[-1]["outcome"] == "given up"
    assert all(e["status"] is None and e["error"] for e in sb.deliveries())
