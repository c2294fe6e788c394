"""Streak CRM dashboard: funnels, ageing, task load and activity over the pipeline's dataset.

    streamlit run dashboards/streak_dashboard.py

Reads whatever destination ``pipelines/streak_full.py`` wrote, resolved from the same
configuration (``.dlt/config.toml``, secrets, environment): the DuckDB file by default (opened
read-only, briefly, once per page view), any other dlt destination through ``dlt.dataset``.
All SQL lives in ``dashboards/queries.py``; this file only lays out pages, filters and charts.
"""

from __future__ import annotations

import colorsys
import hashlib
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Final, TypeVar

# `streamlit run` puts dashboards/ on sys.path, not the project root the imports below live in.
PROJECT_ROOT: Final = Path(__file__).resolve().parent.parent
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

import altair as alt  # noqa: E402
import pandas as pd  # noqa: E402
import streamlit as st  # noqa: E402

from dashboards import queries  # noqa: E402
from dashboards.queries import (  # noqa: E402
    LOAD_COMMAND,
    UNASSIGNED,
    UNASSIGNED_LABEL,
    DatabaseBusy,
    DestinationUnavailable,
    Filters,
    NoData,
    Runner,
    Source,
)

T = TypeVar("T")

# Query results live this long; a finished DuckDB load changes the cache key at once anyway.
# (No bare strings at module level here: Streamlit's "magic" would print them on the page.)
CACHE_TTL_S: Final = 60
APP_TITLE: Final = "Streak CRM"

# One palette for the whole app, so a kind or a state has the same colour on every page.
KIND_COLORS: Final = {"Emails": "#4263eb", "Comments": "#12b886", "Meetings": "#f59f00", "Call logs": "#e64980"}
STATE_COLORS: Final = {"Overdue": "#e03131", "Due soon": "#f59f00"}
FALLBACK_PALETTE: Final = (
    "#4263eb", "#12b886", "#f59f00", "#e64980", "#7950f2", "#15aabf", "#fd7e14", "#82c91e",
    "#be4bdb", "#fa5252", "#228be6", "#40c057",
)
# The sidebar's wordmark: inline SVG, so the app needs no image files.
LOGO_SVG: Final = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="210" height="40" viewBox="0 0 210 40">'
    '<rect x="1" y="6" width="36" height="28" rx="7" fill="#4263eb"/>'
    '<path d="M8 14 L19 22 L30 14" stroke="#fff" stroke-width="3" fill="none" '
    'stroke-linecap="round" stroke-linejoin="round"/>'
    '<text x="47" y="28" font-family="Source Sans Pro, Helvetica, Arial, sans-serif" '
    'font-size="22" font-weight="700" fill="#1f2933">Streak CRM</text></svg>'
)
_HEX_COLOR = re.compile(r"^#([0-9a-fA-F]{3,4}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$")

# Session-state keys of the sidebar filters (shared by every page).
K_PIPELINE: Final = "filter_pipeline"
K_OWNERS: Final = "filter_owners"
K_CREATED: Final = "filter_created"
ALL_PIPELINES: Final = "__all__"


# ------------------------------------------------------------------------------------------
# Data access: a lazily opened runner per script run, and one cache for every query
# ------------------------------------------------------------------------------------------


class Reader:
    """Opens the destination only when a query misses the cache, and closes it after the run.

    Holding a DuckDB file open would block the next load's write lock, so the connection lives
    for one script run at most.
    """

    def __init__(self, source: Source) -> None:
        self.source = source
        self.tries = 0
        self._runner: Runner | None = None

    def runner(self) -> Runner:
        if self._runner is None:
            self._runner, self.tries = queries.connect(self.source)
        return self._runner

    def close(self) -> None:
        if self._runner is not None:
            self._runner.close()
            self._runner = None


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False, max_entries=1024)
def _cached_query(name: str, version: str, args: tuple[Any, ...], _reader: Reader) -> Any:
    """Every query result, keyed on the query, the data version and the filters in ``args``.

    The reader is not part of the key (leading underscore): on a hit nothing is opened at all.
    """
    return getattr(queries, name)(_reader.runner(), *args)


@dataclass
class Context:
    """What every page needs for one script run."""

    source: Source
    reader: Reader
    version: str
    now: datetime
    problem: BaseException | None = None
    filters: Filters = field(default_factory=Filters)
    pipeline_names: dict[str, str] = field(default_factory=dict)
    owner_names: dict[str, str] = field(default_factory=dict)

    def q(self, query: Callable[..., T], *args: Any) -> T:
        """``query(runner, *args)`` through the cache; ``query`` is a function of ``queries``."""
        return _cached_query(query.__name__, self.version, args, _reader=self.reader)


