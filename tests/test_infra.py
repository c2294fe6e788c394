"""The test plumbing itself: helpers, dlt isolation, PostgreSQL and headless Chromium fixtures."""

from __future__ import annotations

import os
import socket
import struct
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.request import urlopen

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

# --------------------------------------------------------------------------- helpers


def test_wait_until_returns_the_first_truthy_value(wait_until) -> None:
    calls = iter([0, None, "ready"])
    assert wait_until(lambda: next(calls), timeout=5, what="the third call", interval=0) == "ready"


def test_wait_until_times_out_naming_what_it_waited_for(wait_until) -> None:
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="waiting for the impossible"):
        wait_until(lambda: False, timeout=0.2, what="the impossible", interval=0.01)
    assert 0.2 <= time.monotonic() - started < 5


def test_free_port_is_unused_and_port_is_open_sees_a_listener(
    free_port: int, find_free_port, port_is_open
) -> None:
    assert 1024 <= free_port <= 65535
    assert not port_is_open(free_port)
    assert find_free_port() != 0
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", free_port))
        listener.listen()
        assert port_is_open(free_port)


def test_chromium_args_keep_chromium_off_the_network(chromium_args) -> None:
    for flag in ("--headless", "--no-sandbox", "--disable-background-networking"):
        assert flag in chromium_args


def test_skip_or_fail_skips_unless_services_are_required(
    skip_or_fail, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STREAK_REQUIRE_SERVICES", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no frobnicator"):
        skip_or_fail("no frobnicator")
    monkeypatch.setenv("STREAK_REQUIRE_SERVICES", "1")
    with pytest.raises(pytest.fail.Exception, match="no frobnicator.*STREAK_REQUIRE_SERVICES=1"):
        skip_or_fail("no frobnicator")


def test_dlt_isolated_points_dlt_and_the_project_at_a_temp_dir(dlt_isolated) -> None:
    from streak_warehouse.destination import default_duckdb_path

    assert os.environ["DLT_PROJECT_DIR"] == str(REPO_ROOT)
    assert Path(os.environ["DLT_DATA_DIR"]) == dlt_isolated.pipelines_dir.parent
    assert default_duckdb_path() == dlt_isolated.duckdb_path.resolve()
    assert dlt_isolated.root.is_dir() and not dlt_isolated.duckdb_path.exists()


def test_dlt_isolated_keeps_pipeline_state_in_the_temp_dir(dlt_isolated) -> None:
    import dlt

    pipeline = dlt.pipeline(pipeline_name="infra_probe", destination="duckdb")
    assert Path(pipeline.pipelines_dir) == dlt_isolated.pipelines_dir
    assert Path(pipeline.working_dir).is_relative_to(dlt_isolated.root)


def _load_probe_rows(pipeline_name: str):
    import dlt

    from streak_warehouse.destination import DATASET_NAME, warehouse_destination

    pipeline = dlt.pipeline(
        pipeline_name=pipeline_name, destination=warehouse_destination(), dataset_name=DATASET_NAME
    )
    pipeline.run([{"id": 1, "name": "one"}, {"id": 2, "name": "two"}], table_name="infra_probe")
    return pipeline


@pytest.mark.slow
def test_dlt_isolated_warehouse_is_the_temp_duckdb_file(dlt_isolated) -> None:
    import duckdb

    _load_probe_rows("infra_duckdb_probe")
    assert dlt_isolated.duckdb_path.is_file()
    assert (dlt_isolated.pipelines_dir / "infra_duckdb_probe").is_dir()
    with duckdb.connect(str(dlt_isolated.duckdb_path), read_only=True) as conn:
        assert conn.execute("SELECT count(*) FROM crm.infra_probe").fetchone() == (2,)


# --------------------------------------------------------------------------- PostgreSQL


@pytest.mark.postgres
def test_postgres_can_create_and_drop_a_table(fresh_postgres_url: str) -> None:
    import psycopg2

    with psycopg2.connect(fresh_postgres_url, connect_timeout=3) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE infra_probe (id int PRIMARY KEY, name text NOT NULL)")
        cur.execute("INSERT INTO infra_probe VALUES (1, 'one'), (2, 'two')")
        cur.execute("SELECT count(*), max(name) FROM infra_probe")
        assert cur.fetchone() == (2, "two")
        cur.execute("DROP TABLE infra_probe")
        cur.execute("SELECT to_regclass('infra_probe')")
        assert cur.fetchone() == (None,)
    conn.close()


@pytest.mark.postgres
def test_fresh_postgres_url_is_a_new_empty_database(
    postgres_url: str, fresh_postgres_url: str
) -> None:
    import psycopg2

    assert fresh_postgres_url != postgres_url
    conn = psycopg2.connect(fresh_postgres_url, connect_timeout=3)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT count(*) FROM information_schema.tables "
                "WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
            )
            assert cur.fetchone() == (0,)
    finally:
        conn.close()


@pytest.mark.postgres
@pytest.mark.slow
def test_postgres_warehouse_sends_the_project_destination_there(
    postgres_warehouse: str, dlt_isolated
) -> None:
    import psycopg2

    from streak_warehouse.destination import configured_destination_type

    assert configured_destination_type() == "postgres"
    _load_probe_rows("infra_postgres_probe")
    assert not dlt_isolated.duckdb_path.exists()
    conn = psycopg2.connect(postgres_warehouse, connect_timeout=3)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM crm.infra_probe")
            assert cur.fetchone() == (2,)
    finally:
        conn.close()


# --------------------------------------------------------------------------- Chromium

PAGE = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>infra probe</title></head>
<body style="font-family: sans-serif; background: #f4f6fb">
  <h1 id="title">Streak infra probe</h1>
  <button id="go" onclick="document.getElementById('out').textContent = 'clicked ' + (++window.n)">
    Go</button>
  <p id="out">not clicked</p>
  <script>window.n = 0;</script>
</body></html>
"""


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server API
        if self.path not in ("/", "/index.html"):
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        pass


@pytest.fixture
def local_site(wait_until) -> Iterator[str]:
    """A tiny HTTP server on 127.0.0.1 serving PAGE; shut down at teardown."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, name="infra-http", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        wait_until(lambda: urlopen(url, timeout=2).status == 200, timeout=10, what=f"HTTP at {url}")
        yield url
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@pytest.mark.browser
def test_browser_clicks_and_screenshots_a_local_page(page, local_site: str, tmp_path: Path) -> None:
    page.goto(local_site)
    assert page.title() == "infra probe"
    assert page.locator("#out").inner_text() == "not clicked"
    page.click("#go")
    page.click("#go")
    assert page.locator("#out").inner_text() == "clicked 2"

    shot = tmp_path / "infra.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 2_000, "screenshot suspiciously small (blank page?)"
    assert _png_size(shot) == (1280, 800)


@pytest.mark.browser
def test_browser_fixture_launches_the_configured_chromium(
    browser, chromium_executable: str
) -> None:
    assert os.access(chromium_executable, os.X_OK)
    assert browser.is_connected()
    assert browser.version.split(".")[0].isdigit()
