"""``--refresh changed`` (issue 15): what it costs, and that it gives exactly a full load's copy.

    python benchmarks/refresh.py cost [--boxes 20000] [--days 2] [--latency-ms 100] [--rate 10]
                                      [--json benchmarks/results/refresh.json]
    python benchmarks/refresh.py equality [--boxes 40] [--days 30] [--postgres URL]
                                          [--json benchmarks/results/refresh.json]
    python benchmarks/refresh.py memory [--boxes 20000] [--days 2] [--json benchmarks/results/refresh.json]

``cost``: a sandbox of ``--boxes`` boxes (its own process, ``--latency-ms`` on every call, the default
day rates: about 1 % of the boxes changed per day) and the main job as a process per run. Day 0: the
initial full load (a first ``--refresh changed``: no basis yet, so a full load that keeps one), at a
client limit out of reach (1000 req/s, 32 extract workers), because at
Streak's 10 req/s a 20,000-box full load takes ~80 minutes: its calls are measured, and its time at
``--rate`` is given as a LOWER BOUND, calls / rate, plus the measured time of everything but the
extract (normalize, load, views, history). Then per day: ``advance`` one day, run
``--refresh changed`` at ``--rate`` req/s (client limit; the sandbox adds the latency), measured:
calls, wall time (spawn to exit), peak RSS, child lists re-read and kept. Next to it, the calls a
full load of that day makes (the sandbox's ``needed_calls + needed_history_calls``, which the test
suite checks the job makes exactly) and their lower-bound time at ``--rate``.

``equality``: one in-process sandbox advanced day by day, two destinations of the same kind
(DuckDB files, or two Postgres databases on ``--postgres``): each day a ``--refresh changed`` run
into one and a full load into the other (``changed`` with ``full_refresh_every_days = 0``: always a
full load, one that keeps a basis, so the two bases are compared too); then every table of the two copies is compared row for
row (:func:`compare`), and the refresh's calls must equal the full load's less the child calls of
the boxes the sandbox did not change that day (:func:`expected_refresh_calls`). The test suite runs
this short (tests/test_refresh_simulation.py); the 30-day figures are in ``benchmarks/results``.

``memory``: the peak memory of a full load and of a refresh of the same day, side by side, measured
from outside as benchmarks/full_load.py measures it (``run_measured``: the main process's ``VmHWM``,
the tree with its normalize workers, the largest process), on that script's ``--scale`` account and
terms (seed 7, zero latency, no rate limit). Day 0: a full load into one DuckDB file and a first
``--refresh changed`` (a full load that keeps a basis) into another; then each day (``--days``) the
sandbox advances a day and both run again: a full load and a refresh, each after a previous load.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import requests

import streak_clock

REPO_ROOT = Path(__file__).resolve().parent.parent
MAIN_JOB = REPO_ROOT / "pipelines" / "streak_full.py"
SEED = 15
FAST_RATE = 1000.0
"""Client limit of runs whose time is not the point (the initial full load, the equality runs)."""

EQUALITY_RATES = {"changed": 0.2, "created": 0.03, "deleted": 0.015, "stage_added": 0.1, "field_added": 0.1}
"""A small account, busy: most days move boxes, create and delete some, add stages and fields."""

NOT_COMPARED: Mapping[str, str] = {
    "load_history": "one row per run: its id, time, mode and calls differ by design",
    "refresh_basis": "the run's own stamp: mode and time differ by design (the basis rows are compared)",
}
RUN_CLOCK_COLUMNS: Mapping[str, tuple[str, ...]] = {
    "box_stage_history": ("box_deleted_at",),
    "events": ("first_received_at", "last_received_at"),
}
"""Columns stamped with the run's own clock: the moment a run first missed a deleted box, and when
an event reached ``crm.events`` (events derived from the copy are received by the run itself); also
the forecast's reference time (:func:`run_clock_columns`)."""
VERSION_CLOCK_COLUMNS = ("valid_from", "valid_to")
"""History mode's columns (each ``<table>_history``): the runs' ends. The versions themselves must be
equal: a refresh keeps the same history a full load would."""


