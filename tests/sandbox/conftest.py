"""Fixtures for the sandbox tests.

Fixtures
    shared_sandbox   (session) the default account (300 boxes, seed 7, anchor ANCHOR) served live;
                     for read-only tests: other tests share it, so do not rely on its stats.
    api              (session) an ``AuthedSession`` for ``shared_sandbox``:
                     ``api.get_path("v1/pipelines", limit=5) -> requests.Response``.
    crawl            (session) everything ``shared_sandbox`` serves, fetched once (see its doc).
    make_sandbox     factory: ``make_sandbox(**Sandbox kwargs)`` starts a private sandbox (40 boxes
                     and the pinned anchor unless given) and stops it at teardown.
    session_factory  factory: ``session_factory(sandbox, api_key=None) -> AuthedSession``, closed at
                     teardown.

Also re-exports the root conftest's helpers (``wait_until``, ``find_free_port``, ...): pytest
imports every ``conftest.py`` as the module ``conftest`` and the last one imported wins in
``sys.modules``, so without this, ``from conftest import wait_until`` in test modules elsewhere
would break whenever this directory is collected first.
"""

from __future__ import annotations

import importlib.util
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from streak_source.sandbox import Sandbox

ANCHOR = "2025-03-14"
"""Pinned 'today' so every run sees the same account and the same bytes."""
SMALL_BOXES = 40


def _root_conftest_helpers() -> dict[str, Any]:
    """The root conftest's public helpers (no fixtures, no hooks), loaded under a private name."""
    path = Path(__file__).resolve().parent.parent / "conftest.py"
    spec = importlib.util.spec_from_file_location("_streak_root_conftest_helpers", path)
    if spec is None or spec.loader is None:  # pragma: no cover - the root conftest is in the repo
        return {}
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return {
        name: value
        for name, value in vars(module).items()
        if not name.startswith(("_", "pytest_"))
        and not isinstance(value, types.ModuleType)
        and type(value).__name__ != "FixtureFunctionDefinition"
    }


globals().update({k: v for k, v in _root_conftest_helpers().items() if k not in globals()})


class AuthedSession(requests.Session):
    """A session bound to one sandbox: ``get_path("v1/pipelines", limit=5)``."""

    def __init__(self, base_url: str, api_key: str) -> None:
        super().__init__()
        self.base_url = base_url
        self.auth = (api_key, "")

    def get_path(self, path: str, **params: Any) -> requests.Response:
        return self.get(self.base_url + path, params=params or None, timeout=30)


@pytest.fixture(scope="session")
def shared_sandbox() -> Iterator[Sandbox]:
    with Sandbox(anchor_date=ANCHOR) as sandbox:
        yield sandbox


@pytest.fixture(scope="session")
def api(shared_sandbox: Sandbox) -> Iterator[AuthedSession]:
    with AuthedSession(shared_sandbox.base_url, shared_sandbox.api_key) as session:
        yield session


@pytest.fixture
def make_sandbox() -> Iterator[Callable[..., Sandbox]]:
    started: list[Sandbox] = []

    def make(**kwargs: Any) -> Sandbox:
        kwargs.setdefault("boxes", SMALL_BOXES)
        kwargs.setdefault("anchor_date", ANCHOR)
        sandbox = Sandbox(**kwargs).start()
        started.append(sandbox)
        return sandbox

    yield make
    for sandbox in started:
        sandbox.stop()


@pytest.fixture
def session_factory() -> Iterator[Callable[..., AuthedSession]]:
    sessions: list[AuthedSession] = []

    def make(sandbox: Sandbox, api_key: str | None = None) -> AuthedSession:
        session = AuthedSession(sandbox.base_url, api_key or sandbox.api_key)
        sessions.append(session)
        return session

    yield make
    for session in sessions:
        session.close()


@pytest.fixture(scope="session")
def crawl(api: AuthedSession) -> dict[str, Any]:
    """Everything the shared sandbox serves, fetched once with the largest pages.

    Keys: me, teams, team (single GET), team_users, contacts, organizations, pipelines,
    pipeline (key -> single GET), stages / fields / boxes / newsfeed (pipeline key -> payload),
    snippets, box (box key -> single GET, for a sample), and tasks / threads / comments / meetings /
    files (box key -> list), fetched for EVERY box, whatever its counters say.
    """

    def ok(path: str, **params: Any) -> Any:
        response = api.get_path(path, **params)
        assert response.status_code == 200, (path, response.status_code, response.text[:200])
        return response.json()

    teams = ok("v2/users/me/teams", limit=1000)["results"]
    team_key = teams[0]["key"]
    result: dict[str, Any] = {
        "me": ok("v1/users/me"),
        "teams": teams,
        "team": ok(f"v2/teams/{team_key}"),
        "team_users": ok(f"v2/teams/{team_key}/users", limit=1000)["results"],
        "contacts": ok(f"v2/teams/{team_key}/contacts", limit=1000)["results"],
        "organizations": ok(f"v2/teams/{team_key}/organizations", limit=1000)["results"],
        "pipelines": ok("v1/pipelines"),
        "snippets": ok("v1/snippets"),
        "pipeline": {},
        "stages": {},
        "fields": {},
        "boxes": {},
        "newsfeed": {},
        "box": {},
        "tasks": {},
        "threads": {},
        "comments": {},
        "meetings": {},
        "files": {},
    }
    for pipeline in result["pipelines"]:
        key = pipeline["key"]
        result["pipeline"][key] = ok(f"v1/pipelines/{key}")
        result["stages"][key] = ok(f"v1/pipelines/{key}/stages")
        result["fields"][key] = ok(f"v1/pipelines/{key}/fields")
        result["boxes"][key] = ok(f"v1/pipelines/{key}/boxes")
        result["newsfeed"][key] = ok(f"v1/pipelines/{key}/newsfeed", detailLevel="ALL")
        for index, box in enumerate(result["boxes"][key]):
            box_key = box["key"]
            if index < 20:
                result["box"][box_key] = ok(f"v1/boxes/{box_key}")
            result["tasks"][box_key] = ok(f"v2/boxes/{box_key}/tasks", limit=1000)["results"]
            result["threads"][box_key] = ok(f"v1/boxes/{box_key}/threads")
            result["comments"][box_key] = ok(f"v2/boxes/{box_key}/comments", limit=1000)["results"]
            result["meetings"][box_key] = ok(f"v2/boxes/{box_key}/meetings", limit=1000)["results"]
            result["files"][box_key] = ok(f"v1/boxes/{box_key}/files")
    return result
