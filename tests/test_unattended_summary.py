"""``--summary-json`` and ``--quiet`` for monitors (issue 16 item 2), and the exit statuses' docs.

The document is checked against docs/summary.schema.json with ``jsonschema`` for every way a run
ends: ok (tests/test_unattended_locks.py runs a real one, with ``--quiet``), failed, config_error,
locked (also there) and interrupted. The schema closes the document (no unlisted field, none
missing), so a field added to ``LoadSummary`` without documenting it fails here.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from pipelines.cli import parse_args
from pipelines.failures import EXIT_STATUSES, RUN_STATUSES
from pipelines.progress import (
    LoadSummary,
    outcome_document,
    quiet_line,
    success_reason,
    write_json_atomically,
)
from streak_source.sandbox import Sandbox
from streak_warehouse.locks import RunOwner
from tests.loadtools import MAIN_JOB, REPO_ROOT

SCHEMA_PATH = REPO_ROOT / "docs" / "summary.schema.json"
STARTED = datetime(2026, 12, 2, 3, 17, tzinfo=UTC)


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


def a_summary() -> LoadSummary:
    return LoadSummary(destination="duckdb", location="/data/streak.duckdb", dataset="crm", run_id="abc123",
                       mode="changed", mode_reason="asked for", rows={"boxes": 12, "box_tasks": 30}, api_calls=57,
                       child_calls_skipped=9, boxes_read=12, boxes_gone=["b1", "b2"],
                       undecoded_field_values={"unknown_option": 2, "not_a_number": 1},
                       views=["pipeline_sales"], replace_strategy="new file renamed into place",
                       extract_s=3.5, normalize_s=1.25, load_s=0.5, total_s=6.0)


def start_job(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    """The main job in the background, with exactly ``env`` as its source/destination settings."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SOURCES__", "DESTINATION__"))}
    return subprocess.Popen([sys.executable, str(MAIN_JOB), *args], env={**base, **env}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=str(REPO_ROOT.parent))


# --- the document, pure ---------------------------------------------------------------------


def test_a_successful_runs_document_is_valid_and_carries_every_summary_field(validator: Any) -> None:
    document = outcome_document(a_summary(), exit_code=0, reason=success_reason(), started_at=STARTED,
                                finished_at=STARTED + timedelta(seconds=7.25))
    validator.validate(document)
    assert document["status"] == "ok" and document["exit_code"] == 0
    assert document["mode"] == "changed" and document["mode_reason"] == "asked for"
    assert document["boxes_skipped"] == 2 and document["undecoded_values"] == 3
    assert document["started_at"] == "2026-12-02T03:17:00.000Z" and document["wall_s"] == 7.25
    assert json.loads(json.dumps(document)) == document  # plain JSON types only


@pytest.mark.parametrize("exit_code", sorted(set(RUN_STATUSES) - {0}))
def test_a_run_that_did_not_finish_has_null_counters_and_a_valid_document(exit_code: int, validator: Any) -> None:
    holder = RunOwner(4242, "host", "2026-12-02T03:00:00Z") if RUN_STATUSES[exit_code] == "locked" else None
    document = outcome_document(None, exit_code=exit_code, reason="why, in one line", started_at=STARTED,
                                finished_at=STARTED, requested_mode="changed", locked_by=holder)
    validator.validate(document)
    assert document["status"] == RUN_STATUSES[exit_code]
    assert document["api_calls"] is None and document["rows"] is None  # unknown, not zero
    assert document["mode"] == "changed"
    assert (document["locked_by"] or {}).get("pid") == (4242 if holder else None)


@pytest.mark.parametrize("broken", [
    {"status": "ok", "api_calls": None},  # a finished run must say how many calls it made
    {"status": "ok", "exit_code": 1},  # status and exit code disagree
    {"status": "locked", "exit_code": 1},
    {"extra_field": 1},  # a field the schema does not document
    {"started_at": "2026-12-02 03:17"},  # not ISO 8601 UTC
])
def test_the_schema_rejects_documents_that_lie(broken: dict[str, Any], validator: Any) -> None:
    document = outcome_document(a_summary(), exit_code=0, reason=success_reason(), started_at=STARTED,
                                finished_at=STARTED)
    with pytest.raises(jsonschema.ValidationError):
        validator.validate({**document, **broken})
    document.pop("rows")
    with pytest.raises(jsonschema.ValidationError):  # and one that leaves a field out
        validator.validate(document)