def run_clock_columns(table: str, tables: set[str]) -> tuple[str, ...]:
    if table.endswith("_history") and table.removesuffix("_history") in tables:
        return VERSION_CLOCK_COLUMNS
    if table == "forecast_monthly":
        return ("as_of", "period_start")
    return RUN_CLOCK_COLUMNS.get(table, ())

CHILD_KINDS = ("tasks", "threads", "comments", "meetings", "files")
"""The sandbox model's per-box child lists: one call each when not empty (pages of 1000)."""


# --------------------------------------------------------------------------- comparing two copies


def _rows_duckdb(path: Path) -> dict[str, tuple[list[str], list[str]]]:
    import duckdb

    with duckdb.connect(str(path), read_only=True) as con:
        return _tables(lambda sql: con.execute(sql).fetchall())


def _rows_postgres(url: str) -> dict[str, tuple[list[str], list[str]]]:
    import psycopg2

    con = psycopg2.connect(url, connect_timeout=5)
    try:
        def execute(sql: str) -> list[tuple[Any, ...]]:
            with con.cursor() as cursor:
                cursor.execute(sql)
                return list(cursor.fetchall())

        return _tables(execute)
    finally:
        con.close()


def _tables(execute: Any) -> dict[str, tuple[list[str], list[str]]]:
    """Every table of ``crm`` but dlt's own: (compared columns, sorted row texts)."""
    columns: dict[str, list[str]] = {}
    found = execute("SELECT table_name, column_name FROM information_schema.columns c WHERE "
                    "table_schema = 'crm' AND table_name IN (SELECT table_name FROM "
                    "information_schema.tables t WHERE t.table_schema = 'crm' AND "
                    "t.table_type = 'BASE TABLE')")
    tables = {table for table, _ in found}
    for table, column in found:
        if table.startswith("_dlt") or table in NOT_COMPARED:
            continue
        if column in ("_dlt_load_id", "_dlt_id") or column in run_clock_columns(table, tables):
            continue
        columns.setdefault(table, []).append(column)
    out = {}
    for table, names in sorted(columns.items()):
        names.sort()
        select = ", ".join(f'"{name}"' for name in names)
        out[table] = (names, sorted(repr(tuple(row)) for row in execute(f'SELECT {select} FROM crm."{table}"')))
    return out


def compare(refreshed: Mapping[str, tuple[list[str], list[str]]],
            full: Mapping[str, tuple[list[str], list[str]]], ignore: Sequence[str] = ()) -> list[str]:
    """Differences between two copies, table by table (empty: equal row for row)."""
    problems = []
    for table in sorted((refreshed.keys() | full.keys()) - set(ignore)):
        if table not in refreshed or table not in full:
            problems.append(f"{table}: only in the {'refreshed' if table in refreshed else 'full'} copy")
            continue
        (a_cols, a_rows), (b_cols, b_rows) = refreshed[table], full[table]
        if a_cols != b_cols:
            problems.append(f"{table}: columns differ: {sorted(set(a_cols) ^ set(b_cols))}")
            continue
        if a_rows != b_rows:
            only_a = sorted(set(a_rows) - set(b_rows))
            only_b = sorted(set(b_rows) - set(a_rows))
            problems.append(f"{table}: {len(a_rows)} vs {len(b_rows)} rows; only in refresh: {only_a[:2]}; "
                            f"only in full: {only_b[:2]}")
    return problems


# --------------------------------------------------------------------------- expected calls


def child_calls(box: Any) -> int:
    """Child calls a full load makes for one sandbox box (one per non-empty child list)."""
    calls = 0
    for kind in CHILD_KINDS:
        items = getattr(box, kind)
        assert len(items) <= 1000, "one page per child list is assumed"
        calls += 1 if items else 0
    return calls


