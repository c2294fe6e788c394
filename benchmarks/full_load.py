"""How close a full load comes to the API's physical limit, measured end to end (not a timed test).

    python benchmarks/full_load.py [--boxes 2000] [--latency-ms 100] [--rate-limit 40] [--json PATH]
                                   [--client-rate R] [--compare-boxes 300 | --no-compare] [--repeat N]
    python benchmarks/full_load.py --scale [--scale-sizes 1000,2000,5000,20000] [--json PATH]

Default mode: starts the sandbox (``python -m streak_source.sandbox serve``) as its own process with
the given size, per-request latency and server-side rate limit, then runs the real main job
(``python pipelines/streak_full.py --summary-json ...``) as a subprocess configured only by
environment variables, and measures it from the outside:

``api_calls``       requests the job sent (its own count, cross-checked with the sandbox's)
``needed_calls``    the fewest calls a complete extraction needs (the sandbox's count)
``naive_calls``     the list calls plus one call per box per child endpoint (no skipping)
``wall_s``          the main job process, spawn to exit: startup, extract, normalize, load, views
``ideal_s``         ``api_calls / rate limit``: no load of this account can be faster at that rate
``utilization``     ``ideal_s / wall_s``
``http_429``        429 answers the sandbox gave (its rate limit was hit)
``rows_loaded``     rows the job loaded (every table), checked against the sandbox's ground truth
``rows_per_s_local`` ``rows_loaded / (normalize_s + load_s)``: the local processing speed
``peak_rss_mb``     the main job process's peak resident memory (its kernel high-water mark); also
                    ``peak_tree_mb``: with its forked normalize workers (their unique memory added)

In the same run, on a smaller account (``--compare-boxes``, same latency and limits, a fresh
sandbox for each side) it runs the naive baseline (``benchmarks/naive_rest_api.py``: a plain
declarative dlt ``rest_api`` config, sequential, no skipping) and the project's own load, and
reports both and the ratios. ``--repeat N`` runs the default measurement N times and reports the
spread; the top-level figures are those of the median run (by wall time).

``--scale``: the project's load of 1k, 2k, 5k and 20k boxes at zero latency and no rate limit (the
client limit set out of reach), reporting how time, local rows/s and peak memory grow with size.

Everything runs in temp dirs (``DLT_DATA_DIR``, ``STREAK_DUCKDB_PATH``); the machine's load average
is recorded with every run, since a shared 2-core machine skews wall times.

Why one file of ~470 lines: a benchmark is read and run as one script (the measurement, the naive
comparison and the scale series share the same run and report code); nothing imports it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import selectors
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import psutil
import requests

import streak_clock
from benchmarks.report import machine, publish
from streak_source.objects import BOX_CHILDREN

REPO_ROOT = Path(__file__).resolve().parent.parent
MAIN_JOB = REPO_ROOT / "pipelines" / "streak_full.py"
NAIVE_JOB = REPO_ROOT / "benchmarks" / "naive_rest_api.py"

API_KEY = "demo"
ANCHOR_DATE = "2025-06-30"
"""Fixed 'today' of the generated account, so every run reads byte-identical responses."""
UNLIMITED_CLIENT_RATE = 1_000_000.0
"""--scale: the client limiter cannot be switched off, so it is set where it never binds."""
SANDBOX_START_TIMEOUT_S = 300.0
JOB_TIMEOUT_S = 3600.0
CHILD_ROUTE_MARK = "/boxes/{box_key}/"


# -- processes ---------------------------------------------------------------------------------


@contextlib.contextmanager
def sandbox(boxes: int, latency_ms: float, rate_limit: float | None, seed: int, log: Path) -> Iterator[str]:
    """The sandbox as its own process; yields its base URL, stops it (SIGTERM) on exit."""
    cmd = [sys.executable, "-m", "streak_source.sandbox", "serve", "--boxes", str(boxes), "--seed", str(seed),
           "--anchor-date", ANCHOR_DATE, "--latency-ms", str(latency_ms)]
    if rate_limit:
        cmd += ["--rate-limit", str(rate_limit)]
    with open(log, "w") as err:
        proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=err, text=True)
        try:
            yield _first_line(proc, SANDBOX_START_TIMEOUT_S, log)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _first_line(proc: subprocess.Popen[str], timeout_s: float, log: Path) -> str:
    assert proc.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        if not selector.select(timeout_s):
            raise RuntimeError(f"sandbox printed no base URL in {timeout_s:.0f} s; see {log}")
    line = proc.stdout.readline().strip()
    if not line.startswith("http"):
        raise RuntimeError(f"sandbox did not start ({line!r}); see {log}")
    return line


def sandbox_get(base_url: str, route: str) -> dict[str, Any]:
    response = requests.get(base_url + route, timeout=60)
    response.raise_for_status()
    return response.json()  # type: ignore[no-any-return]


def clean_env(extra: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without anything that would redirect or reconfigure the job."""
    drop = ("SOURCES__", "DESTINATION__", "PIPELINES__", "NORMALIZE__", "LOAD__", "EXTRACT__", "DATA_WRITER__")
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(drop) and k not in ("DLT_PROJECT_DIR", "DLT_DATA_DIR", "STREAK_DUCKDB_PATH")}
    return {**base, "RUNTIME__DLTHUB_TELEMETRY": "false", **extra}


