"""Issue 11 defect 5: closed stages, named once (config or URL), left out where open work matters;
issue 21: the demo account comes with its own."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest

from dashboards.data import closed
from dashboards.ui.sidebar import ACCOUNT_CLOSED_NOTE
from dashboards.ui.text import md
from streak_source.sandbox import DEMO_CLOSED_STAGES, DEMO_LOST_STAGES, DEMO_SETTINGS, DEMO_WON_STAGES, generate_account
from streak_warehouse.account_defaults import VIEW
from streak_warehouse.outcome_config import OutcomesConfigError, read_stage_settings

from . import accounts
from .conftest import DemoDB, as_int, metric_values, new_app, open_page

SQL = Callable[[str], pd.DataFrame]


@pytest.fixture
def demo_point(demo_db: DemoDB, point_at: Callable[[Path], Path]) -> DemoDB:
    point_at(demo_db.path)
    return demo_db


def _in_stages(sql: SQL, names: tuple[str, ...]) -> int:
    listed = ", ".join(f"'{n.lower()}'" for n in names)
    return int(sql(
        "SELECT COUNT(*) AS n FROM crm.boxes b LEFT JOIN crm.stages s USING (pipeline_key, stage_key) "
        f"WHERE LOWER(COALESCE(s.name, b.stage_name)) IN ({listed})"
    )["n"].iloc[0])


def _stuck_stages(at: Any) -> set[str]:
    return set(at.dataframe[0].value["stage_name"])


def test_names_are_matched_case_insensitively() -> None:
    assert closed.normalize_stage_names([" Won", "won", "LOST", "", None]) == ("lost", "won")
    assert closed.closed_from_url(None) is None
    assert closed.closed_from_url([""]) == []  # ?closed= : nothing closed, whatever the config says


def test_a_users_own_account_has_nothing_closed_and_the_page_says_how(
    demo_db: DemoDB, point_at: Callable[[Path], Path], sql: SQL, tmp_path: Path
) -> None:
    point_at(accounts.as_own_account(accounts.copy_db(demo_db.path, tmp_path / "own.duckdb")))
    at = new_app().run()
    assert at.sidebar.multiselect(key="filter_closed_stages").value == []
    assert ACCOUNT_CLOSED_NOTE not in [c.value for c in at.sidebar.caption]
    at = open_page(at, "ageing")
    total = int(sql("SELECT COUNT(*) AS n FROM crm.boxes")["n"].iloc[0])
    assert as_int(metric_values(at)["Boxes"]) == total
    assert any("No stage is marked closed" in c.value for c in at.caption)


def test_the_demo_copy_records_the_closed_stages_it_comes_with(demo_db: DemoDB, sql: SQL, hostile_db: Path) -> None:
    """`--demo` writes its settings into the copy; a load of any other account (here the sandbox's
    hostile one, loaded by base URL like a real account) writes none."""
    recorded = sql(f"SELECT setting, value_json FROM crm.{VIEW}")
    assert {s: json.loads(v) for s, v in zip(recorded["setting"], recorded["value_json"])} == dict(DEMO_SETTINGS)
    con = duckdb.connect(str(hostile_db), read_only=True)
    try:
        relations = {r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'crm'").fetchall()}
    finally:
        con.close()
    assert "boxes" in relations and VIEW not in relations


def test_the_demo_stage_names_are_the_demo_accounts_stages() -> None:
    """The constant is the generated account's truth: each name is a stage of the demo account, and
    each pipeline with a won stage has a lost one."""
    account = generate_account()
    names = {stage.name for pipeline in account.pipelines for stage in pipeline.stages}
    assert set(DEMO_CLOSED_STAGES) <= names
    for pipeline in account.pipelines:
        own = {stage.name for stage in pipeline.stages}
        assert bool(own & set(DEMO_WON_STAGES)) == bool(own & set(DEMO_LOST_STAGES)), pipeline.name


def test_after_demo_alone_the_funnel_leaves_out_the_demos_closed_stages(demo_point: DemoDB, sql: SQL) -> None:
    """Issue 21: `python pipelines/streak_full.py --demo`, nothing configured: the demo's Won, Lost,
    Hired and Rejected are closed, the sidebar shows them as the account's own, the URL stays clean."""
    at = new_app().run()
    picked = at.sidebar.multiselect(key="filter_closed_stages").value
    assert sorted(picked, key=str.lower) == sorted(DEMO_CLOSED_STAGES, key=str.lower)
    assert ACCOUNT_CLOSED_NOTE in [c.value for c in at.sidebar.caption]
    assert "closed" not in at.query_params
    total = int(sql("SELECT COUNT(*) AS n FROM crm.boxes")["n"].iloc[0])
    in_closed = _in_stages(sql, DEMO_CLOSED_STAGES)
    assert 0 < in_closed < total
    at = open_page(at, "funnel")
    assert as_int(metric_values(at)["Open boxes"]) == total - in_closed
    at = open_page(at, "ageing")
    assert as_int(metric_values(at)["Boxes"]) == total - in_closed


