"""Secret hygiene: the Streak API key (it opens the user's whole account) never leaves the process.

A full load runs with a recognisable key at DEBUG everywhere (dlt's ``RUNTIME__LOG_LEVEL=DEBUG``
and Python's root logger at DEBUG, to stderr and to a log file), then everything the run produced
is searched for the key in every form it could take on the wire: the raw key, the Basic-auth
base64 of ``KEY:`` and ``KEY:KEY`` (and the key's base64 at any alignment), and ``Bearer KEY``.
Searched: stdout, stderr, the log file, dlt's pipeline working dir (state, schemas, trace pickle,
load packages, gz and parquet decoded), the DuckDB file's raw bytes *and* every value of every
table (DuckDB compresses strings, so raw bytes alone could hide a hit; dlt's stored state is
zlib+base64, so it is decoded too), and the vcrpy cassettes: the repo's, and one recorded here with
the recognisable key through the project's own recording configuration.

Two failing loads are searched the same way: a 401 with a wrong recognisable key, and a 500 that
persists through the retries. Their one error line names the endpoint, never the credential.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import duckdb
import pytest

from streak_source.sandbox import Sandbox
from tests.loadtools import MAIN_JOB, REPO_ROOT, run_in_process

pytestmark = pytest.mark.timeout(120)

KEY = "sk-streak-LEAKCANARY-7f3a9c1e5b2d"
WRONG_KEY = "sk-streak-WRONGCANARY-0b1d2e3f4a5c"
CASSETTES = REPO_ROOT / "tests" / "cassettes"

# Runs the main job with Python's root logger at DEBUG (the job's own basicConfig is then a no-op).
DEBUG_WRAPPER = """
import logging, runpy, sys
logging.basicConfig(level=logging.DEBUG, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                    handlers=[logging.StreamHandler(sys.stderr), logging.FileHandler(sys.argv[1])])
main_job = sys.argv[2]
sys.argv = [main_job]
runpy.run_path(main_job, run_name="__main__")
"""


def secret_forms(key: str) -> dict[str, bytes]:
    """Every spelling of ``key`` a leak could take."""
    raw = key.encode()
    forms = {
        "raw key": raw,
        "basic base64(KEY:)": base64.b64encode(raw + b":"),
        "basic base64(KEY:KEY)": base64.b64encode(raw + b":" + raw),
        "bearer": b"Bearer " + raw,
        "urlsafe base64(KEY:)": base64.urlsafe_b64encode(raw + b":"),
    }
    for pad in range(3):  # the key's bytes inside any longer base64 text, whatever its alignment
        encoded = base64.b64encode(b"\0" * pad + raw)
        start, end = (pad + 2) // 3 * 4, (pad + len(raw)) // 3 * 4
        forms[f"base64 of key at offset {pad}"] = encoded[start:end]
    return forms


def decoded_views(path: Path) -> Iterator[tuple[str, bytes]]:
    """The file's bytes, plus its decoded contents where the bytes would hide text."""
    data = path.read_bytes()
    yield str(path), data
    if data[:2] == b"\x1f\x8b":
        yield f"{path} (gunzipped)", gzip.decompress(data)
    if path.suffix == ".parquet" or data[:4] == b"PAR1":
        import pyarrow.parquet as pq

        yield f"{path} (parquet values)", json.dumps(pq.read_table(path).to_pylist(), default=str).encode()


def duckdb_values(path: Path) -> Iterator[tuple[str, bytes]]:
    """Every value of every table in every schema, as text; dlt's zlib+base64 state decoded."""
    from dlt.common.versioned_state import decompress_state

    with duckdb.connect(str(path), read_only=True) as con:
        tables = con.execute("select table_schema, table_name from information_schema.tables "
                             "where table_catalog = current_database()").fetchall()
        for schema, table in tables:
            rows = con.execute(f'select * from "{schema}"."{table}"').fetchall()
            yield f"{path}:{schema}.{table}", json.dumps(rows, default=str).encode()
            if table == "_dlt_pipeline_state":
                columns = [d[0] for d in con.execute(f'select * from "{schema}"."{table}" limit 0').description]
                for row in rows:
                    state = decompress_state(row[columns.index("state")])
                    yield f"{path}:{schema}.{table} (decompressed state)", json.dumps(state, default=str).encode()


def find_leaks(key: str, blobs: Mapping[str, bytes] | list[tuple[str, bytes]]) -> list[str]:
    forms = secret_forms(key)
    items = blobs.items() if isinstance(blobs, Mapping) else blobs
    return [f"{form} in {where}" for where, blob in items for form, needle in forms.items() if needle in blob]


def everything_produced(dlt_dirs: Any, result: subprocess.CompletedProcess[str], log_file: Path) -> list[tuple[str, bytes]]:
    blobs: list[tuple[str, bytes]] = [("stdout", result.stdout.encode()), ("stderr", result.stderr.encode())]
    blobs += list(decoded_views(log_file))
    files = sorted(p for p in dlt_dirs.root.rglob("*") if p.is_file())
    assert any(p.name == "trace.pickle" for p in files), "no dlt trace to search"
    assert any(p.name == "state.json" for p in files), "no dlt state to search"
    for path in files:
        blobs += list(decoded_views(path))
        if path.suffix == ".duckdb":
            blobs += list(duckdb_values(path))
    return blobs