def source_version(source: Source) -> str:
    """Cache key part for the data: file stamp for DuckDB, configured target otherwise."""
    if source.kind == "duckdb":
        return source.version()
    try:
        from streak_source.warehouse import configured_credentials

        target = hashlib.sha256(str(configured_credentials()).encode()).hexdigest()[:16]
    except Exception:
        target = "unknown"
    return f"{source.version()}:{target}"


# ------------------------------------------------------------------------------------------
# Small presentation helpers
# ------------------------------------------------------------------------------------------


def fmt_int(value: float | int) -> str:
    return f"{int(value):,}"


def fmt_number(value: float) -> str:
    """Compact number for funnel sums: 1,250 / 48.2k / 3.1M."""
    if pd.isna(value):
        return "–"
    magnitude = abs(value)
    if magnitude >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    if magnitude >= 10_000:
        return f"{value / 1_000:.1f}k"
    return f"{value:,.0f}" if float(value).is_integer() or magnitude >= 100 else f"{value:,.2f}"


def ago(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "never"
    seconds = max(0.0, (now - moment).total_seconds())
    if seconds < 90:
        return "just now"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 36 * 3600:
        return f"{seconds / 3600:.0f} h ago"
    return f"{seconds / 86400:.0f} days ago"


def chart_color(css: Any, index: int) -> str:
    """A stage's Streak colour made usable as a bar fill on white.

    Streak's stage backgrounds are often pastel (text sits on them); as bar fills they vanish. The
    hue is kept, lightness is pulled into a readable band. Anything that is not a ``#hex`` colour
    gets a palette colour.
    """
    text = css.strip() if isinstance(css, str) else ""
    if not _HEX_COLOR.match(text):
        return FALLBACK_PALETTE[index % len(FALLBACK_PALETTE)]
    digits = text[1:]
    if len(digits) in (3, 4):
        digits = "".join(ch * 2 for ch in digits[:3])
    red, green, blue = (int(digits[i : i + 2], 16) / 255 for i in (0, 2, 4))
    hue, lightness, saturation = colorsys.rgb_to_hls(red, green, blue)
    lightness = min(max(lightness, 0.30), 0.66)
    if saturation > 0.05:
        saturation = max(saturation, 0.45)
    red, green, blue = colorsys.hls_to_rgb(hue, lightness, saturation)
    return "#" + "".join(f"{round(c * 255):02x}" for c in (red, green, blue))


def stage_colors(frame: pd.DataFrame, label_column: str) -> alt.Scale:
    """A colour scale giving every stage (label) the colour it has in Streak."""
    domain: list[str] = []
    colors: list[str] = []
    for index, (label, color) in enumerate(zip(frame[label_column], frame["color"])):
        if label in domain:
            continue
        domain.append(label)
        colors.append(chart_color(color, index))
    return alt.Scale(domain=domain, range=colors)


def unique_labels(names: pd.Series, keys: pd.Series) -> pd.Series:
    """Stage names made unique (two stages may share a name): "Won", "Won (5009)"."""
    duplicated = names.duplicated(keep=False)
    return names.where(~duplicated, names + " (" + keys.astype(str) + ")")


def empty_state(message: str) -> None:
    st.info(message, icon=":material/info:")


def scope_caption(ctx: Context) -> str:
    """One line saying what the numbers on the page cover."""
    f = ctx.filters
    pipeline = ctx.pipeline_names.get(f.pipeline_key, f.pipeline_key) if f.pipeline_key else "All pipelines"
    if f.owners:
        owner = ", ".join(ctx.owner_names.get(o, o) for o in f.owners)
    else:
        owner = "everyone"
    if f.created_from or f.created_to:
        start = f.created_from.isoformat() if f.created_from else "…"
        end = f.created_to.isoformat() if f.created_to else "…"
        created = f"created {start} → {end}"
    else:
        created = "any creation date"
    return f"**{pipeline}** · owner: {owner} · {created}"


def page_header(ctx: Context, title: str, subtitle: str) -> bool:
    """Title and scope line; shows the no-data / busy message and returns False when there is none."""
    st.title(title)
    if ctx.problem is not None:
        show_problem(ctx)
        return False
    st.caption(f"{subtitle}  \n{scope_caption(ctx)}")
    return True


def show_problem(ctx: Context) -> None:
    """Friendly message instead of a traceback: no data yet, a load holding the file, bad config."""
    problem = ctx.problem
    if isinstance(problem, NoData):
        where = (
            f"the DuckDB file `{ctx.source.duckdb_path}` does not exist yet"
            if problem.reason == "missing"
            else f"{ctx.source.label} has no Streak tables yet"
        )
        st.info(
            f"**No Streak data to show yet**: {where}.\n\n"
            f"Load some data, then reload this page:\n\n"
            f"```\n{LOAD_COMMAND}\n```\n"
            "That loads the built-in demo account; `python pipelines/streak_full.py` loads your own "
            "account (API key in `.dlt/secrets.toml`).",
            icon=":material/database:",
        )
    elif isinstance(problem, DatabaseBusy):
        st.warning(
            f"**A load is writing to the database right now.** `{problem.path}` stayed locked "
            f"through {problem.attempts} tries over {problem.waited_s:.1f} s. Reload this page in a "
            "moment, when the load has finished.",
            icon=":material/hourglass_top:",
        )
    elif isinstance(problem, DestinationUnavailable):
        st.error(
            f"**Could not read {ctx.source.label}.** {problem}\n\n"
            "Check `[destination.warehouse]` in `.dlt/config.toml` / `.dlt/secrets.toml` "
            "(or the `DESTINATION__WAREHOUSE__*` environment variables).",
            icon=":material/error:",
        )
    else:  # pragma: no cover - kept for unexpected errors, shown as one line
        st.error(f"Could not read the data: {type(problem).__name__}: {problem}")


def chart(spec: alt.TopLevelMixin) -> None:
    st.altair_chart(spec, width="stretch")


# ------------------------------------------------------------------------------------------
# Sidebar filters (rendered on every page so their state persists across pages)
# ------------------------------------------------------------------------------------------


def reset_filters() -> None:
    for key in (K_PIPELINE, K_OWNERS, K_CREATED):
        st.session_state.pop(key, None)


def sidebar_filters(ctx: Context) -> Filters:
    """Pipeline, owner and creation-date filters; returns the :class:`Filters` they describe."""
    pipelines: pd.DataFrame = ctx.q(queries.pipelines)
    owners: pd.DataFrame = ctx.q(queries.owners)
    first, last = ctx.q(queries.creation_bounds)
    ctx.pipeline_names = dict(zip(pipelines["pipeline_key"], pipelines["pipeline_name"]))
    ctx.owner_names = {
        (UNASSIGNED if pd.isna(email) else email): (
            UNASSIGNED_LABEL if pd.isna(email) else (name if isinstance(name, str) and name else email)
        )
        for email, name in zip(owners["owner_email"], owners["owner_name"])
    }
    boxes_by_pipeline = dict(zip(pipelines["pipeline_key"], pipelines["boxes"]))
    boxes_by_owner = {
        (UNASSIGNED if pd.isna(e) else e): n for e, n in zip(owners["owner_email"], owners["boxes"])
    }

    with st.sidebar:
        st.header("Filters", anchor=False)
        pipeline_options = [ALL_PIPELINES, *pipelines["pipeline_key"]]
        if st.session_state.get(K_PIPELINE) not in pipeline_options:
            st.session_state.pop(K_PIPELINE, None)
        pipeline = st.selectbox(
            "Pipeline",
            pipeline_options,
            key=K_PIPELINE,
            format_func=lambda k: "All pipelines"
            if k == ALL_PIPELINES
            else f"{ctx.pipeline_names.get(k, k)} ({fmt_int(boxes_by_pipeline.get(k, 0))})",
        )
        owner_options = list(ctx.owner_names)
        if any(o not in owner_options for o in st.session_state.get(K_OWNERS, [])):
            st.session_state.pop(K_OWNERS, None)
        chosen_owners = st.multiselect(
            "Owner",
            owner_options,
            key=K_OWNERS,
            placeholder="Everyone",
            format_func=lambda o: f"{ctx.owner_names.get(o, o)} ({fmt_int(boxes_by_owner.get(o, 0))})",
            help="The box's first assignee.",
        )
        created_from = created_to = None
        if first is not None and last is not None:
            today = ctx.now.date()
            upper = max(last, today)
            stored = st.session_state.get(K_CREATED)
            if isinstance(stored, (tuple, list)) and any(d is not None and not first <= d <= upper for d in stored):
                st.session_state.pop(K_CREATED)  # a new load moved the bounds past the old pick
            chosen = st.date_input(
                "Boxes created",
                value=(first, upper),
                min_value=first,
                max_value=upper,
                key=K_CREATED,
                help="Every page looks at the boxes created in this range.",
            )
            created_from, created_to = _date_range(chosen, first, upper)
        st.button("Reset filters", on_click=reset_filters, icon=":material/restart_alt:", type="tertiary")
        loaded = ctx.q(queries.last_load)
        st.caption(
            f"Source: {ctx.source.label}  \nLast load: {ago(loaded['inserted_at'], ctx.now)}"
            + (f" ({loaded['inserted_at']:%Y-%m-%d %H:%M} UTC)" if loaded["inserted_at"] else "")
        )
    return Filters(
        pipeline_key=None if pipeline == ALL_PIPELINES else str(pipeline),
        owners=tuple(chosen_owners),
        created_from=created_from,
        created_to=created_to,
    )


def _date_range(chosen: Any, first: date, upper: date) -> tuple[date | None, date | None]:
    """The picked range as filter bounds; the full span means "no date filter" (NULL dates too)."""
    if isinstance(chosen, (tuple, list)):
        start = chosen[0] if len(chosen) > 0 else None
        end = chosen[1] if len(chosen) > 1 else None
    else:
        start, end = chosen, None
    start = None if start is None or start <= first else start
    end = None if end is None or end >= upper else end
    return start, end


# ------------------------------------------------------------------------------------------
# Pages
# ------------------------------------------------------------------------------------------


def page_overview(ctx: Context) -> None:
    if not page_header(ctx, "Overview", "Boxes, open work and activity, and how fresh the copy is."):
        return
    counts: dict[str, int] = ctx.q(queries.overview_counts, ctx.filters, ctx.now)
    cards = st.columns(6)
    cards[0].metric("Boxes", fmt_int(counts["boxes"]), border=True)
    cards[1].metric("Open tasks", fmt_int(counts["open_tasks"]), border=True)
    cards[2].metric(
        "Overdue tasks",
        fmt_int(counts["overdue_tasks"]),
        border=True,
        help="Not done, due date in the past.",
    )
    cards[3].metric("Email threads", fmt_int(counts["email_threads"]), border=True)
    cards[4].metric("Comments", fmt_int(counts["comments"]), border=True)
    cards[5].metric(
        "Meetings", fmt_int(counts["meetings"] + counts["call_logs"]), border=True,
        help=f"{fmt_int(counts['meetings'])} meeting notes, {fmt_int(counts['call_logs'])} call logs.",
    )
    if counts["boxes"] == 0:
        empty_state("No boxes match these filters.")
    else:
        st.subheader("Where the boxes are", anchor=False)
        chart(_stage_breakdown(ctx.q(queries.funnel, ctx.filters, None)))
        st.subheader("New boxes per month", anchor=False)
        created: pd.DataFrame = ctx.q(queries.boxes_created, ctx.filters)
        if created.empty:
            empty_state("These boxes have no creation dates.")
        else:
            chart(
                alt.Chart(created)
                .mark_bar(cornerRadiusTopLeft=2, cornerRadiusTopRight=2, width=alt.RelativeBandSize(0.8))
                .encode(
                    x=alt.X("yearmonth(month):T", title=None, axis=alt.Axis(format="%b %Y")),
                    y=alt.Y("sum(boxes):Q", title="Boxes"),
                    color=alt.Color(
                        "pipeline_name:N",
                        title=None,
                        scale=alt.Scale(range=list(FALLBACK_PALETTE)),
                        legend=alt.Legend(orient="top"),
                    ),
                    tooltip=[
                        alt.Tooltip("yearmonth(month):T", title="Month"),
                        alt.Tooltip("pipeline_name:N", title="Pipeline"),
                        alt.Tooltip("sum(boxes):Q", title="Boxes", format=","),
                    ],
                )
                .properties(height=240)
            )

    st.subheader("Freshness", anchor=False)
    loaded = ctx.q(queries.last_load)
    rows: pd.DataFrame = ctx.q(queries.row_counts)
    fresh = st.columns([1, 1, 2])
    fresh[0].metric(
        "Last load",
        ago(loaded["inserted_at"], ctx.now),
        border=True,
        help=f"{loaded['inserted_at']:%Y-%m-%d %H:%M:%S} UTC" if loaded["inserted_at"] else None,
    )
    fresh[1].metric("Loads so far", fmt_int(loaded["loads"]), border=True)
    with fresh[2]:
        st.caption("Rows per table (whole account, not filtered)")
        st.dataframe(
            rows,
            hide_index=True,
            height=min(38 + 35 * len(rows), 320),
            column_config={
                "table": st.column_config.TextColumn("Table"),
                "rows": st.column_config.NumberColumn("Rows", format="localized"),
            },
        )


def _stage_breakdown(funnel: pd.DataFrame) -> alt.LayerChart:
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
    frame["ink"] = [_ink(color) for color in frame["fill"]]
    widest = float(totals.max()) if len(totals) else 1.0
    frame["label"] = [
        f"{name} {fmt_int(n)}" if n / widest >= 0.09 else (fmt_int(n) if n / widest >= 0.03 else "")
        for name, n in zip(frame["stage_name"], frame["boxes"])
    ]
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
    text = base.mark_text(fontSize=12).encode(
        x="middle:Q", text="label:N", color=alt.Color("ink:N", scale=None)
    )
    return (bars + text).properties(height=56 * len(order) + 30)


def _ink(fill: str) -> str:
    """Black or white, whichever reads better on ``fill`` (a #rrggbb colour)."""
    red, green, blue = (int(fill[i : i + 2], 16) for i in (1, 3, 5))
    return "#1f2933" if (0.299 * red + 0.587 * green + 0.114 * blue) > 150 else "#ffffff"


def page_funnel(ctx: Context) -> None:
    if not page_header(ctx, "Pipeline funnel", "Boxes in each stage, in the pipeline's stage order."):
        return
    fields: pd.DataFrame = ctx.q(queries.numeric_fields, ctx.filters)
    measures = ["Number of boxes", *fields["field_name"]]
    measure = st.selectbox(
        "Sum a numeric field",
        measures,
        key="funnel_measure",
        help="Numeric custom fields of these boxes (numbers, formulas, number-like text).",
    )
    value_field = None if measure == measures[0] else measure
    frame: pd.DataFrame = ctx.q(queries.funnel, ctx.filters, value_field)
    total = int(frame["boxes"].sum())
    cards = st.columns(4)
    cards[0].metric("Boxes", fmt_int(total), border=True)
    if value_field:
        cards[1].metric(f"Total {value_field}", fmt_number(float(frame["value"].sum())), border=True)
    if total == 0:
        empty_state("No boxes match these filters.")
        return
    for pipeline_key, stages in frame.groupby("pipeline_key", sort=False):
        stages = stages.sort_values(["stage_order", "stage_key"]).reset_index(drop=True)
        if ctx.filters.pipeline_key is None:
            count = int(stages["boxes"].sum())
            st.subheader(f"{stages['pipeline_name'].iloc[0]} · {fmt_int(count)} boxes", anchor=False)
        stages["stage"] = unique_labels(stages["stage_name"], stages["stage_key"])
        stages["share"] = stages["boxes"] / max(1, int(stages["boxes"].sum()))
        stages["boxes_label"] = [f"{fmt_int(b)}  ·  {s:.0%}" for b, s in zip(stages["boxes"], stages["share"])]
        columns = st.columns(2) if value_field else [st.container()]
        with columns[0]:
            chart(_stage_bars(stages, "boxes", "Boxes", "boxes_label"))
        if value_field:
            stages["value_label"] = [fmt_number(v) for v in stages["value"]]
            with columns[1]:
                chart(_stage_bars(stages, "value", value_field, "value_label"))


def _stage_bars(stages: pd.DataFrame, measure: str, title: str, label: str) -> alt.LayerChart:
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
            *([alt.Tooltip("value:Q", title=title, format=",.2f")] if measure == "value" else []),
        ],
    )
    bars = base.mark_bar(cornerRadiusEnd=4, stroke="#495057", strokeWidth=0.5, strokeOpacity=0.6).encode(
        color=alt.Color("stage:N", scale=stage_colors(stages, "stage"), legend=None)
    )
    text = base.mark_text(align="left", dx=6, color="#343a40").encode(text=f"{label}:N")
    return (bars + text).properties(height=34 * len(stages) + 12)


