"""The dashboard's pages in headless Chromium against ``streamlit run``: navigation until the page is drawn.

"Drawn" = Streamlit says the script run is over (``stApp``'s ``data-test-script-state`` is
``notRunning``) and every chart and table not in a closed expander has its marks or canvas. Per page:

* ``cold_s``: opening the page's address (a new tab, a reload: the browser loads Streamlit's scripts
  from its cache and opens a new session) right after the DuckDB file's modification time moved (what
  a finished load does), so every query misses the cache, exactly as after a load;
* ``warm_s``: the median of further such visits (queries from the cache within its TTL);
* ``click_cold_s`` / ``click_warm_s``: the same two, reaching the page from another one by its link
  in the sidebar (the same session: what a person clicking through the app waits for).

``floor_s`` is the address measure for a one-line Streamlit page (a title), served the same way: what
Streamlit and Chromium cost before the dashboard runs a query. The Box explorer's one-box page has no
link in the sidebar: only the address figures.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
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
  const app = document.querySelector('[data-testid="stApp"]');
  new MutationObserver(() => {
    if (app.getAttribute('data-test-script-state') === 'running') window.__ran = true;
  }).observe(app, {attributes: true, attributeFilter: ['data-test-script-state']});
}"""
"""Before a click: notes when the next script run starts, so the previous page's drawn state is not taken for the new one's."""
CLICKED_AND_DRAWN = "() => window.__ran && (" + DRAWN + ")()"
FLOOR_APP = 'import streamlit as st\nst.title("Floor", anchor=False)\n'
TIMEOUT_MS = 300_000


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


def _visit(page: Any, address: str) -> float:
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


def browser_times(duckdb_path: Path, chromium: str, targets: Sequence[tuple[str, str, dict[str, str]]],
                  runs: int) -> dict[str, Any]:
    """Cold and warm figures of every page in ``targets`` (label, url path, query parameters), and
    the floor (module docstring)."""
    from playwright.sync_api import sync_playwright

    times: dict[str, Any] = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        with tempfile.TemporaryDirectory(prefix="floor_app_") as tmp:
            floor_app = Path(tmp) / "floor.py"
            floor_app.write_text(FLOOR_APP, "utf-8")
            with served(floor_app, {}) as url:
                _visit(page, url)  # the first visit loads Streamlit's scripts into the browser cache
                times["floor_s"] = round(statistics.median(_visit(page, url) for _ in range(max(runs, 3))), 3)
        with served(APP_FILE, {"STREAK_DUCKDB_PATH": str(duckdb_path)}) as url:
            _visit(page, _address(url, *targets[0][1:]))  # imports the app's modules: not counted
            for label, url_path, params in targets:
                os.utime(duckdb_path)  # a new data version: every query misses the cache
                cold = _visit(page, _address(url, url_path, params))
                warm = [_visit(page, _address(url, url_path, params)) for _ in range(runs)]
                times[label] = {"cold_s": round(cold, 3), "warm_s": round(statistics.median(warm), 3)}
                if params:
                    continue
                away = targets[1][1] if url_path == targets[0][1] else targets[0][1]
                click_cold = _click(page, url_path, away, before=lambda: os.utime(duckdb_path))
                click_warm = [_click(page, url_path, away) for _ in range(runs)]
                times[label].update(click_cold_s=round(click_cold, 3), click_warm_s=round(statistics.median(click_warm), 3))
        browser.close()
    return times