def expected_refresh_calls(full_calls: int, sandbox: Any, yesterday: set[str], since_day: int) -> tuple[int, int]:
    """(calls a refresh must make, boxes whose children it must re-read): a full load's calls less the
    child calls of every box that existed yesterday and had nothing done to it since (``TASK_DUE``
    changes nothing: it only says a due date passed)."""
    touched = {c["box_key"] for c in sandbox.changes(since_day) if c["box_key"] and c["type"] != "TASK_DUE"}
    boxes = sandbox.account.boxes_by_key
    kept = [box for key, box in boxes.items() if key in yesterday and key not in touched]
    reread = sum(1 for key, box in boxes.items() if (key not in yesterday or key in touched) and child_calls(box))
    return full_calls - sum(child_calls(box) for box in kept), reread


# --------------------------------------------------------------------------- equality


@contextlib.contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    old = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in old.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def equality(boxes: int, days: int, work: Path, postgres: Sequence[str] = (), seed: int = SEED,
             rates: Mapping[str, float] | None = None, report: Any = None) -> dict[str, Any]:
    """Run the day-by-day comparison; ``postgres``: two database URLs (refresh, full), else DuckDB files.
    Returns the per-day figures; ``problems`` empty means equal every day, calls as expected."""
    from pipelines.job import run_full_load
    from streak_source.sandbox import Sandbox

    kind = "postgres" if postgres else "duckdb"
    chains: dict[str, dict[str, str]] = {}
    for name in ("refresh", "full"):
        env = {"DLT_DATA_DIR": str(work / f"dlt-{name}"), "STREAK_DUCKDB_PATH": str(work / f"{name}.duckdb")}
        if name == "full":  # a full load every run that still keeps a basis, so the bases are compared too
            env["SOURCES__STREAK__FULL_REFRESH_EVERY_DAYS"] = "0"
        if postgres:
            env |= {"DESTINATION__WAREHOUSE__DESTINATION_TYPE": "postgres",
                    "DESTINATION__WAREHOUSE__CREDENTIALS": postgres[0 if name == "refresh" else 1]}
        chains[name] = env

    def read(name: str) -> dict[str, tuple[list[str], list[str]]]:
        if postgres:
            return _rows_postgres(postgres[0 if name == "refresh" else 1])
        return _rows_duckdb(work / f"{name}.duckdb")

    per_day: list[dict[str, Any]] = []
    problems: list[str] = []
    started = time.monotonic()
    with Sandbox(boxes=boxes, seed=seed, rates=dict(rates or EQUALITY_RATES)) as sb:
        args = {"api_key": sb.api_key, "base_url": sb.base_url, "max_requests_per_second": FAST_RATE}
        yesterday: set[str] = set()
        for day in range(days + 1):
            if day:
                yesterday = set(sb.account.boxes_by_key)
                sb.advance(1)
            figures: dict[str, Any] = {"day": day}
            for name in ("refresh", "full"):
                with environment(chains[name]):
                    clock = time.monotonic()
                    summary = run_full_load(dict(args), progress=None, refresh="changed")
                    figures[f"{name}_s"] = round(time.monotonic() - clock, 2)
                figures[f"{name}_calls"] = summary.api_calls
                figures[f"{name}_mode"] = summary.mode
                if name == "refresh":
                    figures["refresh_reason"] = summary.mode_reason
            expected = figures["full_calls"]
            if day:
                expected, figures["boxes_reread_expected"] = expected_refresh_calls(figures["full_calls"], sb, yesterday,
                                                                                    day - 1)
            figures["refresh_calls_expected"] = expected
            day_problems = compare(read("refresh"), read("full"))
            if figures["refresh_calls"] != expected:
                day_problems.append(f"refresh made {figures['refresh_calls']} calls, expected {expected}")
            if figures["refresh_mode"] != ("changed" if day else "full"):
                day_problems.append(f"refresh ran as {figures['refresh_mode']}: {figures['refresh_reason']}")
            if figures["full_mode"] != "full":
                day_problems.append(f"the full load ran as {figures['full_mode']}")
            figures["equal"] = not day_problems
            problems += [f"day {day}: {p}" for p in day_problems]
            per_day.append(figures)
            if report is not None:
                print(json.dumps(figures), file=report, flush=True)
        tables = sorted(read("refresh"))
    return {
        "destination": kind, "boxes": boxes, "days": days, "seed": seed, "day_rates": dict(rates or EQUALITY_RATES),
        "tables_compared": tables, "not_compared": dict(NOT_COMPARED),
        "columns_not_compared": {t: list(c) for t, c in RUN_CLOCK_COLUMNS.items()},
        "equal_every_day": not problems, "problems": problems[:20],
        "refresh_calls_total": sum(d["refresh_calls"] for d in per_day),
        "full_calls_total": sum(d["full_calls"] for d in per_day),
        "seconds_total": round(time.monotonic() - started, 1), "per_day": per_day,
    }