def page_ageing(ctx: Context) -> None:
    if not page_header(ctx, "Ageing", "How long boxes have sat in their current stage."):
        return
    boxes: pd.DataFrame = ctx.q(queries.ageing, ctx.filters, ctx.now)
    if boxes.empty:
        empty_state("No boxes match these filters.")
        return
    multi = ctx.filters.pipeline_key is None
    boxes = boxes.assign(
        stage=boxes["pipeline_name"] + " · " + boxes["stage_name"] if multi else boxes["stage_name"]
    )
    stage_order = (
        boxes.drop_duplicates("stage").sort_values(["pipeline_name", "stage_order"])["stage"].tolist()
    )
    leave_out = st.multiselect(
        "Leave out stages",
        stage_order,
        key="ageing_leave_out",
        placeholder="None: every stage counts",
        help="E.g. closed stages (Won, Lost, Hired) where time in stage does not matter.",
    )
    boxes = boxes[~boxes["stage"].isin(leave_out)]
    if boxes.empty:
        empty_state("Every stage is left out.")
        return
    stats = queries.ageing_by_stage(boxes.drop(columns=["stage_name"]).rename(columns={"stage": "stage_name"}))
    cards = st.columns(4)
    cards[0].metric("Boxes", fmt_int(len(boxes)), border=True)
    cards[1].metric("Median days in stage", f"{boxes['days_in_stage'].median():.0f}", border=True)
    cards[2].metric("Over 30 days", fmt_int((boxes["days_in_stage"] > 30).sum()), border=True)
    cards[3].metric("Over 90 days", fmt_int((boxes["days_in_stage"] > 90).sum()), border=True)

    st.subheader("Days since last stage change, per stage", anchor=False)
    stats["label"] = [f"{m:.0f} d" for m in stats["median_days"]]
    order = [s for s in stage_order if s in set(stats["stage_name"])]
    base = alt.Chart(stats).encode(
        y=alt.Y("stage_name:N", sort=order, title=None, axis=alt.Axis(labelLimit=260)),
        tooltip=[
            alt.Tooltip("stage_name:N", title="Stage"),
            alt.Tooltip("boxes:Q", title="Boxes", format=","),
            alt.Tooltip("median_days:Q", title="Median days", format=".1f"),
            alt.Tooltip("p90_days:Q", title="90th percentile", format=".1f"),
            alt.Tooltip("max_days:Q", title="Longest", format=".1f"),
        ],
    )
    bars = base.mark_bar(cornerRadiusEnd=4, stroke="#495057", strokeWidth=0.5, strokeOpacity=0.6).encode(
        x=alt.X("median_days:Q", title="Days (bar: median, tick: 90th percentile)"),
        color=alt.Color("stage_name:N", scale=stage_colors(stats, "stage_name"), legend=None),
    )
    spread = base.mark_rule(color="#adb5bd", strokeWidth=2).encode(x="median_days:Q", x2="p90_days:Q")
    ticks = base.mark_tick(color="#343a40", thickness=2, size=22).encode(x="p90_days:Q")
    text = base.mark_text(align="left", dx=5, color="#343a40").encode(x="median_days:Q", text="label:N")
    chart((spread + bars + ticks + text).properties(height=34 * len(stats) + 60))

    st.subheader("Stuck longest", anchor=False)
    longest = boxes.head(25)
    st.dataframe(
        longest[["box_name", "pipeline_name", "stage_name", "owner_name", "days_in_stage", "since"]],
        hide_index=True,
        column_config={
            "box_name": st.column_config.TextColumn("Box", width="large"),
            "pipeline_name": st.column_config.TextColumn("Pipeline"),
            "stage_name": st.column_config.TextColumn("Stage"),
            "owner_name": st.column_config.TextColumn("Owner"),
            "days_in_stage": st.column_config.ProgressColumn(
                "Days in stage", format="%.0f", min_value=0.0,
                max_value=float(max(1.0, longest["days_in_stage"].max())),
            ),
            "since": st.column_config.DatetimeColumn("In stage since", format="YYYY-MM-DD"),
        },
    )