def test_the_schemas_statuses_and_exit_codes_are_the_codes() -> None:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    assert schema["properties"]["status"]["enum"] == list(RUN_STATUSES.values())
    assert schema["properties"]["exit_code"]["enum"] == list(RUN_STATUSES)
    assert set(RUN_STATUSES) == set(EXIT_STATUSES) - {2}  # 2: argparse exits before any run


def test_the_documented_exit_statuses_are_the_codes(capsys: pytest.CaptureFixture[str]) -> None:
    """docs/failure-behaviour.md's table and --help list exactly the codes in pipelines/failures.py."""
    page = (REPO_ROOT / "docs" / "failure-behaviour.md").read_text(encoding="utf-8")
    table = page.split("## Exit statuses", 1)[1].split("\n## ", 1)[0]
    documented = [int(code) for code in re.findall(r"^\| (\d+) \|", table, flags=re.MULTILINE)]
    assert documented == list(EXIT_STATUSES)
    scheduling = (REPO_ROOT / "docs" / "scheduling.md").read_text(encoding="utf-8")
    for code, status in RUN_STATUSES.items():
        assert f"| {code} | `{status}` |" in scheduling, f"docs/scheduling.md lacks exit {code} ({status})"
    with pytest.raises(SystemExit):
        parse_args(["--help"])
    helped = capsys.readouterr().out
    assert [int(c) for c in re.findall(r"^\s+(\d+)\s{2}", helped.split("exit statuses:", 1)[1],
                                       flags=re.MULTILINE)] == list(EXIT_STATUSES)


def test_quiet_line_is_one_line_saying_what_where_and_how_long() -> None:
    line = quiet_line(a_summary())
    assert "\n" not in line
    assert line.startswith("ok: 42 rows in 2 tables into duckdb: /data/streak.duckdb (dataset crm); 57 API calls")
    assert "2 boxes gone" in line and "refresh changed" in line and line.endswith("6.0 s")


# --- the file ---------------------------------------------------------------------------------


def test_the_document_replaces_the_previous_one_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "summary.json"
    path.write_text('{"status": "previous"}')
    write_json_atomically(path, {"status": "ok"})
    assert json.loads(path.read_text()) == {"status": "ok"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]  # no temporary left
    assert oct(path.stat().st_mode & 0o777) == "0o644"

    def failing_rename(src: Any, dst: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", failing_rename)
    with pytest.raises(OSError):
        write_json_atomically(path, {"status": "failed"})
    assert json.loads(path.read_text()) == {"status": "ok"}  # the previous document, not half a new one
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]


def test_summary_json_into_a_missing_directory_is_a_usage_error_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        parse_args(["--demo", "--summary-json", str(tmp_path / "nowhere" / "s.json")])
    assert stopped.value.code == 2 and "--summary-json: no such directory" in capsys.readouterr().err


# --- real runs that end badly ---------------------------------------------------------------