def run_measured(cmd: Sequence[str], env: Mapping[str, str], cwd: Path, log: Path) -> dict[str, Any]:
    """Run ``cmd`` to completion: wall time, exit code and three views of its memory.

    ``peak_rss_mb``: the process's own high-water mark (``VmHWM``, kept by the kernel, read every
    50 ms until exit). ``peak_tree_mb``: the most the job held at once with its helper processes
    (dlt's forked normalize workers): its RSS plus their unique memory (USS; RSS would count the
    pages they share with the parent twice), sampled every 50 ms. ``peak_rss_any_process_mb``: the
    largest single-process RSS in the tree (``wait4``'s ``ru_maxrss``).
    """
    load_before = os.getloadavg()
    own_hwm_kb = 0
    tree_peak = 0
    done = threading.Event()
    with open(log, "w") as out:
        started = time.monotonic()
        proc = subprocess.Popen(list(cmd), env=dict(env), cwd=cwd, stdout=out, stderr=subprocess.STDOUT)

        def sample() -> None:
            nonlocal own_hwm_kb, tree_peak
            with contextlib.suppress(psutil.Error):
                root = psutil.Process(proc.pid)
                status = Path(f"/proc/{proc.pid}/status")
                while not done.wait(0.05):
                    with contextlib.suppress(OSError, ValueError):
                        for line in status.read_text().splitlines():
                            if line.startswith("VmHWM:"):
                                own_hwm_kb = max(own_hwm_kb, int(line.split()[1]))
                    with contextlib.suppress(psutil.Error):
                        total = root.memory_info().rss
                        for child in root.children(recursive=True):
                            with contextlib.suppress(psutil.Error):
                                total += child.memory_full_info().uss
                        tree_peak = max(tree_peak, total)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        deadline = started + JOB_TIMEOUT_S
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"{cmd[1]} ran longer than {JOB_TIMEOUT_S:.0f} s; see {log}")
            time.sleep(0.01)
        wall_s = time.monotonic() - started
        done.set()
        sampler.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{Path(cmd[1]).name} exited {proc.returncode}; see {log}:\n{_tail(log)}")
    return {
        "wall_s": round(wall_s, 2),
        "peak_rss_mb": round(own_hwm_kb / 1024, 1),
        "peak_tree_mb": round(tree_peak / 2**20, 1),
        "peak_rss_any_process_mb": round(usage.ru_maxrss / 1024, 1),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "load_avg_1m_before": round(load_before[0], 2),
        "load_avg_1m_after": round(os.getloadavg()[0], 2),
    }


def _tail(path: Path, lines: int = 15) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


# -- one measured load ---------------------------------------------------------------------------


