"""The dashboard's pages in headless Chromium against ``streamlit run``: navigation until the page is drawn.

"Drawn" = Streamlit says the script run is over (``stApp``'s ``data-test-script-state`` is
``notRunning``) and every chart and table not in a closed expander has its marks or canvas. Per page:

* ``cold_s``: opening the page's address (a new tab, a reload: the browser loads Streamlit's scripts
  from its cache and opens a new session) right after the DuckDB file's modification time moved (what
  a finished load does), so every query misses the cache, exactly as after a load; the median of
  ``cold_runs``;
* ``warm_s``: the median of further such visits (queries from the cache within its TTL);
* ``click_cold_s`` / ``click_warm_s``: the same two, reaching the page from another one by its link
  in the sidebar (the same session: what a person clicking through the app waits for). The Box
  explorer's one-box page has no link in the sidebar: only the address figures.

``floor`` holds the same figures for Streamlit pages that run no query (:data:`FLOORS`): a title
alone, a title with one small chart and table, and that page in a shell like the dashboard's (sidebar
and navigation; also its click figure): what Streamlit and Chromium cost before the dashboard does
anything.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

REPO_ROOT = Path(__file__).resolve().parent.parent
APP_FILE = REPO_ROOT / "dashboards" / "streak_dashboard.py"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
DRAWN = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  if (!app || app.getAttribute('data-test-script-state') !== 'notRunning') return false;
  const shown = (e) => !e.closest('details:not([open])') && e.getBoundingClientRect().height > 0;
  for (const c of document.querySelectorAll('[data-testid="stVegaLiteChart"]'))
    if (shown(c) && !c.querySelector('.marks')) return false;
  for (const d of document.querySelectorAll('[data-testid="stDataFrame"]'))
    if (shown(d) && !d.querySelector('canvas')) return false;
  return !!document.querySelector('h1');
}"""
"""True once the page is drawn (module docstring); every page of the app has a title (``h1``)."""
ARM = """() => {
  window.__ran = false;
  window.__title = (document.querySelector('h1') || {}).textContent;
  new MutationObserver((changes) => {
    for (const change of changes)
      if (change.oldValue === 'running' || change.target.getAttribute('data-test-script-state') === 'running')
        window.__ran = true;
  }).observe(document.body, {attributes: true, subtree: true, attributeOldValue: true,
                             attributeFilter: ['data-test-script-state']});
}"""
"""Before a click: notes the title shown and when the next script run starts, so the previous page's drawn
state is not taken for the new one's. A fast run can start and end in one frame, never showing "running":
then the new page's title tells (the pages clicked between have different titles)."""
CLICKED_AND_DRAWN = ("() => (window.__ran || (document.querySelector('h1') || {}).textContent !== window.__title)"
                     " && (" + DRAWN + ")()")
IMPORTS = "import altair as alt\nimport pandas as pd\nimport streamlit as st\n\n"
CHART_AND_TABLE = """st.title("Floor", anchor=False)
data = pd.DataFrame({"a": list("abcdef"), "b": range(6)})
st.altair_chart(alt.Chart(data).mark_bar().encode(x="a:N", y="b:Q"), width="stretch")
st.dataframe(data)
"""
SHELL = """

def numbered(number: int) -> Callable[[], None]:
    def draw() -> None:
        page(number)

    return draw


with st.sidebar:
    st.selectbox("Pipeline", ["All pipelines", "Sales"])
    st.multiselect("Owner", ["Ann", "Bo"], placeholder="Everyone")
    st.date_input("Boxes created", value=())
    st.multiselect("Closed stages", ["Won", "Lost"], default=["Won", "Lost"])
st.navigation([st.Page(numbered(i), title=f"Page {i}", url_path=f"p{i}", default=i == 0) for i in range(10)]).run()
"""
FLOORS: dict[str, str] = {
    "title": 'import streamlit as st\nst.title("Floor", anchor=False)\n',
    "chart_table": IMPORTS + CHART_AND_TABLE,
    "shell": "from collections.abc import Callable\n" + IMPORTS + "\ndef page(number: int) -> None:\n"
    + textwrap.indent(CHART_AND_TABLE.replace('"Floor"', 'f"Floor {number}"'), "    ") + SHELL,
}
"""Streamlit pages that run no query, measured as the app's pages are: a title alone; a title, one small
chart and one small table; that page in a shell like the dashboard's (a sidebar of four filters, ten
pages in the navigation)."""
STATE = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  const count = (selector) => document.querySelectorAll(selector).length;
  return {url: location.href, script: app && app.getAttribute('data-test-script-state'), titles: count('h1'),
          charts: count('[data-testid="stVegaLiteChart"]'), drawn_charts: count('[data-testid="stVegaLiteChart"] .marks'),
          tables: count('[data-testid="stDataFrame"]'), drawn_tables: count('[data-testid="stDataFrame"] canvas'),
          exception: count('[data-testid="stException"]')};
}"""
"""What the page shows when it is not drawn in time (recorded with the failure)."""
TIMEOUT_MS = 120_000


@contextmanager
def served(app_file: Path, env: dict[str, str]) -> Iterator[str]:
    """``streamlit run app_file`` on a free port; yields its URL, stops it afterwards."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(app_file), "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
        cwd=str(REPO_ROOT), env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/_stcore/health", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("streamlit did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=20)


