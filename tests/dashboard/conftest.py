"""Fixtures for the dashboard tests: the real demo account in DuckDB, and AppTest helpers.

The demo database is produced once per session by the main job itself
(``python pipelines/streak_full.py --demo`` in a subprocess, into a temp dir), so the dashboard is
tested against exactly what the pipeline writes. The "empty destination" and "no destination" cases
are built here by hand; the empty, one-box, malformed and hostile accounts are derived from the
demo load by plain SQL in accounts.py.

This directory is a package (``__init__.py``), so this module is ``dashboard.conftest`` and the
test modules import its helpers relatively, without shadowing the root ``conftest``. Generic
helpers (``wait_until``, ``free_port``, ``browser``) are the root conftest's fixtures.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from datetime import timezone
from pathlib import Path
from typing import Any, NamedTuple

import duckdb
import pandas as pd
import pytest

import streak_clock
from dashboards.app_pages import PAGES as APP_PAGES

from . import accounts

REPO_ROOT = Path(__file__).resolve().parents[2]
APP_FILE = REPO_ROOT / "dashboards" / "streak_dashboard.py"
MAIN_JOB = REPO_ROOT / "pipelines" / "streak_full.py"
DATASET = "crm"
DEMO_LOAD_TIMEOUT_S = 240
# The sandbox runs in-process with the load; lifting the client-side limit (10 req/s, Streak's
# request for the real API) keeps the one demo load of the session to seconds instead of a minute.
DEMO_RATE_LIMIT = "200"

# Every page: (url_path, title), from the app's own registry. "" is the default page.
PAGES: tuple[tuple[str, str], ...] = tuple(
    ("" if index == 0 else spec.url_path, spec.title) for index, spec in enumerate(APP_PAGES)
)
REUSE_DEMO_ENV = "STREAK_TEST_DASHBOARD_DEMO_DB"
"""Local iteration only: a DuckDB file from an earlier `streak_full.py --demo` to copy instead of loading."""


class DemoDB(NamedTuple):
    path: Path
    """The DuckDB file the main job wrote (dataset ``crm``)."""
    dlt_data_dir: Path
    day0: str = ""
    """The demo account's day 0 (``--demo-date``): a second demo load of the same account passes it,
    so a session running across midnight compares like with like."""


def _clean_env(**overrides: str) -> dict[str, str]:
    """This process's env without destination/source overrides, plus ``overrides``."""
    base = {
        k: v for k, v in os.environ.items() if not k.startswith(("DESTINATION__", "SOURCES__"))
    }
    base.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    return {**base, **overrides}


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> DemoDB:
    """The demo account loaded by ``python pipelines/streak_full.py --demo`` (once per session)."""
    reuse = os.environ.get(REUSE_DEMO_ENV)
    if reuse:
        root = tmp_path_factory.mktemp("demo_load")
        path = root / "streak.duckdb"
        path.write_bytes(Path(reuse).read_bytes())
        return DemoDB(path=path, dlt_data_dir=root / "dlt", day0=_day0_of(path))
    path, built = _built_once(tmp_path_factory, worker_id, "demo_load", lambda root: _load_demo(root).path)
    return DemoDB(path=path, dlt_data_dir=built / "dlt", day0=_day0_of(path))


