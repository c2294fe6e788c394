"""The main job's command line: exit statuses, one-line errors naming the real cause, the log file.

Regressions: exit status 2 meant both "no API key" and argparse's "bad arguments" (issue 11 #6); a
bad setting printed dlt's raw coercion message (#7); the one-line error took the last exception of
the chain, so normalize failures printed a ``_RemoteTraceback`` fragment, a full disk never said
"No space left on device", and tracebacks reached stderr (issue 12 #7).
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from pipelines.failures import EXIT_STATUSES, describe_failure
from streak_source.sandbox import Sandbox
from tests.loadtools import run_main_job


def test_help_lists_every_exit_status() -> None:
    result = run_main_job(["--help"], env={})
    assert result.returncode == 0
    for code in (0, 1, 2, 3, 75, 130):
        assert any(line.strip().startswith(f"{code} ") for line in result.stdout.splitlines()), result.stdout
    assert set(EXIT_STATUSES) == {0, 1, 2, 3, 75, 130}
    docs = (Path(__file__).resolve().parent.parent / "docs" / "failure-behaviour.md").read_text()
    for code in EXIT_STATUSES:
        assert f"| {code} |" in docs


def test_bad_arguments_exit_2_and_a_missing_key_exits_3(dlt_isolated: Any) -> None:
    assert run_main_job(["--no-such-flag"], env={}).returncode == 2
    no_key = run_main_job([], env={})
    assert no_key.returncode == 3 and len(no_key.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(("value", "shown"), [("abc", "'abc'"), ("0", "0")])
def test_a_bad_setting_is_one_line_naming_setting_env_value_and_what_is_allowed(
    value: str, shown: str, dlt_isolated: Any
) -> None:
    with Sandbox(boxes=2, seed=1) as sb:
        result = run_main_job(["--quiet"], env={"SOURCES__STREAK__API_KEY": sb.api_key,
                                                "SOURCES__STREAK__BASE_URL": sb.base_url,
                                                "SOURCES__STREAK__MAX_REQUESTS_PER_SECOND": value})
        calls = sb.stats()["requests_total"]
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 3, result.stderr
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert "SOURCES__STREAK__MAX_REQUESTS_PER_SECOND" in line and shown in line
    assert "<class" not in line and "Traceback" not in result.stderr
    assert calls == 0 and not dlt_isolated.duckdb_path.exists()


# --- the one line names the real cause ----------------------------------------------------------


def _fail_in_a_worker() -> None:
    raise KeyError("Cannot coerce NULL in table box_tasks column task_key")


def _wrapped_in_a_step(exc: BaseException, step: str = "normalize") -> BaseException:
    """``exc`` as dlt reports a failed step: PipelineStepFailed raised from it."""
    import dlt
    from dlt.pipeline.exceptions import PipelineStepFailed

    try:
        raise PipelineStepFailed(dlt.pipeline("failure_probe"), step, "1", exc) from exc  # type: ignore[arg-type]
    except PipelineStepFailed as wrapped:
        return wrapped


def test_a_failure_in_a_worker_process_names_the_error_not_the_remote_traceback(dlt_isolated: Any) -> None:
    with ProcessPoolExecutor(1) as pool:
        try:
            pool.submit(_fail_in_a_worker).result()
        except KeyError as raised:
            error = raised
    assert type(error.__cause__).__name__ == "_RemoteTraceback"  # what the old line printed
    line = describe_failure(_wrapped_in_a_step(error))
    assert line.startswith("KeyError:") and "Cannot coerce NULL" in line
    assert "Traceback" not in line


def test_a_full_disk_says_so_even_when_an_incidental_error_follows(dlt_isolated: Any) -> None:
    try:
        try:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/var/dlt/pipelines/streak/normalize/x")
        except OSError:
            raise StopIteration
    except StopIteration as incidental:
        line = describe_failure(_wrapped_in_a_step(incidental, "extract"))
    assert line.startswith("No space left on device") and "/var/dlt/pipelines" in line


def test_a_bare_stop_iteration_is_not_the_cause() -> None:
    try:
        try:
            raise RuntimeError("the response of /v1/users/me is not a JSON object")
        except RuntimeError:
            raise StopIteration
    except StopIteration as incidental:
        assert describe_failure(incidental) == "RuntimeError: the response of /v1/users/me is not a JSON object"


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 256 kB tmpfs (needs root and CAP_SYS_ADMIN, as in CI's container; skipped otherwise)."""
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount_point)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], capture_output=True)


@pytest.mark.parametrize("full", ["dlt working dir", "duckdb file"])
def test_a_full_disk_fails_in_one_line_saying_no_space_left(full: str, tiny_disk: Path, dlt_isolated: Any) -> None:
    env = {"DLT_DATA_DIR": str(tiny_disk / "dlt")} if full == "dlt working dir" else {
        "STREAK_DUCKDB_PATH": str(tiny_disk / "streak.duckdb")}
    with Sandbox(boxes=300, seed=2) as sb:
        result = run_main_job(["--quiet"], env={"SOURCES__STREAK__API_KEY": sb.api_key,
                                                "SOURCES__STREAK__BASE_URL": sb.base_url,
                                                "SOURCES__STREAK__MAX_REQUESTS_PER_SECOND": "1000", **env})
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1, result.stderr
    assert len(lines) == 1 and "No space left on device" in lines[0], result.stderr


def test_the_summary_counts_rejected_records() -> None:
    """Issue 12 #6/#11: the loader's quarantine count is printed (and stored in load_history)."""
    import io

    from pipelines.progress import LoadSummary, print_summary

    shown = io.StringIO()
    print_summary(LoadSummary("duckdb", "x.duckdb", "crm", rejected_records=3,
                              rejected_by_table={"boxes": 2, "box_tasks": 1}), shown)
    assert "Records rejected (kept in crm.rejected_records): 3 (boxes 2, box_tasks 1)" in shown.getvalue()
    clean = io.StringIO()
    print_summary(LoadSummary("duckdb", "x.duckdb", "crm"), clean)  # nothing rejected: said as 0
    assert "Records rejected (kept in crm.rejected_records): 0\n" in clean.getvalue()
