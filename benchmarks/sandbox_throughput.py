"""Requests/second the sandbox serves on loopback (it must never be a benchmark's bottleneck).

    python benchmarks/sandbox_throughput.py [--clients 16] [--seconds 5] [--boxes 300]
                                            [--mode subprocess|inprocess] [--json PATH]

``subprocess`` (default) starts ``python -m streak_source.sandbox serve`` as its own process, as a
benchmark of the source would see it; ``inprocess`` runs ``Sandbox`` in this process, sharing the
GIL with the clients (the pessimistic case, e.g. ``pipelines/streak_full.py --demo``). The clients
are threads, each with its own keep-alive ``requests.Session``, cycling through the calls a full
extraction makes (box child endpoints, single boxes, pipelines, contacts) with no latency and no
rate limit. Prints one JSON object: requests/s, latency percentiles, status counts, and (subprocess
mode) the server's CPU time per request, i.e. what the server alone could sustain: on a small
machine the Python clients, not the server, are usually the limit.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil
import requests

from streak_source.sandbox import Sandbox
from benchmarks.report import publish

REPO_ROOT = Path(__file__).resolve().parent.parent

CHILD_PATHS = (
    "v2/boxes/{key}/tasks?limit=1000&page=0",
    "v1/boxes/{key}/threads",
    "v2/boxes/{key}/comments?limit=1000&page=0",
    "v2/boxes/{key}/meetings?limit=1000&page=0",
    "v1/boxes/{key}/files",
    "v1/boxes/{key}",
)


def request_paths(session: requests.Session, base_url: str) -> list[str]:
    """The URL mix: every child endpoint of every box, plus the account-level lists."""
    pipelines = session.get(base_url + "v1/pipelines", timeout=30).json()
    teams = session.get(base_url + "v2/users/me/teams", timeout=30).json()["results"]
    paths = ["v1/users/me", "v1/pipelines", "v1/snippets"]
    paths += [f"v2/teams/{t['key']}/contacts?limit=100" for t in teams]
    for pipeline in pipelines:
        paths.append(f"v1/pipelines/{pipeline['key']}/newsfeed?detailLevel=ALL")
        boxes = session.get(base_url + f"v1/pipelines/{pipeline['key']}/boxes", timeout=30).json()
        for box in boxes:
            paths += [template.format(key=box["key"]) for template in CHILD_PATHS]
    return [base_url + path for path in paths]


def run_clients(urls: list[str], api_key: str, clients: int, seconds: float) -> dict[str, Any]:
    """``clients`` threads hammer ``urls`` round-robin for ``seconds``; returns the measurements."""
    statuses: Counter[int] = Counter()
    latencies: list[float] = []
    lock = threading.Lock()
    start_barrier = threading.Barrier(clients + 1)
    stop_at: list[float] = []

    def worker(offset: int) -> None:
        session = requests.Session()
        session.auth = (api_key, "")
        local_statuses: Counter[int] = Counter()
        local_latencies: list[float] = []
        index = offset * 7919
        start_barrier.wait()
        while time.perf_counter() < stop_at[0]:
            url = urls[index % len(urls)]
            index += 1
            began = time.perf_counter()
            response = session.get(url, timeout=30)
            local_latencies.append(time.perf_counter() - began)
            local_statuses[response.status_code] += 1
        with lock:
            statuses.update(local_statuses)
            latencies.extend(local_latencies)
        session.close()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    began = time.perf_counter()
    stop_at.append(began + seconds)
    start_barrier.wait()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    latencies.sort()

    def percentile(p: float) -> float:
        return round(1000 * latencies[min(len(latencies) - 1, int(p * len(latencies)))], 2)

    total = sum(statuses.values())
    return {
        "requests": total,
        "seconds": round(elapsed, 2),
        "requests_per_second": round(total / elapsed, 1),
        "latency_ms": {
            "mean": round(1000 * statistics.fmean(latencies), 2),
            "p50": percentile(0.5),
            "p99": percentile(0.99),
        },
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
    }


@contextmanager
def running_sandbox(mode: str, boxes: int) -> Iterator[tuple[str, psutil.Process | None]]:
    """Yield (base URL, the server's own process or None when it shares ours), then stop it."""
    if mode == "inprocess":
        with Sandbox(boxes=boxes) as sandbox:
            yield sandbox.base_url, None
        return
    process = subprocess.Popen(
        [sys.executable, "-u", "-m", "streak_source.sandbox", "serve", "--boxes", str(boxes)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        if not base_url.startswith("http"):
            raise RuntimeError(f"sandbox did not print its base URL (got {base_url!r})")
        yield base_url, psutil.Process(process.pid)
    finally:
        process.terminate()
        process.wait(timeout=30)


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--boxes", type=int, default=300)
    parser.add_argument("--mode", choices=("subprocess", "inprocess"), default="subprocess")
    parser.add_argument("--json", type=Path, default=None, help="also write the result here")
    args = parser.parse_args()

    api_key = "demo"
    server_cpu: dict[str, float] = {}
    with running_sandbox(args.mode, args.boxes) as (base_url, server_process):
        with requests.Session() as session:
            session.auth = (api_key, "")
            urls = request_paths(session, base_url)
        cpu_before = cpu_seconds(server_process) if server_process else 0.0
        measured = run_clients(urls, api_key, args.clients, args.seconds)
        if server_process is not None and measured["requests"]:
            per_request = (cpu_seconds(server_process) - cpu_before) / measured["requests"]
            server_cpu = {
                "server_cpu_ms_per_request": round(1000 * per_request, 3),
                # What one server process could serve if the clients were not the limit.
                "server_capacity_estimate_rps": round(1 / per_request) if per_request else 0,
            }
    result = {
        "benchmark": "sandbox_throughput",
        "mode": args.mode,
        "clients": args.clients,
        "boxes": args.boxes,
        "cpu_count": os.cpu_count(),
        "distinct_urls": len(urls),
        **measured,
        **server_cpu,
    }
    publish(result, args.json)
    return 0 if set(result["statuses"]) == {"200"} else 1


if __name__ == "__main__":
    sys.exit(main())
