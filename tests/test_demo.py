"""``--demo`` is tried as a real account is run: the same source settings, checked the same way, and
the headline refresh mode works on it (issue 21, "The job")."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pipelines.failures import EXIT_CONFIG, EXIT_OK
from tests.loadtools import run_main_job

pytestmark = pytest.mark.timeout(300)

RATE_ENV = "SOURCES__STREAK__MAX_REQUESTS_PER_SECOND"


def test_a_bad_rate_stops_the_demo_naming_the_setting(dlt_isolated: Any) -> None:
    result = run_main_job(["--demo", "--demo-boxes", "3"], env={RATE_ENV: "abc"})
    assert result.returncode == EXIT_CONFIG, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"error: sources.streak.max_requests_per_second = 'abc' (env {RATE_ENV}) is not allowed: a number > 0"]
    assert not dlt_isolated.duckdb_path.exists()


def _demo_rates(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> list[float]:
    """Run ``--demo`` on an empty account in this process; the rates its client's limiter was built with."""
    import streak_source.client as client
    from pipelines.cli import main

    built: list[float] = []
    real = client.build_limiter

    def recording(requests_per_second: float) -> Any:
        built.append(requests_per_second)
        return real(requests_per_second)

    monkeypatch.setattr(client, "build_limiter", recording)
    status = main(["--demo", "--demo-boxes", "0", "--quiet"])
    assert status == EXIT_OK, capsys.readouterr().err
    return built


def test_a_configured_rate_paces_the_demo(
    dlt_isolated: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(RATE_ENV, "5")
    assert _demo_rates(monkeypatch, capsys) == [5.0]


def test_without_a_configured_rate_the_demo_takes_its_own(
    dlt_isolated: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from pipelines.cli import DEMO_REQUESTS_PER_SECOND

    monkeypatch.delenv(RATE_ENV, raising=False)
    assert _demo_rates(monkeypatch, capsys) == [DEMO_REQUESTS_PER_SECOND]


def _summary(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text())
    return document


def test_a_second_demo_refresh_runs_in_changed_mode(dlt_isolated: Any, tmp_path: Path) -> None:
    """Each demo run serves its account on a new port; the refresh basis names the account, not the port."""
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    args = ["--demo", "--demo-boxes", "6", "--refresh", "changed", "--quiet", "--summary-json"]
    for path in (first, second):
        result = run_main_job([*args, str(path)], env={})
        assert result.returncode == EXIT_OK, result.stderr
    assert (_summary(first)["mode"], _summary(second)["mode"]) == ("full", "changed")
    assert "no previous complete load with a refresh basis" in _summary(first)["mode_reason"]
    import duckdb

    with duckdb.connect(str(dlt_isolated.duckdb_path), read_only=True) as con:
        origin = con.execute("SELECT base_url FROM crm.refresh_basis").fetchall()
    assert origin == [("demo sandbox (seed 7, 6 boxes)",)]


def test_demo_date_fixes_the_demo_accounts_day_0(dlt_isolated: Any) -> None:
    """Two demo loads a day apart hold different accounts; ``--demo-date`` pins the day their story
    ends, so the account is the same whatever today is (a test session that runs past midnight)."""
    import duckdb

    result = run_main_job(["--demo", "--demo-boxes", "5", "--demo-date", "2024-02-29", "--quiet"], env={})
    assert result.returncode == EXIT_OK, result.stderr
    with duckdb.connect(str(dlt_isolated.duckdb_path), read_only=True) as con:
        latest = con.execute("SELECT max(creation_timestamp), max(last_stage_change_timestamp) FROM crm.boxes").fetchone()
    assert max(latest).isoformat() < "2024-02-29"
    refused = run_main_job(["--demo", "--demo-date", "2024-02-30"], env={})
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines()[-1].endswith("argument --demo-date: not a date (YYYY-MM-DD): '2024-02-30'")
