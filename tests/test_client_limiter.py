"""The client-side limiter's shape: requests spread over each second, not sent in one burst."""

from __future__ import annotations

import pytest

from streak_source.client import build_limiter


def windows(requests_per_second: float) -> list[tuple[int, int]]:
    limiter = build_limiter(requests_per_second)
    buckets = limiter.buckets() if callable(limiter.buckets) else limiter.buckets
    return [(rate.limit, rate.interval) for rate in buckets[0].rates]


@pytest.mark.parametrize(("rate", "expected"), [
    (10, [(1, 100), (10, 1000)]),  # Streak's 10/s: one call per 100 ms, never a burst of 10
    (40, [(4, 100), (40, 1000)]),
    (2.5, [(2, 800)]),  # below 10/s a second holds too few calls to split
])
def test_limiter_caps_every_second_and_every_tenth_of_it(rate: float, expected: list[tuple[int, int]]) -> None:
    assert windows(rate) == expected


def test_a_rate_that_is_not_positive_is_refused() -> None:
    with pytest.raises(ValueError, match="max_requests_per_second must be > 0"):
        build_limiter(0)
