"""How long the dashboard takes to render each page, cold and warm (Streamlit AppTest runs).

    python benchmarks/dashboard_render.py --duckdb PATH          # an existing load
    python benchmarks/dashboard_render.py --boxes 20000          # load a demo account of that size first
        [--runs 5] [--pipeline NAME] [--browser] [--json PATH]

Per page it reports:

* ``cold_s``: the first render with an empty query cache (every query runs against DuckDB);
* ``warm_s``: the median of ``--runs`` further renders (queries answered by ``st.cache_data``;
  what a person sees while clicking around within the cache TTL). The target is < 3 s.

Both are measured twice: all pipelines, and one pipeline selected (``--pipeline``, default: the
biggest), because the box explorer switches to the pipeline's wide view then. AppTest runs the
script in-process, including the Arrow serialisation of tables and charts, but not the browser's
drawing; ``--browser`` adds the time from navigation to a drawn chart/table in headless Chromium
against ``streamlit run`` (warm cache). Timings are wall-clock on this machine; they are not
asserted anywhere (benchmarks are not tests).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dashboards.app_pages import PAGES as APP_PAGES
from benchmarks.report import publish

REPO_ROOT = Path(__file__).resolve().parent.parent
APP_FILE = REPO_ROOT / "dashboards" / "streak_dashboard.py"
MAIN_JOB = REPO_ROOT / "pipelines" / "streak_full.py"
PAGES = tuple("" if index == 0 else page.url_path for index, page in enumerate(APP_PAGES))
"""url paths of the app's pages ("" = the default page)."""
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def load_demo(boxes: int, root: Path, rate: float) -> Path:
    """``pipelines/streak_full.py --demo --demo-boxes N`` into ``root``; returns the DuckDB file."""
    path = root / "streak.duckdb"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DESTINATION__", "SOURCES__"))},
        "STREAK_DUCKDB_PATH": str(path),
        "DLT_DATA_DIR": str(root / "dlt"),
        "RUNTIME__DLTHUB_TELEMETRY": "false",
        "SOURCES__STREAK__MAX_REQUESTS_PER_SECOND": str(rate),
    }
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, str(MAIN_JOB), "--demo", "--demo-boxes", str(boxes), "--quiet"],
        env=env, check=True, cwd=str(root),
    )
    print(f"loaded {boxes} boxes in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return path


def _page_hash(at: Any, url_path: str) -> str:
    return next(h for h, info in at._registered_pages.items() if info.get("url_pathname", "") == url_path)


def render_times(runs: int, pipeline_key: str | None) -> dict[str, dict[str, float]]:
    """Cold and warm AppTest render time of every page (one app session, like one browser tab)."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    st.cache_data.clear()
    at = AppTest.from_file(str(APP_FILE), default_timeout=300)
    at.run()  # registers the pages (and imports everything): not counted
    if pipeline_key is not None:
        at.sidebar.selectbox(key="filter_pipeline").set_value(pipeline_key)
    st.cache_data.clear()
    times: dict[str, dict[str, float]] = {}
    for url_path in PAGES:
        at._page_hash = _page_hash(at, url_path)
        started = time.perf_counter()
        at.run()
        cold = time.perf_counter() - started
        if at.exception:
            raise RuntimeError(f"page {url_path or 'overview'} failed: {at.exception[0].value}")
        warm = []
        for _ in range(runs):
            started = time.perf_counter()
            at.run()
            warm.append(time.perf_counter() - started)
        times[url_path or "overview"] = {"cold_s": round(cold, 3), "warm_s": round(statistics.median(warm), 3)}
    return times


@contextmanager
def served(duckdb_path: Path) -> Iterator[str]:
    """``streamlit run`` on a free port; yields its URL, stops it afterwards."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "STREAK_DUCKDB_PATH": str(duckdb_path)}
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(APP_FILE), "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1"],
        cwd=str(REPO_ROOT), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
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
                    raise RuntimeError("streamlit did not start")
                time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=20)