@contextlib.contextmanager
def two_postgres_databases(server_url: str) -> Iterator[list[str]]:
    """Two fresh databases on ``server_url``'s server (dropped afterwards): refresh and full."""
    import psycopg2
    from urllib.parse import urlsplit, urlunsplit

    names = [f"streak_refresh_{uuid.uuid4().hex[:10]}" for _ in range(2)]
    admin = psycopg2.connect(server_url, connect_timeout=5)
    admin.autocommit = True
    try:
        with admin.cursor() as cursor:
            for name in names:
                cursor.execute(f'CREATE DATABASE "{name}"')
        yield [urlunsplit(urlsplit(server_url)._replace(path="/" + name)) for name in names]
    finally:
        with admin.cursor() as cursor:
            for name in names:
                cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


# --------------------------------------------------------------------------- cost


def serve(boxes: int, latency_ms: float) -> tuple[subprocess.Popen[str], str]:
    command = [sys.executable, "-m", "streak_source.sandbox", "serve", "--port", "0", "--boxes", str(boxes),
               "--seed", str(SEED), "--latency-ms", str(latency_ms)]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=str(REPO_ROOT))
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def run_job(env: Mapping[str, str], refresh: str, work: Path) -> dict[str, Any]:
    """The main job as its own process: wall time (spawn to exit), its peak RSS, summary, progress line."""
    tag = uuid.uuid4().hex[:6]
    summary_path, output_path = work / f"summary-{tag}.json", work / f"output-{tag}.txt"
    clock = time.monotonic()
    with output_path.open("w") as output:
        proc = subprocess.Popen([sys.executable, str(MAIN_JOB), "--refresh", refresh, "--summary-json", str(summary_path)],
                                env={**os.environ, **env}, stdout=output, stderr=subprocess.STDOUT, cwd=str(REPO_ROOT))
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - clock
    text = output_path.read_text()
    if status != 0:
        raise RuntimeError(f"the job failed (wait status {status}): {text[-2000:]}")
    summary = json.loads(summary_path.read_text())
    line = next((x for x in text.splitlines() if x.startswith(("refresh:", "full load:"))), "")
    return {"wall_s": round(wall, 1), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1), "summary": summary,
            "progress_line": line}


