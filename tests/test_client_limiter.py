"""The client-side limiter's shape: requests spread over each second, not sent in one burst."""

from __future__ import annotations

from typing import Any

import pytest

from streak_source.client import build_limiter


def windows(requests_per_second: float) -> list[tuple[int, int]]:
    limiter = build_limiter(requests_per_second)
    buckets = limiter.buckets() if callable(limiter.buckets) else limiter.buckets
    return [(rate.limit, rate.interval) for rate in buckets[0].rates]


@pytest.mark.parametrize(("rate", "expected"), [
    (10, [(1, 97), (10, 1000)]),  # Streak's 10/s: one call per 97 ms, never a burst of 10
    (40, [(4, 97), (40, 1000)]),
    (2.5, [(2, 800)]),  # below 10/s a second holds too few calls to split
])
def test_limiter_caps_every_second_and_about_every_tenth_of_it(rate: float, expected: list[tuple[int, int]]) -> None:
    assert windows(rate) == expected


def test_a_rate_that_is_not_positive_is_refused() -> None:
    with pytest.raises(ValueError, match="max_requests_per_second must be > 0"):
        build_limiter(0)


# -- the transport adapter override (dlt 1.31 keeps it in the private `Client._adapter`) ---------


def test_every_request_and_every_retry_goes_through_the_rate_limited_adapter(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fails if dlt stops mounting ``Client._adapter`` on its sessions: the limiter would be bypassed."""
    from concurrent.futures import ThreadPoolExecutor

    from streak_source.client import RateLimitedAdapter, StreakClient
    from tests.test_loader_support import BASE_URL, FakeStreak

    answers = iter([{"results": [], "hasNextPage": False}] * 10)
    fake = FakeStreak({"v1/snippets": lambda params: next(answers)}).install(monkeypatch)
    monkeypatch.setenv("RUNTIME__REQUEST_MAX_ATTEMPTS", "2")
    monkeypatch.setenv("RUNTIME__REQUEST_BACKOFF_FACTOR", "0")
    flaky = {"first": True}
    original = fake.answer

    def answer_503_once(adapter: Any, request: Any) -> Any:
        response = original(adapter, request)
        if flaky.pop("first", False):
            response.status_code = 503  # dlt's Client retries this: the retry must pass the adapter too
        return response

    monkeypatch.setattr(fake, "answer", answer_503_once)
    client = StreakClient("test-key", BASE_URL, max_requests_per_second=1000)
    with ThreadPoolExecutor(max_workers=3) as pool:  # one session per thread
        list(pool.map(lambda _: client.get_list("v1/snippets"), range(3)))
    assert len(fake.calls) == 4  # 3 calls + 1 retry
    assert all(adapter is client._adapter for adapter in fake.adapters)
    assert isinstance(client._adapter, RateLimitedAdapter)
    assert client.report.requests_sent == 4
