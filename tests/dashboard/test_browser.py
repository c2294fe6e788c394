"""The dashboard served by ``streamlit run`` and driven by a real (headless) Chromium.

Screenshots of every page go to ``tmp_path`` (or ``STREAK_TEST_SCREENSHOT_DIR`` when set), so a
person can look at what the browser drew.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pandas as pd
import pytest

from dashboards.ui.format import FALLBACK_PALETTE

from . import accounts
from .conftest import APP_FILE, PAGES, REPO_ROOT, DemoDB, _clean_env, as_int
from .test_events_page import ODD_EVENTS, add_odd_events

SQL = Callable[[str], pd.DataFrame]
CHART = '[data-testid="stVegaLiteChart"] .marks'
"""vega-embed's drawing surface (svg or canvas): present once a chart has rendered."""
PAGES_WITH_CHARTS = {"", "funnel", "ageing", "velocity", "outcomes", "tasks", "activity", "events"}


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture
def serve(
    find_free_port: Callable[..., int], tmp_path: Path, wait_until: Callable[..., Any]
) -> Iterator[Callable[..., str]]:
    """``serve(db, **env)``: ``streamlit run dashboards/streak_dashboard.py`` on ``db``; stopped at teardown."""
    with contextlib.ExitStack() as stack:

        def start(db: Path, **extra_env: str) -> str:
            port = find_free_port()
            log_path = tmp_path / f"streamlit-{port}.log"
            env = _clean_env(STREAK_DUCKDB_PATH=str(db), DLT_DATA_DIR=str(tmp_path / "dlt"), DLT_PROJECT_DIR=str(REPO_ROOT), **extra_env)
            command = [
                sys.executable, "-m", "streamlit", "run", str(APP_FILE), "--server.headless", "true",
                "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
            ]
            log = stack.enter_context(log_path.open("w"))
            server = subprocess.Popen(command, cwd=str(REPO_ROOT), env=env, stdout=log, stderr=subprocess.STDOUT)
            stack.callback(_stop, server)
            url = f"http://127.0.0.1:{port}"
            wait_until(lambda: server.poll() is not None or _healthy(url), 60, f"streamlit on {url}")
            assert server.poll() is None, f"streamlit exited early:\n{log_path.read_text()[-3000:]}"
            return url

        yield start


def _stop(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(timeout=20)


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    where = Path(os.environ.get("STREAK_TEST_SCREENSHOT_DIR") or tmp_path / "screenshots")
    where.mkdir(parents=True, exist_ok=True)
    return where


def _reader(db: Path) -> SQL:
    """Plain SQL on ``db``, read-only, one short connection per query (the server reads it too)."""
    import duckdb

    def read(query: str) -> pd.DataFrame:
        with duckdb.connect(str(db), read_only=True) as con:
            return con.sql(query).to_arrow_table().to_pandas()

    return read


def _metric(page: Any, label: str) -> str:
    card = page.locator('[data-testid="stMetric"]').filter(
        has=page.locator('[data-testid="stMetricLabel"]', has_text=re.compile(rf"^{re.escape(label)}$"))
    )
    return card.locator('[data-testid="stMetricValue"]').first.inner_text()


def _open(page: Any, url: str, url_path: str, title: str, *, click: bool = False) -> None:
    """Go to a page and wait until it has drawn (title, then its charts and tables).

    ``click``: through the sidebar navigation (same session, so the filters stay), not a reload.
    """
    if click:
        page.locator('[data-testid="stSidebarNav"] a', has_text=title).first.click()
    else:
        page.goto(f"{url}/{url_path}")
    page.locator('[data-testid="stHeading"] h1', has_text=title).first.wait_for(timeout=60_000)
    page.locator('[data-testid="stSidebar"] [data-testid="stCaptionContainer"]', has_text="Source:").first.wait_for(timeout=60_000)
    # Both accounts here have data on every page: charts, and the explorer's table, must appear.
    if url_path in PAGES_WITH_CHARTS:
        page.wait_for_selector(CHART, state="visible", timeout=60_000)
    if url_path == "explorer":
        page.wait_for_selector('[data-testid="stDataFrame"] canvas', state="visible", timeout=60_000)
    if url_path == "changes":  # its lists, or (one load so far) the note saying so
        page.wait_for_selector('[data-testid="stDataFrame"] canvas, [data-testid="stAlert"]', state="visible",
                               timeout=60_000)
    _settle(page)


def _settle(page: Any) -> None:
    """Until the script run is over: no skeleton placeholders, no "running" status widget."""
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stSkeleton\"]')"
        " && !document.querySelector('[data-testid=\"stStatusWidget\"]')",
        timeout=60_000,
    )


