"""Support for the loader tests (no tests here): a stubbed Streak transport, literal JSON per route.

``FakeStreak(routes)`` patches ``requests.adapters.HTTPAdapter.send`` (the transport *under* the
source's rate-limited adapter), so every request still passes the source's own adapter, limiter
and dlt's retrying client, and is answered from ``routes``: a map of path (below ``/api/``) to a
JSON body or to a function ``(params) -> body``. Unknown paths answer 404. ``calls`` records every
(path, params) asked for, and ``adapters`` the adapter instance that sent each request.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from requests.adapters import HTTPAdapter

BASE_URL = "https://streak.test/api/"

Route = Any | Callable[[dict[str, str]], Any]


class FakeStreak:
    def __init__(self, routes: Mapping[str, Route]) -> None:
        self.routes = dict(routes)
        self.calls: list[tuple[str, dict[str, str]]] = []
        self.adapters: list[HTTPAdapter] = []

    def install(self, monkeypatch: pytest.MonkeyPatch) -> FakeStreak:
        fake = self

        def send(adapter: HTTPAdapter, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
            return fake.answer(adapter, request)

        monkeypatch.setattr(HTTPAdapter, "send", send)
        monkeypatch.setenv("RUNTIME__REQUEST_MAX_ATTEMPTS", "1")
        return self

    def answer(self, adapter: HTTPAdapter, request: requests.PreparedRequest) -> requests.Response:
        parts = urlsplit(str(request.url))
        path = parts.path.split("/api/", 1)[-1]
        params = dict(parse_qsl(parts.query))
        self.calls.append((path, params))
        self.adapters.append(adapter)
        route = self.routes.get(path)
        response = requests.Response()
        response.request = request
        response.url = str(request.url)
        response.headers["Content-Type"] = "application/json"
        if route is None:
            response.status_code = 404
            response._content = b'{"success": false, "error": "not found"}'
            return response
        body = route(params) if callable(route) else route
        response.status_code = 200
        response._content = json.dumps(body).encode()
        return response

    def paths(self) -> list[str]:
        return [path for path, _ in self.calls]


def run_source(dlt_dirs: Any, report: Any = None, postgres_url: str | None = None, **source_args: Any) -> Any:
    """Load ``streak_source`` against the fake into the isolated DuckDB file (or Postgres); the pipeline."""
    import dlt

    from streak_source import streak_source

    destination = (dlt.destinations.postgres(postgres_url) if postgres_url
                   else dlt.destinations.duckdb(str(dlt_dirs.duckdb_path)))
    pipeline = dlt.pipeline(
        pipeline_name="streak_loader_test", pipelines_dir=str(dlt_dirs.pipelines_dir),
        destination=destination, dataset_name="crm",
    )
    args = {"api_key": "test-key", "base_url": BASE_URL, "max_requests_per_second": 1000, **source_args}
    pipeline.run(streak_source(report=report, **args))
    return pipeline


def query(dlt_dirs: Any, sql: str) -> list[tuple[Any, ...]]:
    import duckdb

    with duckdb.connect(str(dlt_dirs.duckdb_path), read_only=True) as con:
        return con.execute(sql).fetchall()