def project_load(boxes: int, latency_ms: float, rate_limit: float | None, client_rate: float, seed: int,
                 work: Path) -> dict[str, Any]:
    """The main job against a fresh sandbox, measured from outside. Raises if a table is wrong."""
    work.mkdir(parents=True, exist_ok=True)
    with sandbox(boxes, latency_ms, rate_limit, seed, work / "sandbox.log") as base_url:
        before = sandbox_get(base_url, "__sandbox__/stats")
        truth = sandbox_get(base_url, "__sandbox__/account")
        summary_path = work / "summary.json"
        env = clean_env({
            "DLT_DATA_DIR": str(work / "dlt"),
            "STREAK_DUCKDB_PATH": str(work / "streak.duckdb"),
            "SOURCES__STREAK__API_KEY": API_KEY,
            "SOURCES__STREAK__BASE_URL": base_url,
            "SOURCES__STREAK__MAX_REQUESTS_PER_SECOND": repr(client_rate),
        })
        measured = run_measured([sys.executable, str(MAIN_JOB), "--quiet", "--summary-json", str(summary_path)],
                                env, work, work / "main_job.log")
        stats = sandbox_get(base_url, "__sandbox__/stats")
        empty_pipelines = empty_pipeline_count(base_url)
    summary = json.loads(summary_path.read_text())
    rows = dict(summary["rows"])
    wrong = {t: (rows.get(t), n) for t, n in truth.items() if t in rows and rows[t] != n}
    missing = sorted(t for t in ("boxes", *(e.table for e in BOX_CHILDREN)) if t not in rows)
    if wrong or missing:
        raise RuntimeError(f"loaded rows differ from the ground truth (table: (loaded, truth)): {wrong}, "
                           f"tables missing: {missing}")
    api_calls = int(summary["api_calls"])
    if api_calls != stats["requests_total"] - before["requests_total"]:
        raise RuntimeError(f"job counted {api_calls} calls, sandbox saw {stats['requests_total']}")
    limits = [r for r in (rate_limit, client_rate) if r and r < UNLIMITED_CLIENT_RATE]
    ideal_s = api_calls / min(limits) if limits else None  # no limit: no API-bound ideal
    rows_loaded = sum(rows.values())
    local_s = summary["normalize_s"] + summary["load_s"]
    return {
        "boxes": boxes,
        "latency_ms": latency_ms,
        "server_rate_limit": rate_limit,
        "client_rate_limit": client_rate,
        "api_calls": api_calls,
        "needed_calls": stats["needed_calls"],
        "naive_calls": naive_calls(stats, truth, empty_pipelines),
        "wall_s": measured["wall_s"],
        "ideal_s": round(ideal_s, 2) if ideal_s is not None else None,
        "utilization": round(ideal_s / measured["wall_s"], 3) if ideal_s is not None else None,
        "http_429": int(stats["responses_by_status"].get("429", 0)),
        "rows_loaded": rows_loaded,
        "rows_per_s_local": round(rows_loaded / local_s) if local_s else None,
        "peak_rss_mb": measured["peak_rss_mb"],
        "peak_tree_mb": measured["peak_tree_mb"],
        "peak_rss_any_process_mb": measured["peak_rss_any_process_mb"],
        "cpu_s": measured["cpu_s"],
        "achieved_rate": round(api_calls / summary["extract_s"], 2) if summary["extract_s"] else None,
        "startup_s": round(measured["wall_s"] - summary["total_s"], 2),
        "extract_s": round(summary["extract_s"], 2),
        "normalize_s": round(summary["normalize_s"], 2),
        "load_s": round(summary["load_s"], 2),
        "views_s": round(summary["views_s"], 2),
        "max_in_flight": stats.get("max_in_flight"),
        "rows_match_ground_truth": True,
        "load_avg_1m_before": measured["load_avg_1m_before"],
        "load_avg_1m_after": measured["load_avg_1m_after"],
    }


def naive_calls(stats: Mapping[str, Any], truth: Mapping[str, int], empty_pipelines: int) -> int:
    """The list calls the project made, plus one call per box per child endpoint.

    The project does not list an empty pipeline's boxes; a naive client does, so one listing call per
    empty pipeline is added back.
    """
    by_route: Mapping[str, int] = stats["requests_by_route"]
    list_calls = sum(n for route, n in by_route.items() if CHILD_ROUTE_MARK not in route)
    return list_calls + empty_pipelines + len(BOX_CHILDREN) * truth["boxes"]


def empty_pipeline_count(base_url: str) -> int:
    """Asked after the run's stats were taken, so this call is not counted against the job."""
    response = requests.get(base_url + "v1/pipelines", auth=(API_KEY, ""), timeout=60)
    response.raise_for_status()
    return sum(1 for p in response.json() if p.get("boxCount") == 0)