def page_tasks(ctx: Context) -> None:
    if not page_header(ctx, "Tasks", "Open tasks on these boxes that are overdue or due soon, by assignee."):
        return
    horizon = st.slider("Due soon means due within (days)", 1, 30, 7, key="tasks_horizon")
    tasks: pd.DataFrame = ctx.q(queries.open_tasks, ctx.filters)
    statuses: dict[str, int] = ctx.q(queries.task_status_counts, ctx.filters)
    classified = queries.classify_tasks(tasks, ctx.now, horizon)
    overdue = int((classified["state"] == "Overdue").sum())
    soon = int((classified["state"] == "Due soon").sum())
    cards = st.columns(4)
    cards[0].metric("Open tasks", fmt_int(len(classified)), border=True)
    cards[1].metric("Overdue", fmt_int(overdue), border=True)
    cards[2].metric(f"Due in {horizon} days", fmt_int(soon), border=True)
    cards[3].metric("Done", fmt_int(statuses.get("DONE", 0)), border=True)
    if overdue + soon == 0:
        empty_state("Nothing overdue or due soon for these boxes.")
        return
    by_assignee = queries.tasks_by_assignee(classified)
    totals = by_assignee.groupby("assignee")["tasks"].sum().sort_values(ascending=False)
    st.subheader("Overdue and due soon, by assignee", anchor=False)
    chart(
        alt.Chart(by_assignee)
        .mark_bar(cornerRadiusEnd=3)
        .encode(
            y=alt.Y("assignee:N", sort=list(totals.index), title=None, axis=alt.Axis(labelLimit=220)),
            x=alt.X("tasks:Q", title="Tasks", stack=True),
            color=alt.Color(
                "state:N",
                title=None,
                scale=alt.Scale(domain=list(STATE_COLORS), range=list(STATE_COLORS.values())),
                legend=alt.Legend(orient="top"),
            ),
            order=alt.Order("state:N", sort="descending"),
            tooltip=[
                alt.Tooltip("assignee:N", title="Assignee"),
                alt.Tooltip("state:N", title="State"),
                alt.Tooltip("tasks:Q", title="Tasks"),
            ],
        )
        .properties(height=32 * len(totals) + 90)
    )
    st.subheader("The tasks", anchor=False)
    focus = classified[classified["state"].isin(["Overdue", "Due soon"])].sort_values("due_date")
    focus = focus.assign(assignee_names=focus["assignee_names"].fillna(UNASSIGNED_LABEL))
    st.dataframe(
        focus[["state", "due_date", "days_overdue", "text", "assignee_names", "box_name", "pipeline_name", "stage_name"]],
        hide_index=True,
        column_config={
            "state": st.column_config.TextColumn("State"),
            "due_date": st.column_config.DatetimeColumn("Due", format="YYYY-MM-DD HH:mm"),
            "days_overdue": st.column_config.NumberColumn("Days overdue", format="%.0f"),
            "text": st.column_config.TextColumn("Task", width="large"),
            "assignee_names": st.column_config.TextColumn("Assignees"),
            "box_name": st.column_config.TextColumn("Box"),
            "pipeline_name": st.column_config.TextColumn("Pipeline"),
            "stage_name": st.column_config.TextColumn("Stage"),
        },
    )