def cost(boxes: int, days: int, latency_ms: float, rate: float, work: Path, report: Any) -> dict[str, Any]:
    proc, base_url = serve(boxes, latency_ms)
    env = {"DLT_DATA_DIR": str(work / "dlt"), "STREAK_DUCKDB_PATH": str(work / "cost.duckdb"),
           "SOURCES__STREAK__API_KEY": "demo", "SOURCES__STREAK__BASE_URL": base_url,
           "RUNTIME__DLTHUB_TELEMETRY": "false"}
    try:
        stats = requests.get(base_url + "__sandbox__/stats", timeout=60).json()
        before = stats["requests_total"]
        initial = run_job({**env, "SOURCES__STREAK__MAX_REQUESTS_PER_SECOND": str(FAST_RATE), "EXTRACT__WORKERS": "32"},
                          "changed", work)  # no basis yet: a full load that keeps one
        stats = requests.get(base_url + "__sandbox__/stats", timeout=60).json()
        s = initial["summary"]
        non_extract = sum(float(s.get(k) or 0) for k in ("normalize_s", "load_s", "views_s", "history_s"))
        full = {
            "day": 0, "api_calls": s["api_calls"], "sandbox_requests": stats["requests_total"] - before,
            "needed_calls": stats["needed_calls"], "client_rate_per_s": FAST_RATE, "extract_workers": 32,
            "wall_s_measured_at_high_rate": initial["wall_s"], "extract_s": s.get("extract_s"),
            "peak_rss_mb": initial["peak_rss_mb"],
            "non_extract_s": round(non_extract, 1),
            "wall_s_at_rate_lower_bound": round(s["api_calls"] / rate + non_extract, 1),
            "wall_s_at_rate_lower_bound_is": f"api_calls / {rate:g} + the measured normalize, load, views and "
                                             "history seconds (not measured at that rate: ~80 min)",
        }
        print(json.dumps(full), file=report, flush=True)
        runs = []
        for day in range(1, days + 1):
            requests.post(base_url + f"__sandbox__/advance?days=1", timeout=600).raise_for_status()
            stats = requests.get(base_url + "__sandbox__/stats", timeout=60).json()
            before = stats["requests_total"]
            changes = requests.get(base_url + f"__sandbox__/changes?since_day={day - 1}", timeout=60).json()["changes"]
            touched = {c["box_key"] for c in changes if c["box_key"] and c["type"] != "TASK_DUE"}
            result = run_job({**env, "SOURCES__STREAK__MAX_REQUESTS_PER_SECOND": str(rate)}, "changed", work)
            after = requests.get(base_url + "__sandbox__/stats", timeout=60).json()
            s = result["summary"]
            full_calls = after["needed_calls"] + after["needed_history_calls"]
            full_lower = full_calls / rate + non_extract
            run = {
                "day": day, "mode": s.get("mode"), "mode_reason": s.get("mode_reason"),
                "boxes_touched_by_the_sandbox": len(touched),
                "refresh_calls": s["api_calls"], "sandbox_requests": after["requests_total"] - before,
                "http_429": after["responses_by_status"].get("429", 0) - stats["responses_by_status"].get("429", 0),
                "refresh_wall_s": result["wall_s"], "refresh_peak_rss_mb": result["peak_rss_mb"],
                "refresh_extract_s": s.get("extract_s"),
                "refresh_normalize_s": s.get("normalize_s"), "refresh_load_s": s.get("load_s"),
                "progress_line": result["progress_line"],
                "full_load_calls_same_day": full_calls,
                "full_load_wall_s_lower_bound": round(full_lower, 1),
                "calls_ratio": round(s["api_calls"] / full_calls, 4),
                "wall_ratio_vs_lower_bound": round(result["wall_s"] / full_lower, 4),
            }
            runs.append(run)
            print(json.dumps(run), file=report, flush=True)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    return {"boxes": boxes, "days": days, "latency_ms": latency_ms, "refresh_rate_per_s": rate, "seed": SEED,
            "day_rates": "sandbox defaults (changed 0.01, created 0.0025, deleted 0.001 of the live boxes)",
            "initial_full_load": full, "refreshes": runs}


# --------------------------------------------------------------------------- memory

MEMORY_SEED = 7
"""The account of ``benchmarks/full_load.py --scale``, so day 0's full load is that series' 20k run."""