@pytest.mark.browser
def test_every_page_and_the_filters_in_a_real_browser(
    history_db: Path, serve: Callable[..., str], browser: Any, shots: Path, wait_until: Callable[..., Any],
    tmp_path: Path,
) -> None:
    # Two loads of the demo account (history_db: the Changes page and the pipeline over time have two
    # loads), plus hand-built stage history and events, so Velocity and Events have data. Nothing
    # configured: the demo account's own closed stages apply. Events include the ones a chart chokes
    # on (test_events_page.py): one dated 9999, sums past the largest double, a long name.
    db = accounts.copy_db(history_db, tmp_path / "rich.duckdb")
    accounts.add_history(db)
    accounts.add_events(db)
    add_odd_events(db)
    sql = _reader(db)
    url = serve(db)
    total = len(sql("SELECT box_key FROM crm.boxes"))
    stage_names = set(sql("SELECT DISTINCT stage_name FROM crm.boxes WHERE stage_name IS NOT NULL")["stage_name"])
    context = browser.new_context(viewport={"width": 1400, "height": 1700})
    try:
        page = context.new_page()
        for url_path, title in PAGES:
            _open(page, url, url_path, title)
            page.screenshot(path=str(shots / f"dashboard-{url_path or 'overview'}.png"), full_page=True)
            if url_path == "":  # the sidebar says the closed stages are the demo account's own
                page.locator('[data-testid="stSidebar"] [data-testid="stCaptionContainer"]',
                             has_text="the demo account comes with its won, lost and closed stages").first.wait_for(timeout=30_000)
        _check_velocity_and_events(page, url, db, shots, wait_until)
        _check_changes_and_a_box(page, url, db, shots)
        _open(page, url, "funnel", "Pipeline funnel")
        assert as_int(_metric(page, "Boxes")) == total
        axis_text = " ".join(page.locator('[data-testid="stVegaLiteChart"]').first.locator("text").all_text_contents())
        assert any(name in axis_text for name in stage_names), axis_text[:500]
        assert "(closed)" in axis_text  # the demo's closed stages are marked on the funnel

        # A field summed across all pipelines: its own pipeline gets the sums, the others say why not.
        field = sql("SELECT v.field_name, p.name FROM crm.box_field_values v JOIN crm.pipelines p USING (pipeline_key) "
                    "WHERE v.value_number IS NOT NULL GROUP BY 1, 2 ORDER BY 1, 2 LIMIT 1").iloc[0]
        _pick(page, "Sum a numeric field", f"{field['field_name']} ({field['name']})")
        page.get_by_text("is a field of another pipeline").first.wait_for(timeout=30_000)
        # Funnels (two counts, one sum), then each pipeline over time (two counts, one sum).
        wait_until(lambda: page.locator(CHART).count() >= 6, 30, "the funnels and the pipelines over time")
        _settle(page)
        page.screenshot(path=str(shots / "dashboard-funnel-sum.png"), full_page=True)
        viewport = page.viewport_size
        page.set_viewport_size({"width": 1400, "height": 2600})  # the whole page: Streamlit scrolls inside
        _settle(page)
        assert page.locator('[data-testid="stException"]').count() == 0
        page.screenshot(path=str(shots / "dashboard-funnel-over-time.png"))
        page.set_viewport_size(viewport)

        # The sidebar's pipeline filter changes the number a person reads...
        pipeline = sql(
            "SELECT b.pipeline_key, p.name, COUNT(*) AS n FROM crm.boxes b JOIN crm.pipelines p USING (pipeline_key) "
            "GROUP BY 1, 2 ORDER BY 3, 1"
        ).iloc[0]
        page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').first.click()
        page.get_by_role("option", name=re.compile(rf"^{re.escape(str(pipeline['name']))} \(")).click()
        wait_until(lambda: as_int(_metric(page, "Boxes")) == pipeline["n"], 30, "the Boxes metric to follow the filter")
        page.wait_for_selector(CHART, state="visible", timeout=30_000)

        # ...and stays selected on another page, reached through the sidebar navigation.
        page.locator('[data-testid="stSidebarNav"] a', has_text="Overview").click()
        wait_until(lambda: page.locator("h1", has_text="Overview").count() > 0, 30, "the Overview page")
        wait_until(lambda: as_int(_metric(page, "Boxes")) == pipeline["n"], 30, "the Overview's Boxes metric")
        page.wait_for_selector(CHART, state="visible", timeout=30_000)
        page.wait_for_selector('[data-testid="stDataFrame"] canvas', state="visible", timeout=30_000)
        page.screenshot(path=str(shots / "dashboard-overview-one-pipeline.png"), full_page=True)
    finally:
        context.close()
    print(f"screenshots: {shots}")


