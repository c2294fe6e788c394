"""Issue 12 #10: every page renders on an empty, a one-box and a malformed account, and
#5: names from Streak are shown as text, never Markdown/HTML/LaTeX (AppTest side; the browser
side is in test_browser.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dashboards.ui.text import md

from . import accounts
from .conftest import PAGES, DemoDB, metric_values, new_app, open_page


def _every_page(at: Any, where: str) -> list[Any]:
    """Runs every page; fails on any exception; returns the AppTest after each page."""
    seen = []
    for url_path, title in PAGES:
        at = open_page(at, url_path)
        assert not at.exception, (where, title, [e.value for e in at.exception])
        assert [t.value for t in at.title] == [title], (where, title)
        seen.append(at)
    return seen


def _every_pipeline(at: Any, where: str, path: Path) -> None:
    """Every page for "All pipelines" and for each pipeline on its own."""
    import duckdb

    _every_page(at, where)
    con = duckdb.connect(str(path), read_only=True)
    try:
        keys = [r[0] for r in con.execute(
            "SELECT pipeline_key FROM crm.pipelines UNION SELECT pipeline_key FROM crm.boxes"
        ).fetchall()]
    finally:
        con.close()
    for key in keys:
        at = at.sidebar.selectbox(key="filter_pipeline").set_value(key).run()
        _every_page(at, f"{where} / {key}")


BUILDERS = {
    "one box": accounts.one_box_account,
    "empty account": accounts.empty_account,
    "malformed": accounts.malformed_account,
}


@pytest.mark.parametrize("case", list(BUILDERS))
def test_every_page_renders(
    case: str, demo_db: DemoDB, point_at: Callable[[Path], Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DASHBOARD__CLOSED_STAGES", '["Won", "Lost"]')
    path = point_at(BUILDERS[case](demo_db.path, tmp_path / f"{case.replace(' ', '_')}.duckdb"))
    _every_pipeline(new_app().run(), case, path)
    assert path.exists()


def test_malformed_boxes_are_counted_not_dropped(
    demo_db: DemoDB, point_at: Callable[[Path], Path], tmp_path: Path
) -> None:
    """The box without a stage and the box in an unknown stage still count on the funnel."""
    import duckdb

    path = point_at(accounts.malformed_account(demo_db.path, tmp_path / "malformed.duckdb"))
    con = duckdb.connect(str(path), read_only=True)
    total = con.execute("SELECT COUNT(*) FROM crm.boxes").fetchone()[0]
    con.close()
    at = open_page(new_app().run(), "funnel")
    assert metric_values(at)["Boxes"] == f"{total:,}"
    at = at.sidebar.selectbox(key="filter_pipeline").set_value(accounts.NO_STAGES_PIPELINE).run()
    assert not at.exception
    assert metric_values(at)["Boxes"] == "0"
    assert any("No boxes match" in i.value for i in at.info)


MARKDOWN_ELEMENTS = ("caption", "markdown", "subheader", "title", "header", "info", "warning", "error", "success")


def _markdown_sources(at: Any) -> list[str]:
    """Every string the page hands to Streamlit's Markdown renderer (element bodies and labels)."""
    texts: list[str] = []
    for kind in MARKDOWN_ELEMENTS:
        texts += [str(e.value) for e in at.get(kind)]
    texts += [str(m.label) for m in at.metric] + [str(m.help or "") for m in at.metric]
    for kind in ("selectbox", "multiselect", "slider", "text_input", "date_input", "button", "segmented_control"):
        texts += [str(getattr(w, "label", "")) for w in at.get(kind)]
    return texts


