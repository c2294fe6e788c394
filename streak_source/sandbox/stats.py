"""Request counters behind ``/__sandbox__/stats``.

Updated on the server's event-loop thread and read from test/benchmark threads, hence the lock.
Only API requests count; ``__sandbox__`` routes do not.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any


class RequestStats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_route: Counter[str] = Counter()
        self._by_status: Counter[str] = Counter()
        self._total = 0
        self._in_flight = 0
        self._max_in_flight = 0

    def begin(self, route: str) -> None:
        with self._lock:
            self._total += 1
            self._by_route[route] += 1
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)

    def end(self, status: int | None) -> None:
        """``status`` None: the request was cancelled before it had an answer."""
        with self._lock:
            self._in_flight -= 1
            if status is not None:
                self._by_status[str(status)] += 1

    def reset(self) -> None:
        with self._lock:
            self._by_route.clear()
            self._by_status.clear()
            self._total = 0
            self._max_in_flight = self._in_flight

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests_total": self._total,
                "requests_by_route": dict(sorted(self._by_route.items())),
                "responses_by_status": dict(sorted(self._by_status.items())),
                "in_flight": self._in_flight,
                "max_in_flight": self._max_in_flight,
            }