def _check_changes_and_a_box(page: Any, url: str, db: Path, shots: Path) -> None:
    """The Changes page's deleted boxes are the history's, and a list row opens its box (a new tab on
    the Box explorer, a deleted box as it was when last seen)."""
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        (earlier,) = con.execute("SELECT finished_at FROM crm.load_history WHERE outcome = 'ok' "
                                 "ORDER BY finished_at DESC LIMIT 1 OFFSET 1").fetchone()
        gone = con.execute("SELECT record_key, name FROM crm.deletions WHERE table_name = 'boxes' AND deleted_at > ? "
                           "ORDER BY name, record_key", [earlier]).fetchall()
    _open(page, url, "changes", "Changes")
    assert as_int(_metric(page, "Deleted")) == len(gone) > 0
    deleted_table = page.locator('[data-testid="stDataFrame"]').nth(1)  # after "Boxes created"
    deleted_table.scroll_into_view_if_needed()
    box = deleted_table.bounding_box()
    first_link = (box["x"] + 15, box["y"] + 35 + 17)  # the word "Open" in the first row (under the header)
    page.mouse.move(*first_link)
    with page.context.expect_page(timeout=30_000) as opened:
        page.mouse.click(*first_link)
    tab = opened.value
    try:
        tab.locator('[data-testid="stHeading"] h1', has_text="Box explorer").first.wait_for(timeout=60_000)
        tab.locator('[data-testid="stHeading"] h3', has_text=gone[0][1]).first.wait_for(timeout=60_000)
        tab.wait_for_selector('[data-testid="stDataFrame"] canvas', state="visible", timeout=60_000)
        _settle(tab)
        assert tab.url == f"{url}/explorer?box={quote(gone[0][0], safe='')}"
        assert tab.get_by_text("Deleted").count() > 0 and tab.locator('[data-testid="stException"]').count() == 0
        tab.screenshot(path=str(shots / "dashboard-box-deleted.png"), full_page=True)
    finally:
        tab.close()


def _check_velocity_and_events(page: Any, url: str, db: Path, shots: Path, wait_until: Callable[..., Any]) -> None:
    """Both pages draw their charts and tables, and their headline numbers are the SQL ones."""
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        stays, measured = con.execute(
            "SELECT COUNT(*), COUNT(*) FILTER (WHERE left_at IS NOT NULL AND exact) FROM crm.box_stage_history "
            "WHERE box_key IN (SELECT box_key FROM crm.boxes)"
        ).fetchone()
        events = con.execute("SELECT COUNT(*) FROM crm.events").fetchone()[0]
    finally:
        con.close()
    _open(page, url, "velocity", "Velocity")
    assert as_int(_metric(page, "Stays recorded")) == stays
    assert as_int(_metric(page, "Stays measured")) == measured
    assert page.locator(CHART).count() >= 2  # time in stage, entries per week
    axis_text = " ".join(page.locator('[data-testid="stVegaLiteChart"]').first.locator("text").all_text_contents())
    assert "Qualified" in axis_text and "Won" not in axis_text, axis_text[:300]  # closed stages left out
    viewport = page.viewport_size
    page.set_viewport_size({"width": 1400, "height": 2150})  # the whole page: Streamlit scrolls inside
    _settle(page)
    page.screenshot(path=str(shots / "dashboard-velocity.png"))
    _open(page, url, "events", "Events")
    assert as_int(_metric(page, "Events")) == events
    assert page.locator(CHART).count() >= 2  # per name, the built metric
    page.wait_for_selector('[data-testid="stDataFrame"] canvas', state="visible", timeout=60_000)
    # An event dated 9999 is in the data: the weekly chart still draws its bars, and says it left it out.
    assert _pixels_of(page, 0, FALLBACK_PALETTE[0]) > 500, "Events per week drew no bars"
    page.get_by_text("Not on this chart: 1 event dated in the future").first.wait_for(timeout=30_000)
    page.screenshot(path=str(shots / "dashboard-events.png"))
    # A sum past the largest double, then a property named with 3,000 characters: still a chart.
    _pick(page, "Event", "Big deal")
    _pick(page, "Measure", "Sum of amount")
    wait_until(lambda: _metric(page, "Sum of amount") == "∞", 30, "the sum of amount")
    _pick(page, "Measure", "Sum of revenue revenue")
    page.locator('[data-testid="stMetricLabel"]', has_text="Sum of revenue revenue").first.wait_for(timeout=30_000)
    _settle(page)
    big_deals = str(sum(1 for _, name, _, _ in ODD_EVENTS if name == "Big deal"))
    assert _metric(page, "Matching events") == big_deals
    page.screenshot(path=str(shots / "dashboard-events-odd.png"))
    assert _pixels_of(page, 1, METRIC_COLOR) > 200, "the metric chart drew no bar"
    page.set_viewport_size(viewport)


METRIC_COLOR = "#4263eb"
"""The metric builder's bar colour (events.py)."""


