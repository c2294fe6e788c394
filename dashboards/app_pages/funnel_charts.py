"""Stage charts: the funnel's bars, the pipeline over time and the Overview's one-bar-per-pipeline breakdown.

Names go into Altair as data (rendered as SVG text, never Markdown), so no escaping here.
"""

from __future__ import annotations

import altair as alt
import pandas as pd

from dashboards.ui.format import chart_color, fmt_int, fmt_number, ink, number_label_expr, stage_colors


def stage_breakdown(funnel: pd.DataFrame) -> alt.LayerChart:
    """One stacked bar per pipeline, a segment per stage in stage order and Streak colour.

    Segment positions are computed here (not by Vega's stack) so the stage labels can sit in
    the middle of their segment; labels are left out of segments too narrow to hold them.
    """
    frame = funnel[funnel["boxes"] > 0].sort_values(["pipeline_name", "stage_order"]).copy()
    frame["end"] = frame.groupby("pipeline_key")["boxes"].cumsum()
    frame["start"] = frame["end"] - frame["boxes"]
    frame["middle"] = (frame["start"] + frame["end"]) / 2
    totals = frame.groupby("pipeline_key")["boxes"].transform("sum")
    frame["share"] = frame["boxes"] / totals
    frame["fill"] = [chart_color(color, i) for i, color in enumerate(frame["color"])]
    frame["ink"] = [ink(color) for color in frame["fill"]]
    widest = float(totals.max()) if len(totals) else 1.0
    frame["label"] = [_fit(str(name), fmt_int(n), n / widest) for name, n in zip(frame["stage_name"], frame["boxes"])]
    order = frame.groupby("pipeline_name")["boxes"].sum().sort_values(ascending=False).index.tolist()
    base = alt.Chart(frame).encode(
        y=alt.Y("pipeline_name:N", sort=order, title=None, axis=alt.Axis(labelLimit=200)),
        tooltip=[
            alt.Tooltip("pipeline_name:N", title="Pipeline"),
            alt.Tooltip("stage_name:N", title="Stage"),
            alt.Tooltip("boxes:Q", title="Boxes", format=","),
            alt.Tooltip("share:Q", title="Share of pipeline", format=".0%"),
        ],
    )
    bars = base.mark_bar(stroke="white", strokeWidth=1.5, height={"band": 0.8}).encode(
        x=alt.X("start:Q", title=None), x2="end:Q", color=alt.Color("fill:N", scale=None)
    )
    text = base.mark_text(fontSize=12).encode(x="middle:Q", text="label:N", color=alt.Color("ink:N", scale=None))
    return (bars + text).properties(height=56 * len(order) + 30)


PLOT_WIDTH_PX = 850
"""About the width of the bar area on a wide layout, and the width of one label character:
segment labels are cut to what fits, so a long stage name never runs over its neighbours."""
CHAR_PX = 6.5


def _fit(name: str, count: str, share: float) -> str:
    """``"name count"`` cut with "…" to the segment's width; the count alone, or nothing, if tighter."""
    room = int((share * PLOT_WIDTH_PX - 10) / CHAR_PX)
    if room >= len(name) + 1 + len(count):
        return f"{name} {count}"
    if room >= len(count) + 5:
        return f"{name[: room - len(count) - 2]}… {count}"
    return count if room >= len(count) else ""


def stage_bars(stages: pd.DataFrame, measure: str, title: str, label: str) -> alt.LayerChart:
    """Horizontal bars, one per stage in stage order, in the stage's own colour, with labels."""
    order = list(stages["stage"])
    base = alt.Chart(stages).encode(
        y=alt.Y("stage:N", sort=order, title=None, axis=alt.Axis(labelLimit=220)),
        # No x axis: every bar carries its number, and the grid only adds noise to a funnel.
        x=alt.X(f"{measure}:Q", title=title, axis=None, scale=alt.Scale(nice=True)),
        tooltip=[
            alt.Tooltip("stage_name:N", title="Stage"),
            alt.Tooltip("boxes:Q", title="Boxes", format=","),
            alt.Tooltip("share:Q", title="Share of boxes", format=".0%"),
            *([alt.Tooltip(f"{label}:N", title=title)] if measure == "value" else []),  # fmt_number: 1e300 stays short
        ],
    )
    bars = base.mark_bar(cornerRadiusEnd=4, stroke="#495057", strokeWidth=0.5, strokeOpacity=0.6).encode(
        color=alt.Color("stage:N", scale=stage_colors(stages, "stage"), legend=None),
        opacity=alt.condition("datum.closed", alt.value(0.45), alt.value(1.0)),
    )
    text = base.mark_text(align="left", dx=6, color="#343a40").encode(text=f"{label}:N")
    return (bars + text).properties(height=34 * len(stages) + 12)


def over_time_bars(frame: pd.DataFrame, loads: dict[str, str], measure: str, title: str, label: str) -> alt.LayerChart:
    """One bar per load (``loads``: label -> run id, oldest first), stacked by stage in stage order and Streak
    colour, the load's total on top (column ``label`` of the totals). ``frame``: a row per load and
    stage of one pipeline (``run_id, pipeline_key, load, stage, stage_order, color`` and ``measure``)."""
    in_order = frame.sort_values(["stage_order", "stage"]).drop_duplicates("stage")
    order = list(loads)
    totals = (frame.groupby("load")[measure].sum().reindex(order, fill_value=0).rename("total")
              .rename_axis("load").reset_index())
    totals["run_id"] = totals["load"].map(loads)
    totals["pipeline_key"] = frame["pipeline_key"].iloc[0]
    totals[label] = totals["total"].map(fmt_int if measure == "boxes" else fmt_number)
    y_scale = alt.Scale(domain=[0, max(float(totals["total"].max()), 1.0) * 1.15], nice=False)  # room for the labels
    x = alt.X("load:N", sort=order, title=None, axis=alt.Axis(labelAngle=0 if len(order) <= 6 else -40))
    bars = alt.Chart(frame).mark_bar(stroke="white", strokeWidth=0.5).encode(
        x=x,
        y=alt.Y(f"{measure}:Q", title=title, stack="zero", scale=y_scale,
                axis=alt.Axis(labelExpr=number_label_expr()) if measure != "boxes" else alt.Axis(format=",d")),
        color=alt.Color("stage:N", scale=stage_colors(in_order, "stage"), sort=list(in_order["stage"]),
                        legend=alt.Legend(title=None, orient="bottom", columns=4, labelLimit=220)),
        order=alt.Order("stage_order:Q", sort="ascending"),
        tooltip=[alt.Tooltip("load:N", title="Load"), alt.Tooltip("stage:N", title="Stage"),
                 alt.Tooltip(f"{measure}:Q", title=title, format=",.0f" if measure == "boxes" else ",.2f")],
    )
    text = alt.Chart(totals).mark_text(baseline="bottom", dy=-4, color="#343a40").encode(
        x=x, y=alt.Y("total:Q", scale=y_scale), text=f"{label}:N")
    return (bars + text).properties(height=300)
