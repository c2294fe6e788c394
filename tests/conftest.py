"""Shared test plumbing (the root conftest: keep it small and generic).

Fixtures
    dlt_isolated         fresh temp dir; DLT_DATA_DIR, DLT_LOCAL_DIR, STREAK_DUCKDB_PATH point
                         into it, DLT_PROJECT_DIR at the repo root. Returns
                         DltDirs(root, duckdb_path, pipelines_dir).
    postgres_url         (session) URL of a reachable PostgreSQL server (STREAK_TEST_POSTGRES_URL).
    fresh_postgres_url   URL of a new, empty database on that server, dropped after the test.
    postgres_warehouse   dlt_isolated + fresh_postgres_url + the env that makes the project's
                         `warehouse` destination that database. Returns the URL.
    chromium_executable  (session) path of a Chromium binary, from STREAK_TEST_CHROMIUM or
                         /usr/bin/chromium.
    browser              a Playwright (sync API) Chromium browser, closed after the test.
    page                 a page in a fresh context of `browser` (1280x800), closed after the test.
    free_port            an unused TCP port on 127.0.0.1 (an int).
    wait_until           (session) the function
                         wait_until(predicate, timeout=30, what=..., interval=0.05): polls
                         until predicate() is truthy and returns that value, else raises
                         TimeoutError naming `what`. Use it instead of fixed sleeps.
    port_is_open         (session) the function port_is_open(port, host="127.0.0.1") -> bool.
    find_free_port       (session) the function find_free_port(host="127.0.0.1") -> int.
    chromium_args        (session) CHROMIUM_ARGS, for launching chromium by hand.
    skip_or_fail         (session) the function skip_or_fail(reason): skip, or fail under
                         STREAK_REQUIRE_SERVICES=1; for fixtures of other services.

The helpers are fixtures (session-scoped, so fixtures of any scope can use them) rather than
``from conftest import ...``: that import breaks as soon as a subdirectory gets its own
conftest.py (pytest then maps the name ``conftest`` to the last one imported).

Services. A test that needs PostgreSQL or Chromium is skipped, with the reason, when the service
is missing, so ``pip install -r requirements.txt && python -m pytest`` is green on a bare machine.
With ``STREAK_REQUIRE_SERVICES=1`` (set by .ci/run, which installs and starts them) the same
fixtures fail instead, so CI cannot go green by skipping.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple, TypeVar
from urllib.parse import urlsplit, urlunsplit

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

POSTGRES_URL_ENV = "STREAK_TEST_POSTGRES_URL"
CHROMIUM_ENV = "STREAK_TEST_CHROMIUM"
REQUIRE_SERVICES_ENV = "STREAK_REQUIRE_SERVICES"

CHROMIUM_ARGS: tuple[str, ...] = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # Without these Chromium keeps calling Google's hosts, which this closed network refuses.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
"""Flags for launching Debian's chromium headless as root on a machine with no outside network."""

# dlt's anonymous telemetry would try to reach the internet from every pipeline run.
os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")

T = TypeVar("T")


# --------------------------------------------------------------------------- generic helpers