def _pick(page: Any, label: str, option: str) -> None:
    """Choose the option starting with ``option`` in the main area's selectbox labelled ``label``."""
    box = page.locator('[data-testid="stMain"] [data-testid="stSelectbox"]').filter(
        has=page.locator('[data-testid="stWidgetLabel"]', has_text=re.compile(rf"^{re.escape(label)}$")))
    box.first.click()
    page.get_by_role("option", name=re.compile(rf"^{re.escape(option)}")).first.click()
    _settle(page)


def _pixels_of(page: Any, chart_index: int, color: str, tolerance: int = 16) -> int:
    """How many pixels of the ``chart_index``-th chart on the page are ``color``: bars drawn or not."""
    import numpy as np
    from PIL import Image

    chart = page.locator('[data-testid="stVegaLiteChart"]').nth(chart_index)
    chart.scroll_into_view_if_needed()
    pixels = np.asarray(Image.open(io.BytesIO(chart.screenshot())).convert("RGB"), dtype=np.int16)
    want = np.array([int(color[i:i + 2], 16) for i in (1, 3, 5)], dtype=np.int16)
    return int((np.abs(pixels - want) <= tolerance).all(axis=2).sum())


class _Hits:
    """A tiny HTTP server on 127.0.0.1 that records every request path it gets."""

    def __init__(self, port: int) -> None:
        hits: list[str] = []
        self.paths = hits

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                hits.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Access-Control-Allow-Origin", "*")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


@pytest.mark.browser
def test_hostile_names_make_no_request_and_render_as_text(
    demo_db: DemoDB, serve: Callable[..., str], browser: Any, find_free_port: Callable[..., int],
    tmp_path: Path, shots: Path, wait_until: Callable[..., Any],
) -> None:
    """Issue 12 #5: a pipeline named ``![x](http://127.0.0.1:<port>/pixel.png)`` fetches nothing."""
    port = find_free_port()
    hits = _Hits(port)
    try:
        db = accounts.hostile_account(demo_db.path, tmp_path / "hostile.duckdb", port)
        url = serve(db)
        name = f"![x](http://127.0.0.1:{port}/pixel.png)"
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        try:
            page = context.new_page()
            for pick_pipeline in (False, True):
                for url_path, title in PAGES:
                    _open(page, url, url_path, title, click=pick_pipeline and url_path != "")
                    if pick_pipeline and url_path == "":
                        page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').first.click()
                        page.get_by_role("option").filter(has_text=name).first.click()
                        wait_until(lambda: _caption_with(page, name), 30, "the pipeline filter")
                    if pick_pipeline and url_path == "funnel":  # the hostile field, summed
                        page.locator('[data-testid="stMain"] [data-testid="stSelectbox"]').first.click()
                        page.get_by_role("option").filter(has_text="**Deal**").first.click()
                        page.locator('[data-testid="stMetricLabel"]', has_text="Total").first.wait_for(timeout=30_000)
                        wait_until(lambda: page.locator(CHART).count() >= 2, 30, "the count and the sum charts")
                        _settle(page)
                    _assert_nothing_rendered(page, port)
                    page.screenshot(
                        path=str(shots / f"hostile-{'one' if pick_pipeline else 'all'}-{url_path or 'overview'}.png"),
                        full_page=True,
                    )
            # The caption names the pipeline as the characters it is.
            _open(page, url, "", "Overview")
            page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').first.click()
            page.get_by_role("option").filter(has_text=name).first.click()
            wait_until(lambda: _caption_with(page, name), 30, "the caption naming the pipeline")
            assert hits.paths == [], hits.paths
            # Control: this browser can reach the server, so "no hits" above means "no request".
            page.evaluate(f"fetch('http://127.0.0.1:{port}/control').catch(() => null)")
            wait_until(lambda: hits.paths == ["/control"], 10, "the control request")
        finally:
            context.close()
    finally:
        hits.close()


def _caption_with(page: Any, text: str) -> bool:
    """A caption shows ``text`` character for character (ignoring invisible word joiners)."""
    captions = page.locator('[data-testid="stCaptionContainer"]').all_inner_texts()
    return any(text in caption.replace("\u2060", "") for caption in captions)


def _assert_nothing_rendered(page: Any, port: int) -> None:
    """No link, image, LaTeX, coloured text or raw HTML made from a Streak name."""
    markdown = '[data-testid="stMarkdownContainer"]'
    assert page.locator(f'a[href*="127.0.0.1:{port}"], img[src*="127.0.0.1:{port}"]').count() == 0
    assert page.locator(f"{markdown} a, {markdown} img").count() == 0, page.locator(f"{markdown} a").all_inner_texts()
    assert page.locator(".katex, .katex-display").count() == 0
    assert page.locator(f"{markdown} script, {markdown} b, {markdown} span[style*=color]").count() == 0
