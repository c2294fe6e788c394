"""Issue 24: the rules of ``[outcomes]`` (streak_warehouse/outcome_rules.py, outcome_config.py) and of
the forecast (forecast.py), pure: stage names, the value field's default, the probability's source,
the checks of the configuration, Kaplan-Meier and the expected won value."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pipelines import cli
from streak_warehouse.forecast import (
    Curve, OpenBox, Period, close_chance, forecast, kaplan_meier, month_periods, stage_curves, stays_until_close,
    win_timing,
)
from streak_warehouse.outcome_sql import documented
from streak_warehouse.outcome_config import DEFAULT_MIN_SAMPLE, OutcomesConfigError, read_settings, read_stage_settings
from streak_warehouse.outcome_rules import (
    FieldRef, StageRef, StageSettings, choose_value_fields, closed_stage_keys, default_value_field, match_strength,
    probability_choice, resolve_stages, stage_list, unmatched_entries,
)

SALES_WON = StageRef("sales", "Sales", "s5", "Won")
SUPPORT_DONE = StageRef("support", "Support", "t9", "Done")
SALES_DONE = StageRef("sales", "Sales", "s6", " done ")
SLASHED = StageRef("hiring", "Hiring", "h1", "Offer/Signed")


def test_a_name_matches_a_stage_case_insensitively_in_every_pipeline_or_as_pipeline_slash_stage() -> None:
    assert match_strength("won", SALES_WON) == 1 and match_strength(" WON ", SALES_WON) == 1
    assert match_strength("sales / won", SALES_WON) == 2 and match_strength("Sales/Won", SALES_WON) == 2
    assert match_strength("Support/Won", SALES_WON) == 0 and match_strength("Wo", SALES_WON) == 0
    assert match_strength("offer/signed", SLASHED) == 1  # a stage whose own name holds a slash
    assert match_strength("Hiring/Offer/Signed", SLASHED) == 2


def test_pipeline_slash_stage_wins_over_the_bare_name_and_closed_adds_to_won_and_lost() -> None:
    settings = StageSettings(won=("Done", "Won"), lost=("Support / Done",), closed=("On hold",),
                             probability={"done": 0.9, "Sales/Done": 0.4})
    on_hold = StageRef("sales", "Sales", "s7", "On Hold")
    lead = StageRef("sales", "Sales", "s1", "Lead")
    resolved = {o.stage.stage_key: o for o in resolve_stages(settings, [SALES_WON, SUPPORT_DONE, SALES_DONE, on_hold, lead])}
    assert {key: o.outcome for key, o in resolved.items()} == {"s5": "won", "t9": "lost", "s6": "won", "s7": "closed", "s1": "open"}
    assert resolved["t9"].decided_by == "outcomes.lost_stages: Support / Done"
    assert (resolved["s6"].configured_probability, resolved["t9"].configured_probability) == (0.4, 0.9)
    assert resolved["s1"].decided_by is None and resolved["s1"].configured_probability is None
    assert closed_stage_keys(settings.closed_entries(), [SALES_WON, SUPPORT_DONE, on_hold, lead]) == (
        ("sales", "s5"), ("sales", "s7"), ("support", "t9"))
    assert unmatched_entries(["Won", "Wonn", "Support/Won"], [SALES_WON, SUPPORT_DONE]) == ["Wonn", "Support/Won"]


def test_stage_lists_are_read_as_people_write_them() -> None:
    assert stage_list('["Won", "Closed, lost"]', "x") == ["Won", "Closed, lost"]
    assert stage_list("Won, Lost ,", "x") == ["Won", "Lost"]
    assert stage_list(["Won", None, " "], "x") == ["Won"] and stage_list(None, "x") == []
    with pytest.raises(ValueError, match="x must be a list of stage names"):
        stage_list({"a": 1}, "x")


def _config(**values: Any) -> Any:
    return {key.replace("__", "."): value for key, value in values.items()}.get


def test_bad_settings_are_one_line_errors_naming_the_setting() -> None:
    cases = [
        (dict(outcomes__won_stages=["Won"], outcomes__lost_stages=["won "]),
         "[outcomes] won_stages (env OUTCOMES__WON_STAGES): 'Won' is also in [outcomes] lost_stages"),
        (dict(outcomes__won_stages=["Sales/Won"], outcomes__lost_stages=["sales / won"]), "'Sales/Won' is also in"),
        (dict(outcomes__won_stages=5), "[outcomes] won_stages (env OUTCOMES__WON_STAGES): must be a list of stage names"),
        (dict(outcomes__probability={"Lead": 1.5}), "[outcomes] probability (env OUTCOMES__PROBABILITY): 'Lead' = 1.5"),
        (dict(outcomes__probability={"Lead": 0.2, "lead": 0.3}), "'Lead' and 'lead' name the same stage"),
        (dict(outcomes__probability="[1]"), "[outcomes] probability (env OUTCOMES__PROBABILITY): must be a table"),
        (dict(outcomes__value_field={"Sales": 3}), "[outcomes] value_field (env OUTCOMES__VALUE_FIELD): 'Sales' = 3"),
        (dict(outcomes__min_sample=0), "[outcomes] min_sample (env OUTCOMES__MIN_SAMPLE): must be a whole number"),
    ]
    for values, message in cases:
        with pytest.raises(OutcomesConfigError) as caught:
            read_settings(_config(**values))
        assert message in str(caught.value) and "\n" not in str(caught.value), values


def test_environment_text_is_read_and_the_configuration_replaces_the_accounts_stage_settings_whole() -> None:
    settings = read_settings(_config(outcomes__probability='{"Lead": 0.2}', outcomes__value_field='{"Sales": "Deal size"}',
                                     outcomes__min_sample="7", outcomes__won_stages='["Won"]'))
    assert (settings.stages.probability, settings.value_field, settings.min_sample) == ({"Lead": 0.2}, {"Sales": "Deal size"}, 7)
    demo = {"outcomes.won_stages": ["Won", "Hired"], "outcomes.lost_stages": ["Lost"], "outcomes.value_field": "Amount"}
    assert read_stage_settings(_config(), demo) == (StageSettings(("Won", "Hired"), ("Lost",)), "account")
    only_closed = read_settings(_config(dashboard__closed_stages=[]), demo)  # any stage setting of the user's: none of the demo's
    assert (only_closed.stages, only_closed.stages_from, only_closed.value_field) == (StageSettings(), "config", "Amount")
    assert read_settings(_config()).min_sample == DEFAULT_MIN_SAMPLE and read_stage_settings(_config())[1] == "none"


def _field(key: str, name: str, order: int, numeric: bool = True, pipeline: str = "p1") -> FieldRef:
    return FieldRef(pipeline, key, name, order, numeric)


def test_the_default_value_field_is_the_first_numeric_one_that_says_value_amount_or_size() -> None:
    fields = [_field("f3", "Weighted value", 5), _field("f1", "Notes", 0), _field("f2", "Deal Size", 2),
              _field("f0", "Amount (text)", 1, numeric=False)]
    assert default_value_field(fields) == fields[2]
    assert default_value_field([_field("f1", "Salary expectation", 0)]) is None


def test_a_configured_value_field_and_what_the_run_says_about_it() -> None:
    pipelines = {"p1": "Sales", "p2": "Hiring", "p3": "Partners"}
    fields = [_field("f1", "Deal size", 0), _field("f2", "Contract value", 1), _field("g1", "Budget", 0, pipeline="p2"),
              _field("h1", "Contract value", 0, pipeline="p3"), _field("h2", "Region", 1, numeric=False, pipeline="p3")]

    def chosen(setting: Any) -> tuple[dict[str, Any], list[str]]:
        choices, warnings = choose_value_fields(pipelines, fields, setting)
        return {c.pipeline_name: (c.field.name if c.field else None, c.chosen_by) for c in choices}, warnings

    assert chosen(None) == ({"Sales": ("Deal size", "default"), "Hiring": (None, "none"),
                             "Partners": ("Contract value", "default")}, [])
    # one name: every pipeline that has it, the others their default
    assert chosen("contract VALUE") == ({"Sales": ("Contract value", "configured"), "Hiring": (None, "none"),
                                         "Partners": ("Contract value", "configured")}, [])
    assert chosen("Budgett")[1] == ["outcomes.value_field: no pipeline has a field named 'Budgett'"]
    by_pipeline, warnings = chosen({"hiring": "Budget", "Partners": "Region", "Sales": "", "Nope": "x"})
    assert by_pipeline == {"Sales": (None, "none"), "Hiring": ("Budget", "configured"), "Partners": ("Region", "configured")}
    assert warnings == ["outcomes.value_field: no pipeline is named 'Nope'",
                        "outcomes.value_field: field 'Region' of pipeline 'Partners' is not numeric; values that are "
                        "not numbers count as no value"]
    assert chosen({"Sales": "Missing"})[1] == [
        "outcomes.value_field: pipeline 'Sales' has no field named 'Missing'; its boxes have no value"]


def test_a_stages_probability_comes_from_history_then_configuration_then_the_pipeline() -> None:
    assert probability_choice("won", 0, 0, 0.3, 0, 0, 20) == (1.0, "won stage")
    assert probability_choice("lost", 50, 10, None, 0, 0, 20) == (0.0, "lost stage")
    assert probability_choice("open", 20, 5, 0.9, 100, 50, 20) == (0.25, "history")  # enough history beats configuration
    assert probability_choice("open", 19, 5, 0.9, 100, 50, 20) == (0.9, "configured")
    assert probability_choice("open", 19, 5, None, 100, 40, 20) == (0.4, "pipeline")
    assert probability_choice("open", 3, 1, None, 19, 10, 20) == (None, "none")
    assert probability_choice("open", 0, 0, None, 0, 0, 1) == (None, "none")


def test_kaplan_meier_counts_an_open_box_as_censored_not_as_never_closing() -> None:
    # closes at 1, 2, 2, 4 days; still open after 3 and 5 days (censored)
    curve = kaplan_meier([(1, True), (2, True), (2, True), (3, False), (4, True), (5, False)])
    assert curve.at(0.5) == 1.0 and curve.at(1) == pytest.approx(5 / 6)
    assert curve.at(2.5) == pytest.approx(5 / 6 * 3 / 5)
    assert curve.at(4) == pytest.approx(5 / 6 * 3 / 5 * 1 / 2) == curve.at(100)  # the censored 5 stays open
    assert (curve.events, curve.subjects) == (4, 6)
    assert kaplan_meier([(2, True), (2, False)]).at(2) == pytest.approx(0.5)  # a close before a censoring at a tie
    # open 2 days: it closes within 3 more days with (S(2) - S(5)) / S(2) = 1 - 1/2
    assert close_chance(curve, 2, 0, 3) == pytest.approx(0.5)
    assert close_chance(Curve((1.0,), (0.0,), 1, 1), 3, 0, 10) == 0.0  # older than every box seen closing


def test_the_share_won_by_a_time_takes_losses_as_the_competing_close() -> None:
    # won at 1, lost and won at 2, open after 3, won at 4, open after 5 (Aalen-Johansen, by hand)
    curve = kaplan_meier([(1, True, True), (2, True, False), (2, True, True), (3, False, False), (4, True, True),
                          (5, False, False)])
    assert curve.won_at(0.5) == 0.0 and curve.won_at(1) == pytest.approx(1 / 6)
    assert curve.won_at(2) == pytest.approx(1 / 6 + 5 / 6 * 1 / 5)  # S just before 2, times 1 won of 5 at risk
    assert curve.won_ever == pytest.approx(2 / 6 + 1 / 2 * 1 / 2) and curve.wins == 3
    assert curve.won_ever + curve.at(100) + 5 / 6 * 1 / 5 == pytest.approx(1.0)  # won + still open + lost
    # just entered: if won, by 1.5 days with W(1.5) / W(inf); open 2 days: its win comes at 4, within 3 days
    assert win_timing(curve, 0, 0, 1.5) == pytest.approx((1 / 6) / curve.won_ever)
    assert win_timing(curve, 2, 0, 3) == pytest.approx(1.0) and win_timing(curve, 4, 0, 10) == 0.0  # no win after 4


def test_stays_until_close_and_curves_per_stage_with_the_pipeline_as_fallback() -> None:
    t0 = datetime(2030, 1, 1, tzinfo=UTC)
    day = timedelta(days=1)
    rows = [("b1", "p", "lead", t0), ("b1", "p", "qual", t0 + day), ("b1", "p", "won", t0 + 3 * day),
            ("b2", "p", "lead", t0), ("b2", "p", "lost", t0 + 2 * day), ("b2", "p", "lead", t0 + 4 * day),
            ("b3", "p", "qual", t0 + 5 * day)]
    stays = stays_until_close(rows, {("p", "won"), ("p", "lost")}, t0 + 10 * day, {"b3": t0 + 6 * day})
    assert sorted((s.stage_key, (s.closed_at or s.observed_until) - s.entered_at, s.closed_at is not None) for s in stays) == [
        ("lead", 2 * day, True), ("lead", 3 * day, True), ("lead", 6 * day, False), ("qual", day, False), ("qual", 2 * day, True)]
    assert {s.won for s in stays} == {False}  # nothing named won
    won = stays_until_close(rows, {("p", "won"), ("p", "lost")}, t0 + 10 * day, {"b3": t0 + 6 * day}, {("p", "won")})
    assert sorted((s.stage_key, s.entered_at - t0, s.won) for s in won if s.closed_at) == [
        ("lead", timedelta(0), False), ("lead", timedelta(0), True), ("qual", day, True)]
    curves = stage_curves(stays, min_events=2)
    assert curves[("p", "lead")][1] == "stage" and curves[("p", "qual")][1] == "pipeline"
    assert curves[("p", "qual")][0].subjects == 5


def test_the_forecast_sums_each_boxs_chance_to_be_won_in_the_period() -> None:
    as_of = datetime(2030, 1, 20, 12, tzinfo=UTC)
    periods = month_periods(as_of)
    assert [(p.month, p.start, p.end) for p in periods] == [
        (date(2030, 1, 1), as_of, datetime(2030, 2, 1, tzinfo=UTC)),
        (date(2030, 2, 1), datetime(2030, 2, 1, tzinfo=UTC), datetime(2030, 3, 1, tzinfo=UTC)),
        (date(2030, 3, 1), datetime(2030, 3, 1, tzinfo=UTC), datetime(2030, 4, 1, tzinfo=UTC))]
    assert month_periods(datetime(2030, 12, 31, tzinfo=UTC))[1].month == date(2031, 1, 1)
    curve = Curve((10.0, 40.0), (0.5, 0.0), 2, 2, (0.25, 0.5), 2)  # half close at 10 days, the rest at 40; half of each won
    boxes = [OpenBox("a", "p", "s", as_of, 1000.0, 0.5), OpenBox("b", "p", "s", as_of - timedelta(days=20), None, 0.5),
             OpenBox("c", "p", "s", as_of, 99.0, None)]
    rows = forecast(boxes, {("p", "s"): (curve, "stage")}, as_of, periods, pipelines=["p", "q"], simulations=400)
    january = next(r for r in rows if r.pipeline_key == "p" and r.period.month == date(2030, 1, 1))
    # January has 11.5 days left. a (just entered): won with 0.5; if won, by 10 days with W(10) / W(inf) = 0.5
    # -> 0.25 (250); b (20 days in): if won, 20 days from now (all of W still to come, 0.25 of 0.25), in February,
    # won 0.5 -> 0.5, no value; a's other half is won at 40 days: March. c has no probability: counted, not forecast.
    assert (january.open_boxes, january.boxes_without_probability) == (3, 1)
    assert (january.expected_won_boxes, january.expected_won_value) == (pytest.approx(0.25), pytest.approx(250.0))
    february = next(r for r in rows if r.pipeline_key == "p" and r.period.month == date(2030, 2, 1))
    assert (february.expected_won_boxes, february.expected_won_value) == (pytest.approx(0.5), 0.0)
    march = next(r for r in rows if r.pipeline_key == "p" and r.period.month == date(2030, 3, 1))
    assert (march.expected_won_boxes, march.expected_won_value) == (pytest.approx(0.25), pytest.approx(250.0))
    assert 0 <= january.won_value_low <= january.won_value_high <= 1000.0
    assert [r.expected_won_boxes for r in rows if r.pipeline_key == "q"] == [0.0, 0.0, 0.0]
    assert forecast(boxes, {("p", "s"): (curve, "stage")}, as_of, [Period(date(2030, 1, 1), as_of, as_of)])[0].expected_won_boxes == 0


def test_a_bad_outcomes_setting_stops_the_run_before_it_reads_anything(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], dlt_isolated: Any,
) -> None:
    monkeypatch.setenv("SOURCES__STREAK__API_KEY", "not-used")
    monkeypatch.setenv("SOURCES__STREAK__BASE_URL", "http://127.0.0.1:9/api/")  # nothing listens: no call is made
    monkeypatch.setenv("OUTCOMES__WON_STAGES", '["Won"]')
    monkeypatch.setenv("OUTCOMES__LOST_STAGES", '["won"]')
    assert cli.main(["--quiet"]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: [outcomes] won_stages (env OUTCOMES__WON_STAGES): 'Won' is also in [outcomes] lost_stages: "
                   "a stage cannot be both won and lost (name it as Pipeline/Stage where it differs by pipeline)"]
    assert not dlt_isolated.duckdb_path.exists()


def test_the_docs_show_each_statement_as_the_code_writes_it() -> None:
    text = (Path(__file__).resolve().parent.parent / "docs" / "metrics.md").read_text(encoding="utf-8")
    assert [name for name, sql in documented().items() if f"```sql\n{sql};\n```" not in text] == []
