"""Events receiver throughput: N concurrent clients posting custom events for S seconds.

    python benchmarks/events.py [--clients 16] [--seconds 30] [--batch 1] [--synchronous FULL|NORMAL]
                                [--json benchmarks/results/events.json]
    python benchmarks/events.py --batch 100 --clients 8 --json benchmarks/results/events_batch.json

Starts the real receiver (``python pipelines/streak_events.py serve --port 0``, its own process,
a fresh spool in a temp dir), then runs the clients in this process: one asyncio task per client,
each with one keep-alive HTTP/1.1 connection, posting ``{"event_name", "distinct_id", "timestamp",
"properties"}`` one request at a time (a minimal client on asyncio streams, so the clients' own CPU
cost stays small on a 2-core machine): one event per request to ``/events/ingestion/v1``, or with
``--batch N`` arrays of N events to ``/events/ingestion/v1/batch`` (an event is acknowledged by its
result, ``status`` 202). Then the receiver is stopped (SIGTERM) and every acknowledged event's key
is looked up in the spool: ``lost`` = acknowledged but absent (must be 0).

Reports sustained events/s (acknowledged / duration), p50/p99/max latency, statuses, the
receiver's and the clients' CPU seconds per 1,000 events (on a busy machine the receiver's CPU per
event says more than events/s: 2 cores shared with other work), its commits (group commit: events
per fsync), and the load average before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import psutil

import streak_clock
from benchmarks.report import publish

REPO_ROOT = Path(__file__).resolve().parent.parent
API_KEY = "bench-api-key"


def _event(n: int, i: int) -> dict[str, Any]:
    return {"event_name": "Payment received", "distinct_id": f"c{n}-{i}", "timestamp": 1_700_000_000 + i,
            "box_key": f"box-{n}", "properties": {"amount": i * 1.5, "currency": "EUR"}}


def _acknowledged(status: int, answer: bytes, batch: int, first: int, n: int) -> list[str]:
    """The keys a 2xx answer acknowledges: the single event's, or each batch result's with status 202."""
    if not 200 <= status < 300:
        return []
    if batch == 1:
        return [f"api:c{n}-{first}"]
    return [r["event_key"] for r in json.loads(answer)["results"] if r["status"] == 202]


async def _client(host: str, port: int, n: int, until: float, batch: int, tally: dict[str, Any]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    path = "/events/ingestion/v1" if batch == 1 else "/events/ingestion/v1/batch"
    i = 0
    try:
        while time.perf_counter() < until:
            events = [_event(n, i + k) for k in range(batch)]
            body = json.dumps(events[0] if batch == 1 else events).encode()
            request = (
                f"POST {path} HTTP/1.1\r\nHost: {host}\r\nX-API-Key: {API_KEY}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode() + body
            start = time.perf_counter()
            writer.write(request)
            status_line = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            answer = await reader.readexactly(length)
            tally["latencies"].append(time.perf_counter() - start)
            status = int(status_line.split()[1])
            tally["statuses"][status] += 1
            tally["acked"].extend(_acknowledged(status, answer, batch, i, n))
            i += batch
    finally:
        writer.close()


async def _run_clients(url: str, clients: int, seconds: float, batch: int = 1) -> tuple[dict[str, Any], float]:
    host, port = url.split("//", 1)[1].rstrip("/").rsplit(":", 1)
    tally: dict[str, Any] = {"acked": [], "latencies": [], "statuses": Counter()}
    start = time.perf_counter()
    until = start + seconds
    await asyncio.gather(*(_client(host, int(port), n, until, batch, tally) for n in range(clients)))
    return tally, time.perf_counter() - start


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


def run(clients: int, seconds: float, synchronous: str, batch: int = 1) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="events-bench-") as tmp:
        spool = Path(tmp) / "spool.sqlite"
        env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTS__")}
        env.update(EVENTS__API_KEY=API_KEY, EVENTS__WEBHOOK_TOKEN="bench-token", EVENTS__SPOOL_PATH=str(spool),
                   EVENTS__SPOOL_SYNCHRONOUS=synchronous, DLT_PROJECT_DIR=tmp)
        load_before = os.getloadavg()
        proc = subprocess.Popen(
            [sys.executable, str(REPO_ROOT / "pipelines" / "streak_events.py"), "serve", "--port", "0"],
            stdout=subprocess.PIPE, env=env,
        )
        assert proc.stdout is not None
        url = proc.stdout.readline().decode().strip()
        server = psutil.Process(proc.pid)
        cpu_before = server.cpu_times()
        try:
            clients_cpu = time.process_time()
            tally, elapsed = asyncio.run(_run_clients(url, clients, seconds, batch))
            cpu_after = server.cpu_times()
            clients_cpu = time.process_time() - clients_cpu
            load_after = os.getloadavg()
            with urllib.request.urlopen(url + "health", timeout=30) as answer:
                health = json.loads(answer.read())
        finally:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(60)
            proc.stdout.close()
        conn = sqlite3.connect(spool)
        stored = {row[0] for row in conn.execute("SELECT event_key FROM events")}
        conn.close()
    acked, latencies, statuses = tally["acked"], tally["latencies"], tally["statuses"]
    lost = sum(1 for key in acked if key not in stored)
    cpu = (cpu_after.user + cpu_after.system) - (cpu_before.user + cpu_before.system)
    commits = health.get("spool_commits") or 0
    return {
        "clients": clients,
        "batch": batch,
        "seconds": round(elapsed, 2),
        "spool_synchronous": synchronous,
        "acknowledged": len(acked),
        "events_per_s": round(len(acked) / elapsed, 1),
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "latency_ms": {  # per request (a whole batch with --batch)
            "p50": round(_percentile(latencies, 0.50) * 1000, 2),
            "p99": round(_percentile(latencies, 0.99) * 1000, 2),
            "max": round(max(latencies) * 1000, 2) if latencies else None,
            "mean": round(statistics.fmean(latencies) * 1000, 2) if latencies else None,
        },
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "lost": lost,
        "stored": len(stored),
        "receiver_exit": code,
        "receiver_cpu_s_per_1000_events": round(cpu / max(1, len(acked)) * 1000, 3),
        "clients_cpu_s_per_1000_events": round(clients_cpu / max(1, len(acked)) * 1000, 3),
        "spool_commits": commits,
        "events_per_commit": round(len(acked) / commits, 1) if commits else None,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "measured_at": streak_clock.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--batch", type=int, default=1,
                        help="events per request: 1 posts to /events/ingestion/v1, more to .../batch (at most 1000)")
    parser.add_argument("--synchronous", choices=("FULL", "NORMAL"), default="FULL")
    parser.add_argument("--json", type=Path, help="also write the result here (e.g. benchmarks/results/events.json)")
    args = parser.parse_args(argv)
    if not 1 <= args.batch <= 1000:
        parser.error("--batch must be 1 to 1000")
    result = {"command": " ".join(["python benchmarks/events.py", *(sys.argv[1:] if argv is None else argv)]),
              **run(args.clients, args.seconds, args.synchronous, args.batch)}
    publish(result, args.json)
    return 0 if result["lost"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
