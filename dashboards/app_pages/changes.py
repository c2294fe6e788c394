"""Changes: what happened between two loads, from the history of every record (history mode).

Two loads are picked (default: the last two); each list compares the copies they produced
(``changes_queries``: the rules). Every row opens its box in the Box explorer (``explorer.box_link``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Final

import pandas as pd
import streamlit as st

from dashboards.app_pages import changes_queries
from dashboards.app_pages.explorer import OPEN_COLUMN, box_link, open_column, who
from dashboards.data import history
from dashboards.ui.context import Context, PageSpec, empty_state, page_header
from dashboards.ui.format import blank_missing_text, field_value, fmt_int, fmt_moment, load_labels

FROM_KEY: Final = "changes_from"
TO_KEY: Final = "changes_to"


def _field_rows(frame: pd.DataFrame) -> pd.DataFrame:
    values = {side: [field_value(*(row[f"{side}_{c}"] for c in changes_queries.VALUE_COLUMNS))
                     for _, row in frame.iterrows()] for side in ("old", "new")}
    return frame.assign(before=values["old"], after=values["new"])


STATUS: Final = {"DONE": "Done", "NOT_DONE": "Not done"}
Shape = Callable[[pd.DataFrame], pd.DataFrame]
SECTIONS: Final[tuple[tuple[str, str, str, dict[str, str], Shape], ...]] = (
    ("created", "Boxes created", "In the later copy, not in the earlier one.",
     {"stage_name": "Stage", "owner_name": "Owner", "created": "Created"},
     lambda f: f.assign(owner_name=f["owner_name"].map(who))),
    ("deleted", "Boxes deleted", "In the earlier copy, gone from the later one: as they were when last seen.",
     {"stage_name": "Stage", "owner_name": "Owner", "deleted_at": "Found gone"},
     lambda f: f.assign(owner_name=f["owner_name"].map(who))),
    ("moved", "Boxes moved", "In another stage in the later copy (several moves in between are one).",
     {"from_stage": "From", "to_stage": "To"}, lambda f: f),
    ("owners", "Owner or assignees changed", "The box's assignees (the first is its owner), before and after.",
     {"from_assignees": "Before", "to_assignees": "After"},
     lambda f: f.assign(from_assignees=f["from_assignees"].map(who), to_assignees=f["to_assignees"].map(who))),
    ("fields", "Field values changed", "Values set, changed or cleared on boxes in both copies.",
     {"field_name": "Field", "before": "Before", "after": "After"}, _field_rows),
    ("tasks_added", "Tasks added", "Tasks in the later copy, not in the earlier one.",
     {"task": "Task", "status": "Status", "assignees": "Assigned to", "due_date": "Due"},
     lambda f: f.assign(status=f["status"].map(lambda s: STATUS.get(s, s)))),
    ("tasks_completed", "Tasks completed", "Done in the later copy, not done (or not there) in the earlier one.",
     {"task": "Task", "assignees": "Assigned to", "completed_at": "Completed"}, lambda f: f),
)
"""(query name, title, what it lists, column -> header, how rows are shaped for reading), in page order."""
CARDS: Final = {"created": "Created", "deleted": "Deleted", "moved": "Moved", "owners": "Reassigned",
                "fields": "Field values", "tasks_added": "Tasks added", "tasks_completed": "Tasks completed"}


def table(name: str, frame: pd.DataFrame, many_pipelines: bool) -> pd.DataFrame:
    """One list as the page shows it: the link that opens the box, the box, then the list's columns."""
    _, _, _, headers, shape = next(section for section in SECTIONS if section[0] == name)
    shaped = shape(frame)
    columns = {"box_name": "Box", **({"pipeline_name": "Pipeline"} if many_pipelines else {}), **headers}
    shown = shaped[list(columns)].rename(columns=columns)
    for column in shown.columns:
        if pd.api.types.is_datetime64_any_dtype(shown[column]):
            shown[column] = shown[column].map(fmt_moment)  # UTC, a due date without its midnight
    shown.insert(0, OPEN_COLUMN, [box_link(key) for key in shaped["box_key"]])
    return blank_missing_text(shown)


def render(ctx: Context) -> None:
    if not page_header(ctx, "Changes", "What happened between two loads, from the history of every record."):
        return
    loads: pd.DataFrame | None = ctx.q(history.history_loads)
    if loads is None:
        empty_state(history.NO_HISTORY)
        return
    if len(loads) < 2:
        st.columns(4)[0].metric("Loads in the history", fmt_int(len(loads)), border=True)
        empty_state("Changes need two loads to compare, and the history holds "
                    f"{'one' if len(loads) == 1 else 'none'} so far: the next load gives the first changes.")
        return
    labels = dict(zip(loads["run_id"], load_labels(loads["finished_at"])))
    newest_first = list(reversed(loads["run_id"].tolist()))
    for key in (FROM_KEY, TO_KEY):
        if st.session_state.get(key) not in labels:  # a load no longer offered
            st.session_state.pop(key, None)
    picked = st.columns(2)
    first = picked[0].selectbox("From load", newest_first, index=1, key=FROM_KEY, format_func=labels.__getitem__)
    second = picked[1].selectbox("To load", newest_first, index=0, key=TO_KEY, format_func=labels.__getitem__,
                                 help="Times are the ends of the loads (UTC): the copy each one produced.")
    if first == second:
        empty_state("Pick two different loads: the changes are those between the copies they produced.")
        return
    order = {run_id: index for index, run_id in enumerate(loads["run_id"])}
    earlier, later = sorted((first, second), key=order.__getitem__)
    found = {query.__name__: ctx.q(query, ctx.filters, earlier, later) for query in changes_queries.LISTS}
    rows = [st.columns(4), st.columns(4)]
    for index, (name, label) in enumerate(CARDS.items()):
        rows[index // 4][index % 4].metric(label, fmt_int(len(found[name])), border=True)
    ended = dict(zip(loads["run_id"], loads["finished_at"]))
    st.caption(f"From the copy of the load that ended {_when(ended[earlier])} to the copy of the one that ended "
               f"{_when(ended[later])}. Each row opens its box in the Box explorer.")
    if not any(len(frame) for frame in found.values()):
        empty_state("No changes between these two loads for the boxes these filters keep.")
        return
    many = ctx.filters.pipeline_key is None
    for name, title, meaning, _, _ in SECTIONS:
        frame = found[name]
        st.subheader(f"{title} · {fmt_int(len(frame))}", anchor=False)
        st.caption(meaning)
        if frame.empty:
            continue
        shown = table(name, frame, many)
        st.dataframe(shown, hide_index=True, column_config={OPEN_COLUMN: open_column()},
                     height=min(400, 38 + 35 * len(shown)))


def _when(moment: datetime) -> str:
    return f"{pd.Timestamp(moment):%Y-%m-%d %H:%M} UTC"


PAGE = PageSpec(render, "Changes", ":material/difference:", "changes")