def run_job_at_debug(dlt_dirs: Any, base_url: str, key: str, **extra_env: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    log_file = dlt_dirs.root / "job.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOURCES__", "DESTINATION__"))}
    env.update({"SOURCES__STREAK__API_KEY": key, "SOURCES__STREAK__BASE_URL": base_url,
                "SOURCES__STREAK__MAX_REQUESTS_PER_SECOND": "1000", "RUNTIME__LOG_LEVEL": "DEBUG", **extra_env})
    result = subprocess.run([sys.executable, "-c", DEBUG_WRAPPER, str(log_file), str(MAIN_JOB)], env=env,
                            capture_output=True, text=True, timeout=90, cwd=str(REPO_ROOT.parent))
    return result, log_file


def test_the_search_finds_a_key_planted_where_bytes_alone_would_hide_it(tmp_path: Path) -> None:
    """Positive control: zero hits below mean "not there", not "not looked for properly"."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from dlt.common.versioned_state import compress_state

    (tmp_path / "header.txt").write_bytes(b"Authorization: Basic " + base64.b64encode(KEY.encode() + b":"))
    (tmp_path / "jobs.jsonl.gz").write_bytes(gzip.compress(json.dumps({"note": f"Bearer {KEY}"}).encode()))
    pq.write_table(pa.table({"v": [KEY] * 1000}), tmp_path / "rows.parquet", compression="zstd")
    with duckdb.connect(str(tmp_path / "planted.duckdb")) as con:
        con.execute("create table t as select 'x' || i || ? as v from range(50000) r(i)", [KEY])
        con.execute("create table _dlt_pipeline_state (state varchar)")
        con.execute("insert into _dlt_pipeline_state values (?)", [compress_state({"sources": {"k": KEY}})])  # type: ignore[arg-type]
    blobs = [b for p in sorted(tmp_path.iterdir()) for b in decoded_views(p)]
    blobs += list(duckdb_values(tmp_path / "planted.duckdb"))
    hits = find_leaks(KEY, blobs)
    for where in ("header.txt", "jobs.jsonl.gz (gunzipped)", "rows.parquet (parquet values)", "main.t",
                  "(decompressed state)"):
        assert any(where in hit for hit in hits), (where, hits)
    assert any(hit.startswith("basic base64(KEY:) in") for hit in hits)


def test_a_full_load_at_debug_level_leaves_no_trace_of_the_key(dlt_isolated: Any) -> None:
    with Sandbox(boxes=8, seed=17, api_keys=[KEY]) as sb:
        result, log_file = run_job_at_debug(dlt_isolated, sb.base_url, KEY)
        assert sb.stats()["responses_by_status"].get("401", 0) == 0
    assert result.returncode == 0, result.stderr[-3000:]
    assert "DEBUG" in log_file.read_text() and "DEBUG" in result.stderr  # it really logged at DEBUG
    blobs = everything_produced(dlt_isolated, result, log_file)
    assert any("crm.boxes" in where for where, _ in blobs)  # the table values were searched
    assert find_leaks(KEY, blobs) == []


def test_a_rejected_key_fails_naming_the_endpoint_and_leaves_no_trace_of_it(dlt_isolated: Any) -> None:
    with Sandbox(boxes=4, seed=17, api_keys=[KEY]) as sb:
        result, log_file = run_job_at_debug(dlt_isolated, sb.base_url, WRONG_KEY)
    assert result.returncode == 1
    error = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert error == ["error: GET v1/users/me: Streak rejected the API key (401 Unauthorized); nothing was loaded, "
                     "the destination keeps its previous load"], result.stderr[-3000:]
    assert find_leaks(WRONG_KEY, everything_produced(dlt_isolated, result, log_file)) == []


def test_a_server_error_after_retries_fails_naming_the_endpoint_and_leaves_no_trace_of_the_key(
    dlt_isolated: Any,
) -> None:
    with Sandbox(boxes=4, seed=17, api_keys=[KEY], faults=["status=500:route=/api/v1/snippets"]) as sb:
        result, log_file = run_job_at_debug(
            dlt_isolated, sb.base_url, KEY, RUNTIME__REQUEST_MAX_ATTEMPTS="3", RUNTIME__REQUEST_BACKOFF_FACTOR="0.01",
            RUNTIME__REQUEST_MAX_RETRY_DELAY="0.05")
        assert sb.stats()["requests_by_route"]["/api/v1/snippets"] == 3
    assert result.returncode == 1
    error = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(error) == 1 and error[0].startswith("error: GET v1/snippets: HTTP 500 "), result.stderr[-3000:]
    assert "after 3 tries" in error[0]
    assert find_leaks(KEY, everything_produced(dlt_isolated, result, log_file)) == []


def test_cassettes_hold_no_credentials(dlt_isolated: Any, tmp_path: Path) -> None:
    """A cassette recorded here with the recognisable key, through the project's own vcrpy
    configuration, and every cassette in the repo: no key, no Authorization header."""
    import vcr

    from tests.cassettes.record import one_request_at_a_time, vcr_config

    cassette = tmp_path / "recorded.yaml"
    with Sandbox(boxes=4, seed=17, api_keys=[KEY]) as sb:
        with one_request_at_a_time(), vcr.VCR(record_mode="all", **vcr_config()).use_cassette(str(cassette)):
            run_in_process({"api_key": KEY, "base_url": sb.base_url, "max_requests_per_second": 1000})
    recorded = cassette.read_bytes()
    assert b"v1/users/me" in recorded  # traffic was recorded
    repo_cassettes = [p for p in CASSETTES.rglob("*") if p.is_file() and p.suffix in (".yaml", ".yml", ".json")]
    assert repo_cassettes
    blobs = [(str(cassette), recorded)] + [(str(p), p.read_bytes()) for p in repo_cassettes]
    assert find_leaks(KEY, blobs) == []
    for where, blob in blobs:
        lowered = blob.lower()
        assert b"authorization" not in lowered and b"basic " not in lowered and b"bearer " not in lowered, where
