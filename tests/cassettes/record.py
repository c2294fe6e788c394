"""Re-record the replay cassette: a full load of a small sandbox account, HTTP captured by vcrpy.

    python -m tests.cassettes.record        (from the repository root)

Writes ``full_load.yaml`` (the traffic, Authorization header filtered out) and ``full_load.json``
(the base URL it was recorded at, the page sizes, and the sandbox's ground truth then), which
tests/test_replay.py replays with no server running.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

CASSETTE = HERE / "full_load.yaml"
META = HERE / "full_load.json"
BOXES, SEED = 30, 20261123
# Small pages so the cassette holds every paging shape turning more than once.
PAGE_SIZES = {"boxes": 8, "tasks": 3, "comments": 3, "meetings": 3, "teams": 1, "team_users": 3,
              "contacts": 6, "organizations": 6}
# Fixed port so the recorded URLs are stable across re-recordings.
PORT = 48123


def vcr_config() -> dict[str, object]:
    """The one vcrpy configuration shared by recording and replay."""
    return {
        "filter_headers": ["authorization"],
        "match_on": ["method", "scheme", "host", "port", "path", "query"],
        "decode_compressed_response": True,
    }


@contextlib.contextmanager
def one_request_at_a_time() -> Iterator[None]:
    """vcrpy is not thread-safe: while recording it un-patches the HTTP classes for the duration of
    each real request, so a request another thread sends meanwhile goes unrecorded. The load calls
    Streak from several threads, so under a cassette its transport sends one request at a time."""
    from streak_source.client import RateLimitedAdapter

    lock = threading.Lock()
    original = RateLimitedAdapter.send

    def send(self: RateLimitedAdapter, *args: Any, **kwargs: Any) -> Any:
        with lock:
            return original(self, *args, **kwargs)

    RateLimitedAdapter.send = send  # type: ignore[method-assign]
    try:
        yield
    finally:
        RateLimitedAdapter.send = original  # type: ignore[method-assign]


def record() -> None:
    import vcr

    from streak_source.sandbox import Sandbox

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["DLT_DATA_DIR"] = str(Path(tmp) / "dlt")
        os.environ["STREAK_DUCKDB_PATH"] = str(Path(tmp) / "streak.duckdb")
        from pipelines.job import run_full_load

        CASSETTE.unlink(missing_ok=True)
        with Sandbox(boxes=BOXES, seed=SEED, port=PORT, page_sizes=PAGE_SIZES, anchor_date="2026-11-01") as sb:
            with one_request_at_a_time(), vcr.VCR(record_mode="all", **vcr_config()).use_cassette(str(CASSETTE)):
                summary = run_full_load({"api_key": sb.api_key, "base_url": sb.base_url, "page_sizes": PAGE_SIZES,
                                         "max_requests_per_second": 1000}, progress=None)
            META.write_text(json.dumps({
                "base_url": sb.base_url, "page_sizes": PAGE_SIZES, "boxes": BOXES, "seed": SEED,
                "api_calls": summary.api_calls, "ground_truth": sb.ground_truth(),
            }, indent=2, sort_keys=True) + "\n")
    print(f"recorded {summary.api_calls} calls into {CASSETTE.name}")


if __name__ == "__main__":
    record()
