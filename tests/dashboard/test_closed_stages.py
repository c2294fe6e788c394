"""Issue 11 defect 5: closed stages, named once (config or URL), left out where open work matters."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from dashboards.data import closed
from dashboards.ui.text import md

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
    assert closed._as_list("Won, Lost") == ["Won", " Lost"]
    assert closed._as_list('["Won", "Closed, lost"]') == ["Won", "Closed, lost"]
    assert closed.closed_from_url(None) is None
    assert closed.closed_from_url([""]) == []  # ?closed= : nothing closed, whatever the config says


def test_nothing_is_closed_by_default_and_the_page_says_how(demo_point: DemoDB, sql: SQL) -> None:
    at = open_page(new_app().run(), "ageing")
    total = int(sql("SELECT COUNT(*) AS n FROM crm.boxes")["n"].iloc[0])
    assert as_int(metric_values(at)["Boxes"]) == total
    assert any("No stage is marked closed" in c.value for c in at.caption)


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