def _services_required() -> bool:
    """True when STREAK_REQUIRE_SERVICES is set to a true value (CI): missing services fail."""
    return os.environ.get(REQUIRE_SERVICES_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def _skip_or_fail(reason: str) -> None:
    """Skip the test with ``reason``, or fail it when STREAK_REQUIRE_SERVICES=1."""
    if _services_required():
        pytest.fail(f"{reason} [{REQUIRE_SERVICES_ENV}=1: not skipping]", pytrace=False)
    pytest.skip(reason)


def _find_free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that nothing listens on right now (the OS picks it; bind to it promptly)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _port_is_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    """True if a TCP connection to host:port succeeds (a server is accepting)."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _wait_until(
    predicate: Callable[[], T],
    timeout: float = 30.0,
    what: str = "condition",
    interval: float = 0.05,
) -> T:
    """Poll ``predicate`` until it returns a truthy value, and return that value.

    Raises TimeoutError naming ``what`` once ``timeout`` seconds have passed. Exceptions raised by
    the predicate propagate (catch them inside it if they mean "not yet"). Use this instead of
    fixed sleeps, e.g. ``wait_until(lambda: port_is_open(port), 20, f"uvicorn on :{port}")``.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


def _redact(url: str) -> str:
    """The URL with its password replaced by ***, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


@pytest.fixture
def free_port() -> int:
    """An unused TCP port on 127.0.0.1."""
    return _find_free_port()


@pytest.fixture(scope="session")
def find_free_port() -> Callable[..., int]:
    """The function ``find_free_port(host="127.0.0.1") -> int`` (for fixtures needing several)."""
    return _find_free_port


@pytest.fixture(scope="session")
def port_is_open() -> Callable[..., bool]:
    """The function ``port_is_open(port, host="127.0.0.1", timeout=0.5) -> bool``."""
    return _port_is_open


@pytest.fixture(scope="session")
def wait_until() -> Callable[..., Any]:
    """The function ``wait_until(predicate, timeout=30.0, what="condition", interval=0.05)``.

    Polls ``predicate`` until it returns something truthy and returns it; raises TimeoutError
    naming ``what`` after ``timeout`` seconds. Predicate exceptions propagate.
    """
    return _wait_until


@pytest.fixture(scope="session", name="skip_or_fail")
def skip_or_fail_fixture() -> Callable[[str], None]:
    """The function ``skip_or_fail(reason)``: skip the test, or fail it under
    STREAK_REQUIRE_SERVICES=1. Use it when a service your fixture needs is missing."""
    return _skip_or_fail


@pytest.fixture(scope="session")
def chromium_args() -> tuple[str, ...]:
    """CHROMIUM_ARGS: flags to launch Debian's chromium with here (headless, as root, offline)."""
    return CHROMIUM_ARGS


# --------------------------------------------------------------------------- dlt


class DltDirs(NamedTuple):
    root: Path
    """The test's private temp directory."""
    duckdb_path: Path
    """root/streak.duckdb: the project's DuckDB file (STREAK_DUCKDB_PATH); not created here."""
    pipelines_dir: Path
    """root/dlt/pipelines: dlt's pipeline working dirs and state (DLT_DATA_DIR=root/dlt)."""


@pytest.fixture
def dlt_isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> DltDirs:
    """Point dlt and the project at a fresh temp dir for this test (env restored afterwards).

    As root dlt would keep pipeline state in /var/dlt and DuckDB files in the working dir; with
    this, pipelines, local destination files and the project's DuckDB file live under
    ``.root``, while ``.dlt/config.toml`` is still read from the repo root. Not autouse: request
    it in any test that runs a pipeline or opens the warehouse.
    """
    root = tmp_path / "dlt_isolated"
    data_dir = root / "dlt"
    data_dir.mkdir(parents=True)
    monkeypatch.setenv("DLT_DATA_DIR", str(data_dir))
    monkeypatch.setenv("DLT_LOCAL_DIR", str(root))
    monkeypatch.setenv("DLT_PROJECT_DIR", str(REPO_ROOT))
    monkeypatch.setenv("STREAK_DUCKDB_PATH", str(root / "streak.duckdb"))
    return DltDirs(
        root=root, duckdb_path=root / "streak.duckdb", pipelines_dir=data_dir / "pipelines"
    )


# --------------------------------------------------------------------------- PostgreSQL


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """URL of the test PostgreSQL server (STREAK_TEST_POSTGRES_URL), checked with a 3 s connect.

    Skips (fails under STREAK_REQUIRE_SERVICES=1) when unset or unreachable. The role must be
    allowed to CREATE DATABASE for ``fresh_postgres_url`` (.ci/postgres.sh sets that up).
    """
    url = os.environ.get(POSTGRES_URL_ENV, "").strip()
    if not url:
        _skip_or_fail(f"PostgreSQL not configured: set {POSTGRES_URL_ENV} (see .ci/run)")
    try:
        import psycopg2
    except ImportError as exc:  # pragma: no cover - psycopg2-binary is in requirements.txt
        _skip_or_fail(f"psycopg2 not importable ({exc})")
    try:
        psycopg2.connect(url, connect_timeout=3).close()
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        _skip_or_fail(
            f"PostgreSQL not reachable at {_redact(url)} ({first_line}): "
            f"set {POSTGRES_URL_ENV} (see .ci/run)"
        )
    return url


def _with_database(url: str, dbname: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + dbname))


@pytest.fixture
def fresh_postgres_url(postgres_url: str) -> Iterator[str]:
    """URL of a brand-new empty database (same server and role), dropped after the test.

    Every test gets its own database, so fixed dataset names (``crm``, ``crm_staging``, dlt's
    state tables) never leak between tests. The drop uses WITH (FORCE), closing leftover
    connections.
    """
    import psycopg2

    dbname = f"streak_test_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(postgres_url, connect_timeout=3)
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{dbname}"')
        yield _with_database(postgres_url, dbname)
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        admin.close()


@pytest.fixture
def postgres_warehouse(
    dlt_isolated: DltDirs, fresh_postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> str:
    """Make the project's ``warehouse`` destination a fresh Postgres database; returns its URL."""
    monkeypatch.setenv("DESTINATION__WAREHOUSE__DESTINATION_TYPE", "postgres")
    monkeypatch.setenv("DESTINATION__WAREHOUSE__CREDENTIALS", fresh_postgres_url)
    return fresh_postgres_url


# --------------------------------------------------------------------------- Chromium


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    """Path of the Chromium to drive: STREAK_TEST_CHROMIUM, else /usr/bin/chromium if present.

    Skips (fails under STREAK_REQUIRE_SERVICES=1) when there is none: Playwright cannot download
    browsers here, install Debian's ``chromium`` package (.ci/run does).
    """
    configured = os.environ.get(CHROMIUM_ENV, "").strip()
    candidate = configured or "/usr/bin/chromium"
    path = shutil.which(candidate)
    if path is None:
        where = f"{CHROMIUM_ENV}={configured}" if configured else "/usr/bin/chromium"
        _skip_or_fail(
            f"Chromium not found at {where}: apt-get install chromium or set {CHROMIUM_ENV} "
            "(see .ci/run)"
        )
    return path


@pytest.fixture
def browser(chromium_executable: str) -> Iterator[Any]:
    """A headless Chromium (``playwright.sync_api.Browser``), closed at teardown.

    Function-scoped on purpose: a live sync Playwright marks an asyncio loop as running in this
    thread, which would break ``asyncio.run`` in other tests if it stayed up for the session.
    A launch costs about a second.
    """
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:  # pragma: no cover - playwright is in requirements.txt
        _skip_or_fail(f"playwright not importable ({exc})")
    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=chromium_executable, args=list(CHROMIUM_ARGS))
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A ``playwright.sync_api.Page`` in a fresh context (1280x800), closed at teardown."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        yield context.new_page()
    finally:
        context.close()
