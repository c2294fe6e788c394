"""The dashboard served by ``streamlit run`` and driven by a real (headless) Chromium."""

from __future__ import annotations

import re
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from .conftest import APP_FILE, REPO_ROOT, DemoDB, _clean_env, as_int

SQL = Callable[[str], pd.DataFrame]
CHART = '[data-testid="stVegaLiteChart"] .marks'
"""vega-embed's drawing surface (svg or canvas): present once a chart has rendered."""


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture
def dashboard_url(
    demo_db: DemoDB, free_port: int, tmp_path: Path, wait_until: Callable[..., Any]
) -> Iterator[str]:
    """``streamlit run dashboards/streak_dashboard.py`` on the demo file; terminated at teardown."""
    log_path = tmp_path / "streamlit.log"
    env = _clean_env(
        STREAK_DUCKDB_PATH=str(demo_db.path),
        DLT_DATA_DIR=str(tmp_path / "dlt"),
        DLT_PROJECT_DIR=str(REPO_ROOT),
    )
    command = [
        sys.executable, "-m", "streamlit", "run", str(APP_FILE),
        "--server.headless", "true",
        "--server.port", str(free_port),
        "--server.address", "127.0.0.1",
        "--browser.gatherUsageStats", "false",
    ]
    url = f"http://127.0.0.1:{free_port}"
    with log_path.open("w") as log:
        server = subprocess.Popen(command, cwd=str(REPO_ROOT), env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_until(lambda: server.poll() is not None or _healthy(url), 60, f"streamlit on {url}")
            assert server.poll() is None, f"streamlit exited early:\n{log_path.read_text()[-3000:]}"
            yield url
        finally:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=20)


def _metric(page: Any, label: str) -> str:
    card = page.locator('[data-testid="stMetric"]').filter(
        has=page.locator('[data-testid="stMetricLabel"]', has_text=re.compile(rf"^{re.escape(label)}$"))
    )
    return card.locator('[data-testid="stMetricValue"]').first.inner_text()


@pytest.mark.browser
def test_funnel_in_a_real_browser(
    dashboard_url: str, browser: Any, sql: SQL, tmp_path: Path, wait_until: Callable[..., Any]
) -> None:
    total = len(sql("SELECT box_key FROM crm.boxes"))
    stage_names = set(sql("SELECT DISTINCT stage_name FROM crm.boxes WHERE stage_name IS NOT NULL")["stage_name"])
    context = browser.new_context(viewport={"width": 1400, "height": 1500})
    try:
        page = context.new_page()
        page.goto(f"{dashboard_url}/funnel")
        page.wait_for_selector(CHART, state="visible", timeout=60_000)
        assert page.locator('[data-testid="stHeading"] h1').first.inner_text().strip() == "Pipeline funnel"
        assert as_int(_metric(page, "Boxes")) == total
        axis_text = " ".join(page.locator('[data-testid="stVegaLiteChart"]').first.locator("text").all_text_contents())
        assert any(name in axis_text for name in stage_names), axis_text[:500]
        page.screenshot(path=str(tmp_path / "funnel.png"), full_page=True)

        # The sidebar's pipeline filter changes the number a person reads.
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
        page.screenshot(path=str(tmp_path / "overview.png"), full_page=True)
    finally:
        context.close()
    print(f"screenshots: {tmp_path / 'funnel.png'} {tmp_path / 'overview.png'}")
