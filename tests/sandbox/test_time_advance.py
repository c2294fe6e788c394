"""Moving a served sandbox on: ``POST __sandbox__/advance`` checks its input, and a request never
sees half a day (the account is moved on under the lock every request is answered under)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
import requests

from streak_source.sandbox import Sandbox

pytestmark = pytest.mark.timeout(120)


def test_advance_rejects_bad_days_and_the_hostile_account(
    make_sandbox: Callable[..., Sandbox],
) -> None:
    sandbox = make_sandbox(boxes=20)
    for bad in ("-1", "x", "99999"):
        response = requests.post(
            sandbox.url("__sandbox__/advance"), params={"days": bad}, timeout=10
        )
        assert response.status_code == 400 and response.json()["success"] is False
    assert sandbox.day == 0
    hostile = make_sandbox(boxes=25, account="hostile")
    assert requests.post(hostile.url("__sandbox__/advance"), timeout=10).status_code == 400
    assert hostile.day == 0


def test_requests_during_advance_see_one_whole_day_or_the_next(
    make_sandbox: Callable[..., Sandbox],
) -> None:
    sandbox = make_sandbox(boxes=200, rates={"changed": 0.3, "created": 0.05})
    pipeline = sandbox.account.pipelines[0].key
    path = f"v1/pipelines/{pipeline}/boxes"
    seen: list[bytes] = []
    stop = threading.Event()

    def read() -> None:
        with requests.Session() as session:
            session.auth = (sandbox.api_key, "")
            while not stop.is_set():
                seen.append(session.get(sandbox.url(path), timeout=30).content)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for _ in range(3):
            sandbox.advance(1)
    finally:
        stop.set()
        reader.join(30)
    days = [
        requests.get(
            make_sandbox(boxes=200, day=day, rates={"changed": 0.3, "created": 0.05}).url(path),
            auth=("demo", ""),
            timeout=30,
        ).content
        for day in range(4)
    ]
    assert seen and set(seen) <= set(days)