def _built_once(
    tmp_path_factory: pytest.TempPathFactory, worker_id: str, name: str, build: Callable[[Path], Path],
) -> tuple[Path, Path]:
    """``build(root)`` (it writes ``root/streak.duckdb`` and returns it) run once per session: under
    pytest-xdist the first worker to take the lock builds it, the others wait on the lock, and each
    worker gets its own copy of the file, so no test can see another worker's writes. Returns this
    process's file and the directory it was built in."""
    if worker_id == "master":
        root = tmp_path_factory.mktemp(name)
        return build(root), root
    shared = tmp_path_factory.getbasetemp().parent / f"{name}_shared"
    shared.mkdir(exist_ok=True)
    with open(shared / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, also if this worker dies
        if not (shared / "complete").exists():
            build(shared)
            (shared / "complete").touch()
    own = tmp_path_factory.mktemp(name) / "streak.duckdb"
    shutil.copyfile(shared / "streak.duckdb", own)
    return own, shared


@pytest.fixture(scope="session")
def history_db(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    """Two loads of the demo account (two_loads.py): as it was two days ago, then as it is today, so
    ``crm.*_history`` holds boxes created, deleted, moved and reassigned, field values edited, tasks
    added and completed between two loads (built once per session)."""

    def build(root: Path) -> Path:
        path = root / "streak.duckdb"
        env = _clean_env(STREAK_DUCKDB_PATH=str(path), DLT_DATA_DIR=str(root / "dlt"), DLT_PROJECT_DIR=str(REPO_ROOT),
                         SOURCES__STREAK__MAX_REQUESTS_PER_SECOND=DEMO_RATE_LIMIT)
        result = subprocess.run([sys.executable, "-m", "tests.dashboard.two_loads", streak_clock.today().isoformat()],
                                env=env, cwd=str(REPO_ROOT), capture_output=True, text=True,
                                timeout=DEMO_LOAD_TIMEOUT_S)
        if result.returncode != 0 or not path.is_file():
            pytest.fail(f"two loads of the demo account failed (exit {result.returncode}):\n{result.stderr[-3000:]}",
                        pytrace=False)
        return path

    return _built_once(tmp_path_factory, worker_id, "history_load", build)[0]


def _load_demo(root: Path) -> DemoDB:
    """Run the main job's demo load into ``root/streak.duckdb``; fail the session if it fails."""
    path = root / "streak.duckdb"
    data_dir = root / "dlt"
    day0 = streak_clock.today().isoformat()
    env = _clean_env(
        STREAK_DUCKDB_PATH=str(path),
        DLT_DATA_DIR=str(data_dir),
        DLT_PROJECT_DIR=str(REPO_ROOT),
        SOURCES__STREAK__MAX_REQUESTS_PER_SECOND=DEMO_RATE_LIMIT,
    )
    result = subprocess.run(
        [sys.executable, str(MAIN_JOB), "--demo", "--demo-date", day0, "--quiet"],
        env=env,
        cwd=str(root),
        capture_output=True,
        text=True,
        timeout=DEMO_LOAD_TIMEOUT_S,
    )
    if result.returncode != 0 or not path.is_file():
        pytest.fail(
            f"`python pipelines/streak_full.py --demo` failed (exit {result.returncode}); the "
            f"dashboard tests need its data.\nstderr:\n{result.stderr[-3000:]}",
            pytrace=False,
        )
    return DemoDB(path=path, dlt_data_dir=data_dir, day0=day0)


def _day0_of(path: Path) -> str:
    """The day 0 of a demo copy already on disk: the date its first load started (the demo anchors
    its account at the UTC date of the run unless ``--demo-date`` says otherwise)."""
    with duckdb.connect(str(path), read_only=True) as con:
        started = con.execute("SELECT min(started_at) FROM crm.load_history").fetchone()[0]
    return started.astimezone(timezone.utc).date().isoformat()


@pytest.fixture(scope="session")
def hostile_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sandbox's hostile account (``serve --account hostile``) loaded by the main job (once)."""
    root = tmp_path_factory.mktemp("hostile_load")
    path = root / "streak.duckdb"
    sandbox = subprocess.Popen(
        [sys.executable, "-m", "streak_source.sandbox", "serve", "--port", "0", "--account", "hostile"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=str(root),
    )
    try:
        base_url = sandbox.stdout.readline().strip() if sandbox.stdout else ""
        env = _clean_env(
            STREAK_DUCKDB_PATH=str(path),
            DLT_DATA_DIR=str(root / "dlt"),
            DLT_PROJECT_DIR=str(REPO_ROOT),
            SOURCES__STREAK__BASE_URL=base_url,
            SOURCES__STREAK__API_KEY="demo",
            SOURCES__STREAK__MAX_REQUESTS_PER_SECOND=DEMO_RATE_LIMIT,
        )
        result = subprocess.run(
            [sys.executable, str(MAIN_JOB), "--quiet"], env=env, cwd=str(root),
            capture_output=True, text=True, timeout=DEMO_LOAD_TIMEOUT_S, check=False,
        )
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=30)
        if sandbox.stdout:
            sandbox.stdout.close()
    if result.returncode != 0 or not path.is_file():
        pytest.fail(
            f"loading the sandbox's hostile account failed (exit {result.returncode}):\n{result.stderr[-3000:]}",
            pytrace=False,
        )
    return path


@pytest.fixture
def sql(demo_db: DemoDB) -> Iterator[Callable[[str], pd.DataFrame]]:
    """Independent reads of the demo file: plain DuckDB SQL on ``crm.*``, read-only."""
    con = duckdb.connect(str(demo_db.path), read_only=True)

    def run(query: str) -> pd.DataFrame:
        return con.sql(query).to_arrow_table().to_pandas()

    try:
        yield run
    finally:
        con.close()


@pytest.fixture
def point_at(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[[Path], Path]:
    """Make the project's configuration (and so the dashboard) read the DuckDB file ``path``."""
    for key in list(os.environ):
        if key.startswith("DESTINATION__WAREHOUSE__"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt"))
    monkeypatch.setenv("DLT_PROJECT_DIR", str(REPO_ROOT))
    monkeypatch.setenv("RUNTIME__DLTHUB_TELEMETRY", "false")

    def point(path: Path) -> Path:
        monkeypatch.setenv("STREAK_DUCKDB_PATH", str(path))
        return path

    return point


@pytest.fixture
def empty_db(tmp_path: Path) -> Path:
    """A valid DuckDB file with nothing loaded (what a fresh warehouse looks like)."""
    path = tmp_path / "empty" / "streak.duckdb"
    path.parent.mkdir()
    duckdb.connect(str(path)).close()
    return path


@pytest.fixture
def missing_db(tmp_path: Path) -> Path:
    """A DuckDB path where no file exists (nothing was ever loaded)."""
    return tmp_path / "never_loaded" / "streak.duckdb"


def new_app() -> Any:
    """A fresh AppTest of the dashboard with a clean query cache."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    st.cache_data.clear()
    return AppTest.from_file(str(APP_FILE), default_timeout=60)


def open_page(at: Any, url_path: str) -> Any:
    """Switch an AppTest (after its first run) to the st.navigation page at ``url_path`` and run it.

    ``AppTest.switch_page`` only accepts page *files*; the dashboard's pages are callables, so
    this picks the page's script hash from the registry st.navigation filled on the first run.
    """
    matches = [
        page_hash
        for page_hash, info in at._registered_pages.items()
        if info.get("url_pathname", "") == url_path
    ]
    assert matches, f"page {url_path!r} not registered; known: {at._registered_pages}"
    at._page_hash = matches[0]
    return at.run()


def metric_values(at: Any) -> dict[str, str]:
    """Label -> shown value of every st.metric on the page."""
    return {m.label: m.value for m in at.metric}


def as_int(text: str) -> int:
    """A metric value like "1,234" as an int."""
    return int(text.replace(",", ""))


class LockHolder:
    """Another process holding DuckDB's write lock on a file, as a running load does.

    ``release()`` tells it to close the connection and waits until it has (no timing guesses).
    """

    def __init__(self, path: Path) -> None:
        script = textwrap.dedent(
            """
            import sys, duckdb
            con = duckdb.connect(sys.argv[1])
            print("locked", flush=True)
            sys.stdin.readline()
            con.close()
            print("released", flush=True)
            """
        )
        self._process = subprocess.Popen(
            [sys.executable, "-c", script, str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self._process.stdout.readline() if self._process.stdout else ""
        assert line.strip() == "locked", f"lock holder did not start: {line!r}"

    def release(self) -> None:
        if self._process.poll() is not None:
            return
        assert self._process.stdin and self._process.stdout
        self._process.stdin.write("go\n")
        self._process.stdin.flush()
        assert self._process.stdout.readline().strip() == "released"
        self._process.wait(timeout=30)

    def close(self) -> None:
        try:
            self.release()
        finally:
            if self._process.poll() is None:
                self._process.kill()
                self._process.wait(timeout=30)
            for stream in (self._process.stdin, self._process.stdout):
                if stream is not None:
                    stream.close()


@pytest.fixture
def lock_file() -> Iterator[Callable[[Path], LockHolder]]:
    """Start lock holders on files; every holder is stopped at teardown."""
    holders: list[LockHolder] = []

    def start(path: Path) -> LockHolder:
        holder = LockHolder(path)
        holders.append(holder)
        return holder

    yield start
    for holder in holders:
        holder.close()


@pytest.fixture
def rich_db(demo_db: DemoDB, tmp_path: Path) -> Path:
    """The demo copy with hand-built stage history and events (accounts.py), for the pages that read them."""
    path = accounts.copy_db(demo_db.path, tmp_path / "rich.duckdb")
    accounts.add_history(path)
    accounts.add_events(path)
    return path


@pytest.fixture
def rich_sql(rich_db: Path) -> Iterator[Callable[[str], pd.DataFrame]]:
    """Independent reads of ``rich_db``: plain DuckDB SQL, read-only."""
    con = duckdb.connect(str(rich_db), read_only=True)
    try:
        yield lambda query: con.sql(query).to_arrow_table().to_pandas()
    finally:
        con.close()