def page_activity(ctx: Context) -> None:
    if not page_header(ctx, "Activity", "Emails, comments, meetings and call logs on these boxes, over time and per owner."):
        return
    grain_label = st.segmented_control(
        "Group by", ["Week", "Month"], default="Week", key="activity_grain"
    ) or "Week"
    frame: pd.DataFrame = ctx.q(queries.activity, ctx.filters, grain_label.lower())
    totals = frame.groupby("kind")["events"].sum() if not frame.empty else pd.Series(dtype="int64")
    cards = st.columns(4)
    for card, kind in zip(cards, queries.ACTIVITY_KINDS):
        card.metric(
            "Email threads" if kind == "Emails" else kind,
            fmt_int(totals.get(kind, 0)),
            border=True,
            help="Threads, dated by their last email." if kind == "Emails" else None,
        )
    if frame.empty:
        empty_state("No activity on these boxes.")
        return
    kind_scale = alt.Scale(domain=list(KIND_COLORS), range=list(KIND_COLORS.values()))
    st.subheader(f"Per {grain_label.lower()}", anchor=False)
    time_unit = "yearweek" if grain_label == "Week" else "yearmonth"
    chart(
        alt.Chart(frame)
        .mark_bar(width=alt.RelativeBandSize(0.85))
        .encode(
            x=alt.X(f"{time_unit}(period):T", title=None, axis=alt.Axis(format="%b %-d, %Y" if grain_label == "Week" else "%b %Y")),
            y=alt.Y("sum(events):Q", title="Events"),
            color=alt.Color("kind:N", title=None, scale=kind_scale, legend=alt.Legend(orient="top")),
            tooltip=[
                alt.Tooltip(f"{time_unit}(period):T", title=grain_label),
                alt.Tooltip("kind:N", title="Kind"),
                alt.Tooltip("sum(events):Q", title="Events", format=","),
            ],
        )
        .properties(height=280)
    )
    st.subheader("Per box owner", anchor=False)
    per_owner = frame.groupby(["owner", "kind"], as_index=False)["events"].sum()
    owner_order = per_owner.groupby("owner")["events"].sum().sort_values(ascending=False).index.tolist()
    chart(
        alt.Chart(per_owner)
        .mark_bar(cornerRadiusEnd=3)
        .encode(
            y=alt.Y("owner:N", sort=owner_order, title=None, axis=alt.Axis(labelLimit=220)),
            x=alt.X("events:Q", title="Events"),
            color=alt.Color("kind:N", title=None, scale=kind_scale, legend=alt.Legend(orient="top")),
            tooltip=[
                alt.Tooltip("owner:N", title="Owner"),
                alt.Tooltip("kind:N", title="Kind"),
                alt.Tooltip("events:Q", title="Events", format=","),
            ],
        )
        .properties(height=32 * len(owner_order) + 90)
    )