def browser_times(duckdb_path: Path, chromium: str) -> dict[str, float]:
    """Navigation -> first chart (or table) drawn, per page, second visit (server cache warm)."""
    from playwright.sync_api import sync_playwright

    ready = '[data-testid="stVegaLiteChart"] .marks, [data-testid="stDataFrame"] canvas'
    times: dict[str, float] = {}
    with served(duckdb_path) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        for url_path in PAGES:
            page.goto(f"{url}/{url_path}")  # first visit fills the cache
            page.wait_for_selector(ready, state="visible", timeout=300_000)
        for url_path in PAGES:
            started = time.perf_counter()
            page.goto(f"{url}/{url_path}")
            page.wait_for_selector(ready, state="visible", timeout=300_000)
            times[url_path or "overview"] = round(time.perf_counter() - started, 3)
        browser.close()
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--duckdb", type=Path, help="an existing DuckDB file the main job wrote")
    source.add_argument("--boxes", type=int, help="load a demo account with this many boxes first")
    parser.add_argument("--days", type=int, default=0,
                        help="with --boxes: then D times advance the sandbox a day and load again (history, outcomes)")
    parser.add_argument("--keep", type=Path, help="with --boxes: keep the DuckDB file built here (re-measure with --duckdb)")
    parser.add_argument("--build-only", action="store_true", help="with --keep: build the file, measure nothing")
    parser.add_argument("--rate", type=float, default=2000, help="client request limit for --boxes (req/s)")
    parser.add_argument("--runs", type=int, default=5, help="warm renders per page (median reported)")
    parser.add_argument("--pipeline", help="pipeline name for the one-pipeline pass (default: the biggest)")
    parser.add_argument("--browser", action="store_true", help="also time real page loads in Chromium")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--json", type=Path, help="also write the results as JSON to this path")
    args = parser.parse_args()
    if (args.days or args.keep) and args.boxes is None:
        parser.error("--days and --keep need --boxes")
    if args.build_only and not args.keep:
        parser.error("--build-only needs --keep")

    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    with tempfile.TemporaryDirectory(prefix="dashboard_bench_") as tmp:
        os.environ.setdefault("DLT_DATA_DIR", str(Path(tmp) / "dlt"))
        build: list[dict[str, Any]] | None = None
        if args.boxes is not None and args.days:
            from benchmarks.dashboard_history_build import build_history

            path = (args.keep or Path(tmp) / "streak.duckdb").resolve()
            started = time.perf_counter()
            build = build_history(args.boxes, args.days, path, args.rate,
                                  progress=lambda line: print(line, file=sys.stderr, flush=True))
            print(f"built {args.boxes} boxes x {args.days} days in {time.perf_counter() - started:.0f} s",
                  file=sys.stderr)
        elif args.boxes is not None:
            path = load_demo(args.boxes, Path(tmp), args.rate)
            if args.keep:
                path = Path(shutil.copy2(path, args.keep)).resolve()
        else:
            from streak_warehouse.destination import default_duckdb_path

            path = (args.duckdb or default_duckdb_path()).resolve()
        if args.build_only:
            publish({"duckdb": str(path), "build": build, "load_avg_1m_after": round(os.getloadavg()[0], 2)}, args.json)
            return 0
        os.environ["STREAK_DUCKDB_PATH"] = str(path)

        from dashboards.data import freshness, lookups
        from dashboards.data.connection import open_duckdb

        runner, _ = open_duckdb(path)
        try:
            pipelines = lookups.pipelines(runner)
            counts = freshness.row_counts(runner).set_index("table")["rows"].to_dict()
        finally:
            runner.close()
        chosen = pipelines.sort_values("boxes").iloc[-1]
        if args.pipeline:
            chosen = pipelines[pipelines["pipeline_name"] == args.pipeline].iloc[0]

        result: dict[str, Any] = {
            "duckdb": str(path),
            "boxes": int(counts.get("boxes", 0)),
            "rows": int(sum(counts.values())),
            "all_pipelines": render_times(args.runs, None),
            "one_pipeline": {"name": str(chosen["pipeline_name"]), "boxes": int(chosen["boxes"]),
                             **render_times(args.runs, str(chosen["pipeline_key"]))},
        }
        if args.browser:
            result["browser_warm_s"] = browser_times(path, args.chromium)
    for scope in ("all_pipelines", "one_pipeline"):
        pages = {k: v for k, v in result[scope].items() if isinstance(v, dict)}
        result[scope]["total_warm_s"] = round(sum(p["warm_s"] for p in pages.values()), 3)
        result[scope]["total_cold_s"] = round(sum(p["cold_s"] for p in pages.values()), 3)
    publish(result, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