def naive_load(boxes: int, latency_ms: float, rate_limit: float | None, seed: int, work: Path) -> dict[str, Any]:
    """The plain rest_api baseline against a fresh sandbox, measured like the project's load."""
    work.mkdir(parents=True, exist_ok=True)
    with sandbox(boxes, latency_ms, rate_limit, seed, work / "sandbox.log") as base_url:
        truth = sandbox_get(base_url, "__sandbox__/account")
        summary_path = work / "summary.json"
        env = clean_env({"DLT_DATA_DIR": str(work / "dlt")})
        measured = run_measured(
            [sys.executable, str(NAIVE_JOB), "--base-url", base_url, "--api-key", API_KEY,
             "--duckdb", str(work / "naive.duckdb"), "--summary-json", str(summary_path)],
            env, work, work / "naive_job.log",
        )
        stats = sandbox_get(base_url, "__sandbox__/stats")
    summary = json.loads(summary_path.read_text())
    rows = summary["rows"]
    child_tables = [e.table for e in BOX_CHILDREN]
    wrong = {t: (rows.get(t, 0), truth[t]) for t in ("boxes", *child_tables) if rows.get(t, 0) != truth[t]}
    if wrong:
        raise RuntimeError(f"naive load's rows differ from the ground truth: {wrong}")
    api_calls = int(stats["requests_total"])
    limit = rate_limit or None
    rows_loaded = sum(rows.values())
    local_s = summary["normalize_s"] + summary["load_s"]
    return {
        "boxes": boxes,
        "api_calls": api_calls,
        "needed_calls": stats["needed_calls"],
        "wall_s": measured["wall_s"],
        "ideal_s": round(api_calls / limit, 2) if limit else None,
        "http_429": int(stats["responses_by_status"].get("429", 0)),
        "rows_loaded": rows_loaded,
        "rows_per_s_local": round(rows_loaded / local_s) if local_s else None,
        "peak_rss_mb": measured["peak_rss_mb"],
        "peak_tree_mb": measured["peak_tree_mb"],
        "cpu_s": measured["cpu_s"],
        "achieved_rate": round(api_calls / summary["extract_s"], 2) if summary["extract_s"] else None,
        "extract_s": summary["extract_s"],
        "normalize_s": summary["normalize_s"],
        "load_s": summary["load_s"],
        "child_rows_match_ground_truth": True,
        "load_avg_1m_before": measured["load_avg_1m_before"],
        "load_avg_1m_after": measured["load_avg_1m_after"],
    }


# -- modes ---------------------------------------------------------------------------------------