def test_the_configuration_wins_over_the_demos_own(demo_point: DemoDB, sql: SQL, monkeypatch: pytest.MonkeyPatch) -> None:
    total = int(sql("SELECT COUNT(*) AS n FROM crm.boxes")["n"].iloc[0])
    monkeypatch.setenv("DASHBOARD__CLOSED_STAGES", '["Lost"]')
    at = new_app().run()
    assert at.sidebar.multiselect(key="filter_closed_stages").value == ["Lost"]
    assert ACCOUNT_CLOSED_NOTE not in [c.value for c in at.sidebar.caption]
    assert as_int(metric_values(open_page(at, "funnel"))["Open boxes"]) == total - _in_stages(sql, ("Lost",))
    monkeypatch.setenv("DASHBOARD__CLOSED_STAGES", "[]")  # configured as none: none, not the demo's
    at = new_app().run()
    assert at.sidebar.multiselect(key="filter_closed_stages").value == []
    assert as_int(metric_values(open_page(at, "funnel"))["Open boxes"]) == total


def test_configured_closed_stages_leave_ageing_and_the_open_count(
    demo_point: DemoDB, sql: SQL, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DASHBOARD__CLOSED_STAGES", '["won", "LOST", "Hired", "Rejected"]')
    names = ("Won", "Lost", "Hired", "Rejected")
    total = int(sql("SELECT COUNT(*) AS n FROM crm.boxes")["n"].iloc[0])
    in_closed = _in_stages(sql, names)
    assert in_closed > 0, "the demo account has boxes in closed stages"

    at = new_app().run()
    assert sorted(at.sidebar.multiselect(key="filter_closed_stages").value) == sorted(names)
    at = open_page(at, "ageing")
    assert as_int(metric_values(at)["Boxes"]) == total - in_closed
    assert not _stuck_stages(at) & set(names)  # "stuck longest" holds no won/lost deal
    note = next(c.value for c in at.caption if "Leaves out boxes in closed stages" in c.value)
    assert all(md(n) in note for n in names) and f"({in_closed} boxes)" in note

    at = open_page(at, "funnel")
    shown = metric_values(at)
    assert as_int(shown["Boxes"]) == total
    assert as_int(shown["Open boxes"]) == total - in_closed


def test_the_url_overrides_the_config_and_remembers_the_choice(
    demo_point: DemoDB, sql: SQL, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DASHBOARD__CLOSED_STAGES", '["Won", "Lost"]')
    total = int(sql("SELECT COUNT(*) AS n FROM crm.boxes")["n"].iloc[0])

    at = new_app()
    at.query_params["closed"] = ["hired"]  # another case than the stage's own name
    at = open_page(at.run(), "ageing")
    assert at.sidebar.multiselect(key="filter_closed_stages").value == ["Hired"]
    assert as_int(metric_values(at)["Boxes"]) == total - _in_stages(sql, ("Hired",))

    at = new_app()
    at.query_params["closed"] = ""
    at = open_page(at.run(), "ageing")
    assert as_int(metric_values(at)["Boxes"]) == total

    # Picking in the sidebar writes the choice into the URL, so a bookmark keeps it.
    at = at.sidebar.multiselect(key="filter_closed_stages").set_value(["Lost", "Rejected"]).run()
    assert at.query_params["closed"] == ["Lost", "Rejected"]
    assert as_int(metric_values(at)["Boxes"]) == total - _in_stages(sql, ("Lost", "Rejected"))


def _in_pipeline_stage(sql: SQL, pipeline: str, stage: str) -> int:
    return int(sql(
        "SELECT COUNT(*) AS n FROM crm.boxes b JOIN crm.stages s USING (pipeline_key, stage_key) "
        f"JOIN crm.pipelines p USING (pipeline_key) WHERE p.name = '{pipeline}' AND s.name = '{stage}'"
    )["n"].iloc[0])


def test_won_and_lost_stages_are_closed_and_pipeline_slash_stage_names_one_pipelines_stage(
    demo_point: DemoDB, sql: SQL, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 24: closed = won + lost + closed stages, by the warehouse's one rule."""
    total = int(sql("SELECT COUNT(*) AS n FROM crm.boxes")["n"].iloc[0])
    monkeypatch.setenv("OUTCOMES__WON_STAGES", '["won"]')
    monkeypatch.setenv("OUTCOMES__LOST_STAGES", '["Sales / Lost", "Hiring/Lost"]')  # Hiring has no Lost
    at = new_app().run()
    assert at.sidebar.multiselect(key="filter_closed_stages").value == ["Won", "Sales / Lost", "Hiring/Lost"]
    assert ACCOUNT_CLOSED_NOTE not in [c.value for c in at.sidebar.caption]
    closed_boxes = _in_pipeline_stage(sql, "Sales", "Won") + _in_pipeline_stage(sql, "Sales", "Lost")
    assert _in_pipeline_stage(sql, "Sales", "Lost") > 0
    assert as_int(metric_values(open_page(at, "funnel"))["Open boxes"]) == total - closed_boxes

    monkeypatch.setenv("OUTCOMES__LOST_STAGES", '["Won"]')  # both won and lost: the sidebar says so
    at = new_app().run()
    assert at.sidebar.multiselect(key="filter_closed_stages").value == []
    with pytest.raises(OutcomesConfigError) as caught:
        read_stage_settings({"outcomes.won_stages": '["won"]', "outcomes.lost_stages": '["Won"]'}.get)
    assert f"Configuration ignored: {md(str(caught.value))}" in [c.value for c in at.sidebar.caption]