def test_names_from_streak_are_text_on_every_page(
    demo_db: DemoDB, point_at: Callable[[Path], Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = 9  # nothing is served in this test: only the Markdown source is checked
    path = point_at(accounts.hostile_account(demo_db.path, tmp_path / "hostile.duckdb", port))
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    hostile_stage = con.execute("SELECT name FROM crm.stages WHERE name LIKE '%frac%'").fetchone()[0]
    pipeline_key, pipeline_name = con.execute("SELECT pipeline_key, name FROM crm.pipelines WHERE name LIKE '![x]%'").fetchone()
    con.close()
    monkeypatch.setenv("DASHBOARD__CLOSED_STAGES", '["' + hostile_stage.replace("\\", "\\\\") + '"]')

    at = new_app().run()
    pages = _every_page(at, "hostile / all")
    at = pages[-1].sidebar.selectbox(key="filter_pipeline").set_value(pipeline_key).run()
    pages += _every_page(at, "hostile / pipeline")
    funnel = open_page(at, "funnel")
    funnel = funnel.selectbox(key="funnel_measure").select_index(1).run()  # the hostile field
    pages.append(funnel)
    events = open_page(funnel, "events").selectbox(key="events_metric_name").set_value("Offer made").run()
    hostile_key = next(k for k in events.selectbox(key="events_metric_measure").options if "**Deal**" in k)
    events = events.selectbox(key="events_metric_measure").set_value(hostile_key.removeprefix("Sum of ")).run()
    assert not events.exception
    assert any(m.label.startswith("Sum of ") for m in events.metric)
    pages.append(events)

    raw = (f"127.0.0.1:{port}", "![", "](", "<img", "<b>", "<script", "$\\frac", ":red[", "**Deal**")
    escaped_seen = False
    for page in pages:
        for text in _markdown_sources(page):
            for needle in raw:
                assert needle not in text, (needle, text)
            escaped_seen |= md(pipeline_name) in text
    assert escaped_seen, "the hostile pipeline name is shown (escaped) in a caption"
    # Plain-text places (options) keep the name as it is.
    assert any(pipeline_name in o for o in at.sidebar.selectbox(key="filter_pipeline").options)


def test_tasks_page_states_its_counting_rule_and_survives_without_the_bridge(
    demo_db: DemoDB, point_at: Callable[[Path], Path], tmp_path: Path
) -> None:
    """Issue 11 defect 4: the page says how it counts; an older destination gets a note, not an error."""
    import duckdb

    from dashboards.app_pages.tasks_queries import COUNTING_RULE

    point_at(demo_db.path)
    at = open_page(new_app().run(), "tasks")
    assert COUNTING_RULE in [c.value for c in at.caption]
    assert list(at.get("vega_lite_chart"))

    path = point_at(accounts.copy_db(demo_db.path, tmp_path / "no_bridge.duckdb"))
    con = duckdb.connect(str(path))
    con.execute("DROP TABLE crm.box_task_assignees")
    con.close()
    at = open_page(new_app().run(), "tasks")
    assert not at.exception
    assert any("box\\_task\\_assignees" in i.value or "box_task_assignees" in i.value for i in at.info)
    assert COUNTING_RULE not in [c.value for c in at.caption]


SANDBOX_MARKUP = ("![", "](", "<script", "<img", "<b>", "$x^2$", "$\\frac", "$\\sqrt", ":red[", "**Hiring**", "**Bold**")
"""Markup the sandbox's hostile account puts in names (streak_source/sandbox/hostile.py)."""


def test_every_page_renders_the_sandbox_hostile_account_as_text(
    hostile_db: Path, point_at: Callable[[Path], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The loaded hostile account (keyless records, a NULL stage key, a pipeline without stages,
    markup names): every page, every pipeline, no exception and no name rendered as Markdown."""
    monkeypatch.setenv("DASHBOARD__CLOSED_STAGES", '["Gewonnen ✅", "取引 🚫 Lost"]')
    point_at(hostile_db)
    at = new_app().run()
    pages = _every_page(at, "sandbox hostile")
    import duckdb

    con = duckdb.connect(str(hostile_db), read_only=True)
    keys = [r[0] for r in con.execute("SELECT pipeline_key FROM crm.pipelines").fetchall()]
    con.close()
    for key in keys:
        at = at.sidebar.selectbox(key="filter_pipeline").set_value(key).run()
        pages += _every_page(at, f"sandbox hostile / {key}")
    for page in pages:
        for text in _markdown_sources(page):
            for needle in SANDBOX_MARKUP:
                assert needle not in text, (needle, text)