def page_explorer(ctx: Context) -> None:
    if not page_header(ctx, "Box explorer", "Every box in view, with its stage and custom fields by name."):
        return
    boxes: pd.DataFrame = ctx.q(queries.explorer_boxes, ctx.filters)
    controls = st.columns([3, 2])
    search = controls[0].text_input(
        "Search", key="explorer_search", placeholder="Name, stage, owner or any field value",
    )
    if ctx.filters.pipeline_key is not None and "stage_name" in boxes and not boxes.empty:
        stage_names = list(dict.fromkeys(boxes["stage_name"].dropna()))
        chosen = controls[1].multiselect("Stages", stage_names, key="explorer_stages", placeholder="All stages")
        if chosen:
            boxes = boxes[boxes["stage_name"].isin(chosen)]
    shown = queries.search_boxes(boxes, search)
    st.caption(f"{fmt_int(len(shown))} of {fmt_int(len(boxes))} boxes")
    if shown.empty:
        empty_state("No boxes match." if not boxes.empty else "No boxes match these filters.")
        return
    name = ctx.pipeline_names.get(ctx.filters.pipeline_key, "all_pipelines") if ctx.filters.pipeline_key else "all_pipelines"
    file_name = re.sub(r"[^0-9A-Za-z]+", "_", f"streak_boxes_{name}").strip("_").lower() + ".csv"
    st.download_button(
        "Download CSV",
        data=lambda: shown.to_csv(index=False).encode("utf-8"),
        file_name=file_name,
        mime="text/csv",
        icon=":material/download:",
        on_click="ignore",
    )
    labels = {**EXPLORER_LABELS, **ctx.q(queries.field_labels, ctx.filters.pipeline_key)}
    config: dict[str, Any] = {"box_key": None}
    for column in shown.columns:
        if column == "box_key":
            continue
        label = labels.get(column, column.replace("_", " ").capitalize())
        series = shown[column]
        if column == "box_name":
            config[column] = st.column_config.TextColumn(label, width="medium", pinned=True)
        elif pd.api.types.is_datetime64_any_dtype(series):
            config[column] = st.column_config.DatetimeColumn(label, format="YYYY-MM-DD")
        elif pd.api.types.is_bool_dtype(series):
            config[column] = st.column_config.CheckboxColumn(label)
        elif pd.api.types.is_numeric_dtype(series):
            config[column] = st.column_config.NumberColumn(label, format="localized")
        else:
            config[column] = st.column_config.TextColumn(label)
    st.dataframe(shown, hide_index=True, height=560, column_config=config)


