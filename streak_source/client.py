"""The HTTP side of the source: auth, one shared rate limiter, retries, errors, Streak's paging shapes.

Every request of a run goes through one ``requests`` adapter that waits on one limiter, so the
client-side rate limit holds across all extract threads *and* across dlt's retries (which re-send
the prepared request below the session, where a limiter in an auth hook would never see them).
dlt's ``Client`` supplies the retries: 429 and 5xx with ``Retry-After`` honoured, connection errors
and timeouts, configured by ``[runtime] request_max_attempts`` etc.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, cast
from urllib.parse import quote

import requests
from dlt.sources.helpers.requests import Client
from pyrate_limiter import AbstractBucket, InMemoryBucket, Limiter, Rate, RateItem
from requests.adapters import HTTPAdapter

from streak_source import paging
from streak_source.config import without_userinfo
from streak_source.settings import DEFAULT_MAX_REQUESTS_PER_SECOND


class StreakAPIError(RuntimeError):
    """A Streak call failed for good (after retries). The message names the endpoint, never the key."""


class StreakAuthError(StreakAPIError):
    """Streak rejected the API key (401)."""


class StreakNotFound(StreakAPIError):
    """404: the entity is gone (e.g. a box deleted while the run was reading it)."""


class StreakPagingError(StreakAPIError, paging.PagingError):
    """A listing that repeats itself or never ends (see streak_source/paging.py)."""


@dataclass
class RunReport:
    """What a run did, for the end-of-run summary. Thread-safe: extract workers update it."""

    requests_sent: int = 0
    """Every HTTP request that left the process, retries included (= the API calls Streak counts)."""
    boxes_read: int = 0
    skipped_boxes: set[str] = field(default_factory=set)
    skipped_calls: Counter[str] = field(default_factory=Counter)
    """Child calls not made because the box's counters said there was nothing to fetch."""
    decode_statuses: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    """Records quarantined in ``rejected_records``, by the table they were meant for."""
    renamed_columns: Counter[str] = field(default_factory=Counter)
    """Names suffixed because they clashed with another name of the same object, by table."""
    history_calls: int = 0
    """Per-box newsfeed calls (``box_newsfeed``) made for stage history, one per box the rule in
    streak_source/history_calls.py picked, a vanished box's 404 included. Part of ``requests_sent``
    too (which also counts retries); the summary prints it as "history calls: N"."""
    history_boxes: int = 0
    """Boxes whose per-box newsfeed was read (``history_calls`` less the boxes that had vanished)."""
    history_unchanged: int = 0
    """Boxes not asked for their newsfeed: unchanged since the previous run, or no previous run."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def request_sent(self) -> None:
        with self._lock:
            self.requests_sent += 1

    def boxes_listed(self, count: int) -> None:
        with self._lock:
            self.boxes_read += count

    def box_vanished(self, box_key: str) -> None:
        with self._lock:
            self.skipped_boxes.add(box_key)

    def call_skipped(self, table: str) -> None:
        with self._lock:
            self.skipped_calls[table] += 1

    def history_call(self, fetched: bool) -> None:
        """One per-box newsfeed call made; ``fetched`` False when the box had vanished (404)."""
        with self._lock:
            self.history_calls += 1
            self.history_boxes += int(fetched)

    def history_skipped(self) -> None:
        with self._lock:
            self.history_unchanged += 1

    def decoded(self, statuses: Mapping[str, int]) -> None:
        with self._lock:
            self.decode_statuses.update(statuses)

    def records_rejected(self, table: str, count: int) -> None:
        with self._lock:
            self.rejected[table] += count

    def columns_renamed(self, table: str, count: int) -> None:
        with self._lock:
            self.renamed_columns[table] += count


SMOOTHING_SLACK: Final = 0.97
"""The short window's length as a share of a tenth of the second's (see :func:`build_limiter`)."""


def build_limiter(requests_per_second: float) -> Limiter:
    """A limiter that paces requests evenly instead of in one burst per second.

    Two windows: at most ``rate`` in any second, and at most a tenth of it in any 97 ms, so the
    requests leave spread out and a server-side token bucket of the same rate never runs dry. The
    short window is 3 % looser than the second so that it never binds: each wait for a window
    overruns by up to a millisecond (whole-ms timestamps, sleep overshoot), which at one wait per
    4 calls cost 1.2 % of the rate (39.45 of 40 req/s measured); the second's window, waited on
    once per 40 calls, loses 0.1 %.
    """
    if requests_per_second <= 0:
        raise ValueError(f"max_requests_per_second must be > 0, got {requests_per_second!r}")
    per_second = max(1, round(requests_per_second))
    window_ms = round(per_second * 1000 / requests_per_second)
    rates = [Rate(per_second, window_ms)]
    if per_second >= 10:
        rates.insert(0, Rate(max(1, per_second // 10), max(1, round(window_ms * SMOOTHING_SLACK / 10))))
    return Limiter(InMemoryBucket(rates), buffer_ms=1)


LIMITER_KEY = "streak"


class RateLimitedAdapter(HTTPAdapter):
    """Transport adapter: waits for the shared limiter before every real request and counts it."""

    def __init__(self, limiter: Limiter, pool_maxsize: int, report: RunReport) -> None:
        super().__init__(pool_connections=4, pool_maxsize=pool_maxsize)
        self._limiter = limiter
        self._report = report
        self._turn = threading.Lock()

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.wait_for_slot()
        self._report.request_sent()
        return super().send(request, *args, **kwargs)

    def wait_for_slot(self) -> None:
        """Block until the shared limiter admits one request; waiters are served one at a time.

        Not pyrate-limiter's own blocking mode: in 4.5 a blocked caller re-tries with its first
        timestamp plus the time it meant to sleep, which falls behind the clock whenever a sleep
        overruns, so under contention some threads never get a slot (measured: 4 of 8 extract
        threads starved for a whole 130 s run, capping a 40 req/s limit at 37). Here the waiters
        queue on a lock, the one at the head tries with the current time and sleeps exactly until
        the limiter's next free slot: no starvation, no thundering herd, no busy polling.
        """
        with self._turn:
            while not self._limiter.try_acquire(LIMITER_KEY, blocking=False):
                time.sleep(self._ms_to_next_slot() / 1000)

    def _ms_to_next_slot(self) -> int:
        """Milliseconds until the limiter has room, from the denial it just recorded (at least 1)."""
        factory = self._limiter.bucket_factory
        item = cast(RateItem, factory.wrap_item(LIMITER_KEY, 1))  # in-memory bucket: never awaitable
        wait_ms = cast(int, cast(AbstractBucket, factory.get(item)).waiting(item))
        return max(1, wait_ms)


class _RateLimitedClient(Client):
    """dlt's retrying client with our adapter mounted on every per-thread session.

    Relies on a private detail of dlt 1.31: ``Client.__init__`` stores its transport adapter in
    ``self._adapter`` and ``Client._make_session`` mounts that one object for http:// and https://
    on each thread's session; replacing ``_adapter`` before the first session is made is how the
    limiter sees every real request, dlt's retries included. dlt has no public hook for it.
    tests/test_client_limiter.py fails if dlt stops routing requests (or retries) through it.
    """

    def __init__(self, adapter: RateLimitedAdapter, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._adapter = adapter
        self.max_attempts: int | None = None
        self.timeout: Any = None

    def update_from_config(self, config: Any) -> None:
        """Also remember the attempts and timeout in effect, so a final error can say them."""
        super().update_from_config(config)
        self.max_attempts = config.request_max_attempts
        self.timeout = config.request_timeout


class StreakClient:
    """Reads Streak's API. One instance per run; safe to share between threads."""

    def __init__(
        self,
        api_key: str,
        base_url: str,
        max_requests_per_second: float = DEFAULT_MAX_REQUESTS_PER_SECOND,
        max_connections: int = 16,
        report: RunReport | None = None,
    ) -> None:
        if not api_key or not str(api_key).strip():
            raise StreakAuthError("no Streak API key given")
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self._shown_url = without_userinfo(self.base_url)
        self.report = report or RunReport()
        self._adapter = RateLimitedAdapter(
            build_limiter(max_requests_per_second), max_connections, self.report
        )
        self._http = _RateLimitedClient(
            self._adapter,
            raise_for_status=False,
            max_connections=max_connections,
            session_attrs={"auth": (str(api_key).strip(), "")},
        )
        self._http.configure()  # picks up [runtime] request_timeout, request_max_attempts, ...

    def url_for(self, path_template: str, **path_params: str) -> str:
        """The URL of one call; a missing key refuses the call (no ``/v1/boxes/None/threads``)."""
        for name, value in path_params.items():
            if value is None or not str(value).strip() or str(value) == "None":
                raise StreakAPIError(f"GET {path_template}: refusing to call it with {name}={value!r}")
        quoted = {name: quote(str(value), safe="") for name, value in path_params.items()}
        return self.base_url + path_template.format(**quoted)

    def get_json(self, path_template: str, params: Mapping[str, Any] | None = None, **path_params: str) -> Any:
        """GET one endpoint and return its JSON; raise a one-line, key-free error on failure."""
        url = self.url_for(path_template, **path_params)
        endpoint = f"GET {path_template}"
        # Only exception *type names* go into messages: requests' texts can carry the prepared
        # request, and `from None` keeps them (and the session's auth) out of tracebacks.
        try:
            response = self._http.get(url, params=dict(params or {}))
        except requests.Timeout as exc:
            raise StreakAPIError(
                f"{endpoint}: Streak did not answer in time{self._after_tries(timeout=True)} ({type(exc).__name__})"
            ) from None
        except requests.ConnectionError as exc:
            raise StreakAPIError(
                f"{endpoint}: cannot connect to {self._shown_url}{self._after_tries()} ({type(exc).__name__})"
            ) from None
        except requests.RequestException as exc:  # e.g. ChunkedEncodingError: the connection broke mid-body
            raise StreakAPIError(
                f"{endpoint}: the connection to {self._shown_url} broke{self._after_tries()} ({type(exc).__name__})"
            ) from None
        status = response.status_code
        if status == 401:
            raise StreakAuthError(f"{endpoint}: Streak rejected the API key (401 Unauthorized)")
        if status == 404:
            raise StreakNotFound(f"{endpoint}: not found (404) for {_describe(path_params)}")
        if status == 429:
            raise StreakAPIError(
                f"{endpoint}: Streak still answered 429 Too Many Requests{self._after_tries()}; "
                "lower sources.streak.max_requests_per_second"
            )
        if status >= 500:
            raise StreakAPIError(f"{endpoint}: HTTP {status} {_error_text(response)}".rstrip() + self._after_tries())
        if status >= 400:
            raise StreakAPIError(f"{endpoint}: HTTP {status} {_error_text(response)}".rstrip())
        try:
            return response.json()
        except (ValueError, json.JSONDecodeError):
            raise StreakAPIError(
                f"{endpoint}: Streak sent a body that is not valid JSON ({len(response.content)} bytes)"
            ) from None

    def get_object(self, path_template: str, params: Mapping[str, Any] | None = None, **path_params: str) -> dict[str, Any]:
        """GET an endpoint Streak's reference promises an object from (e.g. ``v1/users/me``). Anything
        else, ``null`` included, is a broken response like a body that is not JSON: the run stops."""
        body = self.get_json(path_template, params, **path_params)
        if not isinstance(body, dict):
            raise StreakAPIError(f"GET {path_template}: Streak sent {paging.json_kind(body)} where its reference "
                                 "promises an object")
        return body

    def _after_tries(self, timeout: bool = False) -> str:
        """`` after 5 tries`` (`` of 60 s`` each, for timeouts): what was tried before giving up."""
        attempts = self._http.max_attempts
        if not attempts:
            return ""
        note = f" after {attempts} {'try' if attempts == 1 else 'tries'}"
        if timeout and isinstance(self._http.timeout, (int, float)) and not isinstance(self._http.timeout, bool):
            note += f" of {self._http.timeout:g} s"
        return note

    # -- Streak's paging shapes (streak_source/paging.py, with its guards) --------------------

    def get_list(self, path_template: str, params: Mapping[str, Any] | None = None, **path_params: str) -> list[Any]:
        """v1 lists: one call, a plain JSON array (an envelope is tolerated)."""
        return paging.items_of(self.get_json(path_template, params, **path_params), path_template, StreakAPIError)

    def iter_page_envelopes(
        self, path_template: str, limit: int, params: Mapping[str, Any] | None = None, *,
        expected: int | None = None, **path_params: str,
    ) -> Iterator[list[Any]]:
        """v2 lists (``page`` + ``limit``); see :func:`streak_source.paging.iter_page_envelopes`."""
        return paging.iter_page_envelopes(self.get_json, path_template, limit, params, expected=expected,
                                          error=StreakPagingError, **path_params)

    def iter_cursor_pages(
        self, path_template: str, limit: int, params: Mapping[str, Any] | None = None, *,
        expected: int | None = None, **path_params: str,
    ) -> Iterator[list[Any]]:
        """Contacts/organizations (``cursor``); see :func:`streak_source.paging.iter_cursor_pages`."""
        return paging.iter_cursor_pages(self.get_json, path_template, limit, params, expected=expected,
                                        error=StreakPagingError, **path_params)


def _error_text(response: requests.Response) -> str:
    """Streak's ``error`` message, cut short; never echoes request headers."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return f"({body['error'][:200]})"
    return ""


def _describe(path_params: Mapping[str, str]) -> str:
    return ", ".join(f"{name}={value}" for name, value in path_params.items()) or "this endpoint"
