"""The naive baseline for ``benchmarks/full_load.py``: Streak's endpoints as a plain dlt ``rest_api`` config.

    python benchmarks/naive_rest_api.py --base-url URL [--api-key KEY] --duckdb PATH [--summary-json PATH]

What a user gets by writing the obvious declarative configuration (dlt.sources.rest_api) for the same
endpoints the project reads: the same page sizes (``limit=1000`` where Streak pages), but no
counter-based skipping (every box gets all five child calls, an empty pipeline still gets its box
listing), children resolved one parent item at a time (rest_api's default, sequential), no client-side
rate limit (dlt's client still honours 429 + Retry-After), and dlt's defaults for everything else
(insert_values loading into DuckDB, one normalize worker, default nesting). Nothing is decoded: the
point is the cost of reading the account, not the shape of the result.

It is run as its own process by the benchmark, with no project ``.dlt/`` config, so it gets dlt's
defaults. The API call count comes from the sandbox's own stats, not from this script.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

PAGE_SIZE = 1000
"""Same ``limit`` the project sends (the largest Streak allows), so the call counts compare fairly."""


def _paged(path: str, **params: Any) -> dict[str, Any]:
    """v2 lists: ``page`` (0-based) + ``limit`` -> ``{results, hasNextPage}``."""
    return {
        "path": path,
        "params": {"limit": PAGE_SIZE, **params},
        "data_selector": "results",
        "paginator": {
            "type": "page_number",
            "base_page": 0,
            "page_param": "page",
            "total_path": None,
            "has_more_path": "hasNextPage",
        },
    }


def _cursor(path: str) -> dict[str, Any]:
    """Team contacts/organizations: ``cursor`` + ``limit`` -> ``{results, cursor}``."""
    return {
        "path": path,
        "params": {"limit": PAGE_SIZE},
        "data_selector": "results",
        "paginator": {"type": "cursor", "cursor_path": "cursor", "cursor_param": "cursor"},
    }


def _plain(path: str, **params: Any) -> dict[str, Any]:
    """v1 lists and single objects: one call, the whole body."""
    return {"path": path, "params": params, "data_selector": "$", "paginator": "single_page"}


def rest_api_config(base_url: str, api_key: str) -> dict[str, Any]:
    """The declarative configuration: one resource per endpoint, children keyed by their parent."""
    return {
        "client": {
            "base_url": base_url,
            "auth": {"type": "http_basic", "username": api_key, "password": ""},
        },
        "resource_defaults": {"write_disposition": "replace"},
        "resources": [
            {"name": "me", "endpoint": _plain("v1/users/me")},
            {"name": "teams", "endpoint": _paged("v2/users/me/teams")},
            {"name": "team_users", "endpoint": _paged("v2/teams/{resources.teams.key}/users")},
            {"name": "contacts", "endpoint": _cursor("v2/teams/{resources.teams.key}/contacts")},
            {"name": "organizations", "endpoint": _cursor("v2/teams/{resources.teams.key}/organizations")},
            {"name": "pipelines", "endpoint": _plain("v1/pipelines")},
            {"name": "pipeline_newsfeed",
             "endpoint": _plain("v1/pipelines/{resources.pipelines.key}/newsfeed", detailLevel="ALL")},
            {"name": "snippets", "endpoint": _plain("v1/snippets")},
            {"name": "boxes", "endpoint": _paged("v1/pipelines/{resources.pipelines.key}/boxes")},
            {"name": "box_tasks", "endpoint": _paged("v2/boxes/{resources.boxes.key}/tasks")},
            {"name": "box_threads", "endpoint": _plain("v1/boxes/{resources.boxes.key}/threads")},
            {"name": "box_comments", "endpoint": _paged("v2/boxes/{resources.boxes.key}/comments")},
            {"name": "box_meetings", "endpoint": _paged("v2/boxes/{resources.boxes.key}/meetings")},
            {"name": "box_files", "endpoint": _plain("v1/boxes/{resources.boxes.key}/files")},
        ],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--api-key", default="demo")
    parser.add_argument("--duckdb", type=Path, required=True, help="DuckDB file to load into")
    parser.add_argument("--summary-json", type=Path, default=None)
    args = parser.parse_args(argv)

    started = time.monotonic()
    import dlt
    from dlt.sources.rest_api import rest_api_source

    pipeline = dlt.pipeline(
        pipeline_name="streak_naive",
        destination=dlt.destinations.duckdb(str(args.duckdb)),
        dataset_name="crm_naive",
    )
    source = rest_api_source(rest_api_config(args.base_url, args.api_key))  # type: ignore[arg-type]
    step = time.monotonic()
    pipeline.extract(source)
    extract_s = time.monotonic() - step
    step = time.monotonic()
    pipeline.normalize()
    normalize_s = time.monotonic() - step
    normalize_info = pipeline.last_trace.last_normalize_info if pipeline.last_trace else None
    row_counts = dict(normalize_info.row_counts) if normalize_info else {}
    step = time.monotonic()
    pipeline.load(raise_on_failed_jobs=True)
    load_s = time.monotonic() - step
    summary = {
        "rows": {name: n for name, n in sorted(row_counts.items()) if not name.startswith("_dlt")},
        "extract_s": round(extract_s, 3),
        "normalize_s": round(normalize_s, 3),
        "load_s": round(load_s, 3),
        "total_s": round(time.monotonic() - started, 3),
    }
    if args.summary_json:
        args.summary_json.write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
