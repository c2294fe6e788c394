"""The Outcomes page's charts: each row of a chart's data is one bar and carries its own label, built
from that row's own values (so a label can only sit on the bar whose number it states:
tests/dashboard/test_chart_labels.py reads the rows the browser gets)."""

from __future__ import annotations

from typing import Final

import altair as alt
import pandas as pd

from dashboards.ui.format import fmt_number, number_label_expr

WON_COLOR: Final = "#2f9e44"
LOST_COLOR: Final = "#adb5bd"
OPEN_VALUE_COLOR: Final = "#d0ebff"
WEIGHTED_COLOR: Final = "#1c7ed6"


def month_label(month: pd.Series) -> pd.Series:
    """``2026-05``: a month of close as the axis shows it."""
    return pd.to_datetime(month).dt.strftime("%Y-%m")


def win_rate_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """One pipeline's months, oldest first, each with its own label: the win rate by count."""
    rows = frame.sort_values("month").reset_index(drop=True)
    return rows.assign(month_label=month_label(rows["month"]),
                       rate_label=rows["win_rate"].map(lambda rate: f"{rate:.0%}"))


def win_rate_chart(frame: pd.DataFrame) -> alt.LayerChart:
    """Won and lost boxes per month of close (stacked), the month's win rate on top."""
    rows = win_rate_rows(frame)
    order = rows["month_label"].tolist()
    stacked = rows.melt(id_vars=["month_label"], value_vars=["won", "lost"], var_name="outcome", value_name="boxes")
    bars = alt.Chart(stacked).mark_bar().encode(
        x=alt.X("month_label:N", sort=order, title="Month of close", axis=alt.Axis(labelAngle=-45)),
        y=alt.Y("boxes:Q", title="Boxes closed", stack="zero"),
        color=alt.Color("outcome:N", scale=alt.Scale(domain=["won", "lost"], range=[WON_COLOR, LOST_COLOR]),
                        legend=alt.Legend(title=None, orient="top")),
        order=alt.Order("outcome:N", sort="descending"),
        tooltip=[alt.Tooltip("month_label:N", title="Month"), alt.Tooltip("outcome:N", title="Outcome"),
                 alt.Tooltip("boxes:Q", title="Boxes", format=",")],
    )
    text = alt.Chart(rows.assign(total=rows["won"] + rows["lost"])).mark_text(dy=-8, color="#343a40").encode(
        x=alt.X("month_label:N", sort=order), y=alt.Y("total:Q"), text="rate_label:N",
        tooltip=[alt.Tooltip("month_label:N", title="Month"), alt.Tooltip("won:Q", title="Won"),
                 alt.Tooltip("lost:Q", title="Lost"), alt.Tooltip("win_rate:Q", title="Win rate", format=".0%")],
    )
    return (bars + text).properties(height=260)


def weighted_rows(frame: pd.DataFrame, multi: bool) -> pd.DataFrame:
    """The open stages in order, each with its own label: weighted value and the stage's probability."""
    rows = frame.sort_values(["pipeline_name", "stage_order", "stage_name"]).reset_index(drop=True)
    names = rows["stage_name"].fillna(rows["stage_key"]).astype(str)
    label = (rows["pipeline_name"].astype(str) + " · " + names) if multi else names

    def text(weighted: float | None, probability: float | None) -> str:
        if probability is None or pd.isna(probability):
            return "no probability"
        return f"{'no value' if weighted is None or pd.isna(weighted) else fmt_number(weighted)} ({probability:.0%})"

    return rows.assign(stage_label=label, open_value=rows["open_value"].fillna(0.0),
                       weighted_value=rows["weighted_value"].fillna(0.0),
                       weighted_label=[text(w, p) for w, p in zip(rows["weighted_value"], rows["probability"])])


def weighted_chart(frame: pd.DataFrame, multi: bool) -> alt.LayerChart:
    """Per open stage: its open value (light bar), weighted by its probability (dark bar), labelled."""
    rows = weighted_rows(frame, multi)
    order = rows["stage_label"].tolist()
    base = alt.Chart(rows).encode(
        y=alt.Y("stage_label:N", sort=order, title=None, axis=alt.Axis(labelLimit=260)),
        tooltip=[alt.Tooltip("stage_label:N", title="Stage"), alt.Tooltip("open_boxes:Q", title="Open boxes", format=","),
                 alt.Tooltip("open_value:Q", title="Open value", format=",.0f"),
                 alt.Tooltip("probability:Q", title="Win probability", format=".0%"),
                 alt.Tooltip("weighted_value:Q", title="Weighted value", format=",.0f")],
    )
    axis = alt.Axis(labelExpr=number_label_expr())
    top = float(rows["open_value"].max()) * 1.35 or 1.0
    open_bars = base.mark_bar(color=OPEN_VALUE_COLOR).encode(
        x=alt.X("open_value:Q", title="Open value (light), weighted by the stage's probability (dark)", axis=axis,
                scale=alt.Scale(domain=[0, top])))
    weighted_bars = base.mark_bar(color=WEIGHTED_COLOR, height=12).encode(x="weighted_value:Q")
    text = base.mark_text(align="left", dx=6, color="#343a40").encode(x="open_value:Q", text="weighted_label:N")
    return (open_bars + weighted_bars + text).properties(height=30 * len(rows) + 60)