def memory(boxes: int, days: int, work: Path, report: Any) -> dict[str, Any]:
    """Day 0 to ``days``, a full load and a ``changed`` run each, every run measured (module doc)."""
    from benchmarks.full_load import UNLIMITED_CLIENT_RATE, clean_env, run_measured, sandbox

    runs: list[dict[str, Any]] = []
    with sandbox(boxes, 0.0, None, MEMORY_SEED, work / "sandbox.log") as base_url:
        for day in range(days + 1):
            if day:
                requests.post(base_url + "__sandbox__/advance?days=1", timeout=600).raise_for_status()
            for refresh in ("full", "changed"):
                env = clean_env({"DLT_DATA_DIR": str(work / f"dlt-{refresh}"),
                                 "STREAK_DUCKDB_PATH": str(work / f"{refresh}.duckdb"),
                                 "SOURCES__STREAK__API_KEY": "demo", "SOURCES__STREAK__BASE_URL": base_url,
                                 "SOURCES__STREAK__MAX_REQUESTS_PER_SECOND": repr(UNLIMITED_CLIENT_RATE)})
                summary_path = work / f"summary-{refresh}-{day}.json"
                measured = run_measured([sys.executable, str(MAIN_JOB), "--refresh", refresh, "--summary-json",
                                         str(summary_path)], env, work, work / f"job-{refresh}-{day}.log")
                s = json.loads(summary_path.read_text())
                run = {"day": day, "refresh": refresh, "mode": s["mode"], "api_calls": s["api_calls"], **measured,
                       **{k: round(float(s[k]), 1) for k in ("extract_s", "normalize_s", "load_s", "history_s")}}
                runs.append(run)
                print(json.dumps(run), file=report, flush=True)
    later = {kind: [r for r in runs if r["day"] and r["refresh"] == kind] for kind in ("full", "changed")}
    return {"boxes": boxes, "days": days, "seed": MEMORY_SEED, "latency_ms": 0, "runs": runs, "after_day_0": {
        "full_load_peak_rss_mb": [r["peak_rss_mb"] for r in later["full"]],
        "refresh_peak_rss_mb": [r["peak_rss_mb"] for r in later["changed"]],
        "refresh_modes": [r["mode"] for r in later["changed"]]}}


# --------------------------------------------------------------------------- command line


def _without_password(arg: str) -> str:
    """A command-line argument as recorded: a URL's password replaced by ``***``."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(arg)
    if not parts.scheme or parts.password is None:
        return arg
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    c = sub.add_parser("cost", help="calls and wall time of a refresh next to a full load's")
    c.add_argument("--boxes", type=int, default=20000)
    c.add_argument("--days", type=int, default=2)
    c.add_argument("--latency-ms", type=float, default=100.0)
    c.add_argument("--rate", type=float, default=10.0)
    e = sub.add_parser("equality", help="refresh vs full load, day by day, every table row for row")
    e.add_argument("--boxes", type=int, default=40)
    e.add_argument("--days", type=int, default=30)
    e.add_argument("--postgres", default=None, metavar="URL", help="a Postgres server URL (two databases are "
                   "created and dropped); default: DuckDB files")
    m = sub.add_parser("memory", help="peak memory of a full load and a refresh of the same day")
    m.add_argument("--boxes", type=int, default=20000)
    m.add_argument("--days", type=int, default=2)
    for p in (c, e, m):
        p.add_argument("--json", type=Path, default=REPO_ROOT / "benchmarks" / "results" / "refresh.json")
    args = parser.parse_args()
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    results: dict[str, Any] = json.loads(args.json.read_text()) if args.json.exists() else {}
    entry: dict[str, Any] = {
        "command": "python benchmarks/refresh.py " + " ".join(_without_password(a) for a in sys.argv[1:]),
        "when": streak_clock.now().strftime("%Y-%m-%dT%H:%M:%SZ"), "machine": platform.platform(),
        "cpus": os.cpu_count(), "load_average_at_start": os.getloadavg(),
    }
    with tempfile.TemporaryDirectory(prefix="streak-refresh-") as tmp:
        work = Path(tmp)
        if args.what == "cost":
            entry |= cost(args.boxes, args.days, args.latency_ms, args.rate, work, sys.stdout)
            ok = all(r["mode"] == "changed" for r in entry["refreshes"])
            key = "cost"
        elif args.what == "memory":
            entry |= memory(args.boxes, args.days, work, sys.stdout)
            ok = set(entry["after_day_0"]["refresh_modes"]) == {"changed"}
            key = "memory"
        else:
            with environment({"DLT_DATA_DIR": str(work / "dlt")}):
                if args.postgres:
                    with two_postgres_databases(args.postgres) as urls:
                        entry |= equality(args.boxes, args.days, work, urls, report=sys.stdout)
                else:
                    entry |= equality(args.boxes, args.days, work, report=sys.stdout)
            ok = entry["equal_every_day"]
            key = f"equality_{entry['destination']}"
    entry["load_average_at_end"] = os.getloadavg()
    results[key] = entry
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2, default=str) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
