"""The sidebar every page shares: pipeline, owner and date filters, closed stages, the source.

Rendered on every page (from the shell) so widget state persists across pages.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Final

import pandas as pd
import streamlit as st

from dashboards.data import closed, freshness, lookups
from dashboards.data.filters import UNASSIGNED, UNASSIGNED_LABEL, Filters
from dashboards.ui.context import Context
from dashboards.ui.format import ago, fmt_int
from dashboards.ui.stage_picker import stage_names_picker
from dashboards.ui.text import md

K_PIPELINE: Final = "filter_pipeline"
K_OWNERS: Final = "filter_owners"
K_CREATED: Final = "filter_created"
K_CLOSED: Final = "filter_closed_stages"
ALL_PIPELINES: Final = "__all__"
ACCOUNT_CLOSED_NOTE: Final = (
    "Closed as the account itself says: the demo account comes with its won, lost and closed stages. "
    "`[outcomes] won_stages` / `lost_stages` or `[dashboard] closed_stages` in `.dlt/config.toml` would "
    "take their place."
)


def reset_filters() -> None:
    """Back to every box; the closed stages stay (they describe the account, not a view of it)."""
    for key in (K_PIPELINE, K_OWNERS, K_CREATED):
        st.session_state.pop(key, None)


def sidebar_filters(ctx: Context) -> Filters:
    """Draws the sidebar and returns the :class:`Filters` it describes."""
    pipelines: pd.DataFrame = ctx.q(lookups.pipelines)
    owners: pd.DataFrame = ctx.q(lookups.owners)
    first, last = ctx.q(lookups.creation_bounds)
    ctx.pipeline_names = {str(k): str(n) for k, n in zip(pipelines["pipeline_key"], pipelines["pipeline_name"])}
    ctx.owner_names = {
        (UNASSIGNED if pd.isna(email) else email): (
            UNASSIGNED_LABEL if pd.isna(email) else (name if isinstance(name, str) and name else email)
        )
        for email, name in zip(owners["owner_email"], owners["owner_name"])
    }
    boxes_by_pipeline = dict(zip(pipelines["pipeline_key"], pipelines["boxes"]))
    boxes_by_owner = {(UNASSIGNED if pd.isna(e) else e): n for e, n in zip(owners["owner_email"], owners["boxes"])}

    with st.sidebar:
        st.header("Filters", anchor=False)
        # Options are plain text in Streamlit (only labels are Markdown): names go in unescaped.
        pipeline_options = [ALL_PIPELINES, *ctx.pipeline_names]
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
            upper = max(last, ctx.now.date())
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
        closed_names = closed_stages_picker(ctx)
        loaded = ctx.q(freshness.last_load)
        when = loaded.finished_at
        st.caption(
            f"Source: {md(ctx.source.label)}  \nLast load: {ago(when, ctx.now)}"
            + (f" ({when:%Y-%m-%d %H:%M} UTC)" if when else "")
        )
    ctx.closed_stage_names = tuple(closed_names)
    return Filters(
        pipeline_key=None if pipeline == ALL_PIPELINES else str(pipeline),
        owners=tuple(chosen_owners),
        created_from=created_from,
        created_to=created_to,
        closed_stage_keys=closed.closed_keys(closed_names, ctx.q(lookups.stage_refs)),
    )


def closed_stages_picker(ctx: Context) -> list[str]:
    """Which stage names count as closed: URL, else the configuration's won, lost and closed stages,
    else the account's own (the demo's); kept in the URL when it differs from that default."""
    default = closed.default_closed_stages(ctx.q(lookups.account_defaults))
    picked, is_default = stage_names_picker(
        "Closed stages", K_CLOSED, closed.QUERY_PARAM, default.names, ctx.q(lookups.stage_names),
        placeholder="None marked closed",
        help=(
            "Streak has no 'closed' flag: name the stages where work is over (Won, Lost, Hired, ...; "
            "Pipeline/Stage for one pipeline's stage). Ageing and the funnel's open count leave them out. "
            "Remembered in the page URL; set a default with `[outcomes] won_stages` / `lost_stages` and "
            "`[dashboard] closed_stages` in `.dlt/config.toml`."
        ),
    )
    if is_default and default.origin == "account":
        st.caption(ACCOUNT_CLOSED_NOTE)
    if default.problem:
        st.caption(f"Configuration ignored: {md(default.problem)}")
    return picked


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