@pytest.mark.slow
def test_config_error_and_failed_runs_write_their_document(dlt_isolated: Any, tmp_path: Path, validator: Any) -> None:
    with Sandbox(boxes=2, seed=5) as sb:  # both at once: two interpreters starting is most of the time
        no_key = start_job(["--quiet", "--summary-json", str(tmp_path / "config.json")],
                           {"SOURCES__STREAK__REFRESH": "changed"})
        wrong_key = start_job(["--quiet", "--summary-json", str(tmp_path / "failed.json")],
                              {"SOURCES__STREAK__API_KEY": "not-the-key", "SOURCES__STREAK__BASE_URL": sb.base_url,
                               "DLT_DATA_DIR": str(tmp_path / "dlt2")})
        _, no_key_err = no_key.communicate(timeout=120)
        wrong_out, wrong_err = wrong_key.communicate(timeout=120)
        calls_served = sb.stats()["requests_total"]  # all the wrong key's: the other run has no key
    assert no_key.returncode == 3, no_key_err
    config = json.loads((tmp_path / "config.json").read_text())
    validator.validate(config)
    assert config["status"] == "config_error" and config["exit_reason"].startswith("no Streak API key")
    assert config["mode"] == "changed"  # the configured mode: the run never got to choose

    assert wrong_key.returncode == 1, wrong_err
    assert wrong_out == ""  # --quiet: errors only, on stderr
    failed = json.loads((tmp_path / "failed.json").read_text())
    validator.validate(failed)
    assert failed["status"] == "failed" and failed["exit_code"] == 1
    assert wrong_err.strip() == f"error: {failed['exit_reason']}"
    assert "401" in failed["exit_reason"] and "not-the-key" not in json.dumps(failed)
    # what the failed run counted before it stopped is known (the refused call); what it loaded is not
    assert failed["api_calls"] == calls_served >= 1, failed
    assert failed["rows"] is None and failed["boxes_read"] == 0


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_an_interrupted_run_writes_its_document_even_while_workers_hang(
    dlt_isolated: Any, tmp_path: Path, validator: Any, wait_until: Any
) -> None:
    """SIGTERM while every task call hangs: the job ends through the hard stop (os._exit after the
    grace period), and the document is written on that path too."""
    hang = "hang=120:route=/api/v2/boxes/{box_key}/tasks"
    path = tmp_path / "interrupted.json"
    with Sandbox(boxes=6, seed=12, faults=[hang]) as sb:
        job = start_job(["--quiet", "--summary-json", str(path)],
                        {"SOURCES__STREAK__API_KEY": sb.api_key, "SOURCES__STREAK__BASE_URL": sb.base_url,
                         "RUNTIME__REQUEST_TIMEOUT": "100"})
        try:
            wait_until(lambda: sb.stats()["faults"]["injected"].get(hang, 0) >= 1, 60, "a worker stuck in a request")
            job.send_signal(signal.SIGTERM)
            _, stderr = job.communicate(timeout=60)
        finally:
            if job.poll() is None:
                job.kill()
                job.communicate(timeout=30)
    assert job.returncode == 130, stderr
    document = json.loads(path.read_text())
    validator.validate(document)
    assert document["status"] == "interrupted" and document["exit_code"] == 130
    assert not dlt_isolated.duckdb_path.exists()


# --- the printed summary ----------------------------------------------------------------------


def test_undecoded_values_are_told_in_words_with_the_query_that_lists_them() -> None:
    """Not ``unknown_option 5``: what happened, in a sales lead's words, and where to look."""
    import io

    import duckdb

    from pipelines.progress import print_summary
    from streak_source.field_values import DECODE_OK, DECODE_STATUS_MEANINGS, DECODE_STATUSES

    assert set(DECODE_STATUS_MEANINGS) == set(DECODE_STATUSES) - {DECODE_OK}
    summary = a_summary()
    summary.undecoded_field_values = {"type_mismatch": 1, "unknown_option": 5}
    printed = io.StringIO()
    print_summary(summary, printed)
    line = next(text for text in printed.getvalue().splitlines() if "could not be decoded" in text)
    assert line.startswith("Custom-field values that could not be decoded: 6 (1 do not match their field's type; "
                           "5 point to a dropdown or tag option since deleted in Streak). Kept as text; "), line
    query = line.split("to see them: ", 1)[1]
    with duckdb.connect() as con:
        con.execute("CREATE SCHEMA crm")
        con.execute("CREATE TABLE crm.box_field_values AS SELECT * FROM (VALUES ('b1', 'Priority', '9003', "
                    "'unknown_option'), ('b2', 'Priority', 'High', 'ok')) t(box_key, field_name, value_text, "
                    "decode_status)")
        assert con.execute(query).fetchall() == [("b1", "Priority", "9003", "unknown_option")]