def _median(seconds: Sequence[float]) -> float:
    return round(statistics.median(seconds), 3)


def _visit(page: Any, address: str, before: Callable[[], None] = lambda: None) -> float:
    before()  # os.utime: a new data version, every query misses the cache
    started = time.perf_counter()
    page.goto(address)
    page.wait_for_function(DRAWN, timeout=TIMEOUT_MS, polling=20)
    return time.perf_counter() - started


def _click_to(page: Any, url_path: str) -> float:
    page.evaluate(ARM)
    started = time.perf_counter()
    page.click(f'[data-testid="stSidebarNavLink"][href$="/{url_path}"]')
    page.wait_for_function(CLICKED_AND_DRAWN, timeout=TIMEOUT_MS, polling=20)
    return time.perf_counter() - started


def _click(page: Any, url_path: str, away: str, before: Callable[[], None] = lambda: None) -> float:
    """From the page shown, to the page ``away`` by its sidebar link (not counted), ``before()``, then
    back to ``url_path`` by its link (counted)."""
    _click_to(page, away)
    before()
    return _click_to(page, url_path)


def _address(url: str, url_path: str, params: dict[str, str]) -> str:
    return f"{url}/{url_path}" + (f"?{urlencode(params)}" if params else "")


def _floors(page: Any, runs: int) -> dict[str, float]:
    """The median address figure of each floor page, and the click figure of the shell's."""
    found: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="floor_app_") as tmp:
        for name, source in FLOORS.items():
            app = Path(tmp) / f"{name}.py"
            app.write_text(source, "utf-8")
            with served(app, {}) as url:
                _visit(page, url)  # the first visit loads Streamlit's scripts into the browser cache
                found[f"{name}_s"] = _median([_visit(page, url) for _ in range(runs)])
                if name == "shell":
                    found["shell_click_s"] = _median([_click(page, "p2", "p1") for _ in range(runs)])
    return found


def _page_times(page: Any, url: str, target: tuple[str, dict[str, str]], targets: Sequence[tuple[str, str, dict[str, str]]],
                duckdb_path: Path, runs: int, cold_runs: int) -> dict[str, float]:
    """One page's figures (module docstring)."""
    url_path, params = target
    address = _address(url, url_path, params)
    cold = [_visit(page, address, before=lambda: os.utime(duckdb_path)) for _ in range(cold_runs)]
    warm = [_visit(page, address) for _ in range(runs)]
    times = {"cold_s": _median(cold), "warm_s": _median(warm)}
    if params:  # no link in the sidebar
        return times
    away = targets[1][1] if url_path == targets[0][1] else targets[0][1]
    click_cold = [_click(page, url_path, away, before=lambda: os.utime(duckdb_path)) for _ in range(cold_runs)]
    click_warm = [_click(page, url_path, away) for _ in range(runs)]
    return {**times, "click_cold_s": _median(click_cold), "click_warm_s": _median(click_warm)}


def browser_times(duckdb_path: Path, chromium: str, targets: Sequence[tuple[str, str, dict[str, str]]],
                  runs: int, cold_runs: int) -> dict[str, Any]:
    """Cold and warm figures of every page in ``targets`` (label, url path, query parameters), and
    the floor (module docstring)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    times: dict[str, Any] = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        times["floor"] = _floors(page, max(runs, 3))
        with served(APP_FILE, {"STREAK_DUCKDB_PATH": str(duckdb_path)}) as url:
            _visit(page, _address(url, *targets[0][1:]))  # imports the app's modules: not counted
            for label, url_path, params in targets:
                try:
                    times[label] = _page_times(page, url, (url_path, params), targets, duckdb_path, runs, cold_runs)
                except PlaywrightTimeout:
                    # recorded, not raised: one page that never says it is drawn must not lose the others
                    times[label] = {"error": f"not drawn within {TIMEOUT_MS / 1000:.0f} s: {page.evaluate(STATE)}"}
                print(f"Chromium: {label} {times[label]}", file=sys.stderr, flush=True)
        browser.close()
    return times