EXPLORER_LABELS: Final = {
    "box_name": "Box",
    "pipeline": "Pipeline",
    "stage_name": "Stage",
    "owner_name": "Owner",
    "owner_email": "Owner email",
    "assigned_to": "Assigned to",
    "created": "Created",
    "creation_timestamp": "Created",
    "last_updated": "Last updated",
    "last_updated_timestamp": "Last updated",
    "last_stage_change": "Last stage change",
    "last_stage_change_timestamp": "Last stage change",
    "tasks": "Tasks",
    "email_threads": "Email threads",
    "comments": "Comments",
}


PAGES: Final[tuple[tuple[Callable[[Context], None], str, str, str], ...]] = (
    (page_overview, "Overview", ":material/dashboard:", "overview"),
    (page_funnel, "Pipeline funnel", ":material/filter_alt:", "funnel"),
    (page_ageing, "Ageing", ":material/hourglass_bottom:", "ageing"),
    (page_tasks, "Tasks", ":material/task_alt:", "tasks"),
    (page_activity, "Activity", ":material/forum:", "activity"),
    (page_explorer, "Box explorer", ":material/table_view:", "explorer"),
)


# ------------------------------------------------------------------------------------------
# Entry point
# ------------------------------------------------------------------------------------------


def main() -> None:
    st.set_page_config(page_title=APP_TITLE, page_icon=":material/mail:", layout="wide")
    now = datetime.now(timezone.utc).replace(second=0, microsecond=0)  # a stable cache key per minute
    try:
        source = queries.resolve_source()
    except Exception as exc:
        st.title(APP_TITLE)
        st.error(f"Could not read the destination configuration: {type(exc).__name__}: {exc}")
        return
    reader = Reader(source)
    ctx = Context(source=source, reader=reader, version=source_version(source), now=now)
    try:
        st.logo(LOGO_SVG, size="large")
        try:
            ctx.q(queries.pipelines)  # raises NoData on an empty destination
            ctx.filters = sidebar_filters(ctx)
        except (NoData, DatabaseBusy, DestinationUnavailable) as exc:
            ctx.problem = exc
            st.sidebar.caption(f"Source: {source.label}")
        navigation = st.navigation(
            [
                st.Page(lambda fn=fn: fn(ctx), title=title, icon=icon, url_path=url, default=index == 0)
                for index, (fn, title, icon, url) in enumerate(PAGES)
            ]
        )
        try:
            navigation.run()
        except (NoData, DatabaseBusy, DestinationUnavailable) as exc:
            # The sidebar's queries came from the cache but the page needed the database, and it
            # was locked or emptied in between: say so instead of a traceback.
            ctx.problem = exc
            show_problem(ctx)
        if reader.tries > 1:
            st.toast(
                f"The database was busy (a load was writing to it); it opened on try {reader.tries}.",
                icon=":material/hourglass_top:",
            )
    finally:
        reader.close()


main()