def default_mode(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    client_rate = args.client_rate or args.rate_limit or UNLIMITED_CLIENT_RATE
    runs = []
    for i in range(args.repeat):
        _say(f"project load: {args.boxes} boxes, {args.latency_ms:g} ms latency, server limit "
             f"{args.rate_limit:g}/s, client limit {client_rate:g}/s (run {i + 1}/{args.repeat})")
        run = project_load(args.boxes, args.latency_ms, args.rate_limit, client_rate, args.seed, work / f"default_{i}")
        _say(_line(run))
        runs.append(run)
    median = sorted(runs, key=lambda r: r["wall_s"])[(len(runs) - 1) // 2]
    result: dict[str, Any] = {**median, "runs": runs if len(runs) > 1 else []}
    if len(runs) > 1:
        result["spread"] = {key: _spread([r[key] for r in runs])
                            for key in ("wall_s", "utilization", "achieved_rate", "peak_rss_mb", "rows_per_s_local")}
    result["targets"] = {
        "api_calls == needed_calls": median["api_calls"] == median["needed_calls"],
        "utilization >= 0.90": (median["utilization"] or 0) >= 0.90,
        "http_429 == 0": median["http_429"] == 0,
    }
    if args.compare_boxes:
        result["comparison"] = compare(args, client_rate, work)
    return result


def compare(args: argparse.Namespace, client_rate: float, work: Path) -> dict[str, Any]:
    _say(f"comparison on {args.compare_boxes} boxes: the project's load")
    project = project_load(args.compare_boxes, args.latency_ms, args.rate_limit, client_rate, args.seed,
                           work / "compare_project")
    _say(_line(project))
    _say(f"comparison on {args.compare_boxes} boxes: naive rest_api baseline (sequential, no skipping)")
    naive = naive_load(args.compare_boxes, args.latency_ms, args.rate_limit, args.seed, work / "compare_naive")
    _say(_line(naive))
    calls_ratio = naive["api_calls"] / project["api_calls"]
    wall_ratio = naive["wall_s"] / project["wall_s"]
    return {
        "boxes": args.compare_boxes,
        "naive": naive,
        "project": project,
        "ratios": {
            "calls (naive / project)": round(calls_ratio, 2),
            "wall (naive / project)": round(wall_ratio, 2),
            "peak_rss (naive / project)": round(naive["peak_rss_mb"] / project["peak_rss_mb"], 2),
        },
        "targets": {"calls ratio >= 2": calls_ratio >= 2, "wall ratio >= 4": wall_ratio >= 4},
    }


def scale_mode(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    runs = []
    for boxes in args.scale_sizes:
        _say(f"scale: {boxes} boxes, zero latency, no server limit, client limit out of reach")
        run = project_load(boxes, 0.0, None, UNLIMITED_CLIENT_RATE, args.seed, work / f"scale_{boxes}")
        _say(_line(run))
        runs.append(run)
    by_size = {r["boxes"]: r for r in runs}
    smallest = runs[0]
    growth = [{
        "boxes": r["boxes"],
        "size_x": round(r["boxes"] / smallest["boxes"], 2),
        "wall_x": round(r["wall_s"] / smallest["wall_s"], 2),
        "local_s_x": round((r["normalize_s"] + r["load_s"]) / (smallest["normalize_s"] + smallest["load_s"]), 2),
        "peak_rss_x": round(r["peak_rss_mb"] / smallest["peak_rss_mb"], 2),
        "peak_tree_x": round(r["peak_tree_mb"] / smallest["peak_tree_mb"], 2),
        "wall_ms_per_box": round(1000 * r["wall_s"] / r["boxes"], 2),
    } for r in runs]
    result: dict[str, Any] = {"runs": runs, "growth": growth}
    if 20000 in by_size:
        big = by_size[20000]
        result["targets"] = {"rows_per_s_local at 20k >= 20000": (big["rows_per_s_local"] or 0) >= 20000}
        if 2000 in by_size:
            for key in ("peak_rss_mb", "peak_tree_mb"):
                ratio = big[key] / by_size[2000][key]
                result[f"{key}_20k_over_2k"] = round(ratio, 2)
                result["targets"][f"{key} 20k <= 1.5x 2k"] = ratio <= 1.5
    return result


# -- output ----------------------------------------------------------------------------------------


def _spread(values: Sequence[float | None]) -> dict[str, float]:
    xs = [float(v) for v in values if v is not None]
    return {"min": min(xs), "median": statistics.median(xs), "max": max(xs),
            "stdev": round(statistics.stdev(xs), 3) if len(xs) > 1 else 0.0}


def _line(run: Mapping[str, Any]) -> str:
    keys = ("api_calls", "needed_calls", "wall_s", "ideal_s", "utilization", "http_429", "rows_loaded",
            "rows_per_s_local", "peak_rss_mb", "peak_tree_mb", "extract_s", "normalize_s", "load_s", "load_avg_1m_before")
    return "  " + ", ".join(f"{k}={run[k]}" for k in keys if k in run)


def _say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="full_load.py", description=__doc__.splitlines()[0])
    parser.add_argument("--boxes", type=int, default=2000, help="account size for the main measurement")
    parser.add_argument("--latency-ms", type=float, default=100.0, help="sandbox latency per request")
    parser.add_argument("--rate-limit", type=float, default=40.0,
                        help="sandbox's server-side limit, requests/s (429 + Retry-After above it); 0 = none")
    parser.add_argument("--client-rate", type=float, default=None,
                        help="the job's max_requests_per_second (default: --rate-limit, or out of reach if that is 0)")
    parser.add_argument("--compare-boxes", type=int, default=300, help="account size for the naive comparison")
    parser.add_argument("--no-compare", action="store_true", help="skip the naive comparison")
    parser.add_argument("--repeat", type=int, default=1, help="run the main measurement N times")
    parser.add_argument("--seed", type=int, default=7, help="sandbox account seed")
    parser.add_argument("--scale", action="store_true", help="run the scale series instead")
    parser.add_argument("--scale-sizes", type=lambda s: [int(x) for x in s.split(",")],
                        default=[1000, 2000, 5000, 20000], help="comma-separated box counts for --scale")
    parser.add_argument("--json", type=Path, default=None, help="also write the result JSON to PATH")
    parser.add_argument("--keep", type=Path, default=None,
                        help="work dir to keep (logs, summaries, DuckDB files); default: a temp dir, removed")
    args = parser.parse_args(argv)
    if args.no_compare:
        args.compare_boxes = 0
    if args.repeat < 1 or args.boxes < 0 or args.compare_boxes < 0:
        parser.error("--repeat must be >= 1; --boxes and --compare-boxes >= 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    command = "python benchmarks/full_load.py " + " ".join(sys.argv[1:] if argv is None else argv)
    started = streak_clock.now()
    with contextlib.ExitStack() as stack:
        if args.keep:
            work = args.keep.resolve()
            work.mkdir(parents=True, exist_ok=True)
        else:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="streak_bench_")))
        body = scale_mode(args, work) if args.scale else default_mode(args, work)
    result = {
        "benchmark": "scale" if args.scale else "full_load",
        "command": command.strip(),
        "started_utc": started.isoformat(timespec="seconds"),
        "finished_utc": streak_clock.now().isoformat(timespec="seconds"),
        "machine": machine(),
        **body,
    }
    publish(result, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
