"""What every page gets for one script run: cached queries, the filters, the page header.

Query results are cached on (query, data version, arguments); the destination is opened only when
a query misses the cache and closed at the end of the run, so a dashboard never holds the DuckDB
file a load needs.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, TypeVar

import altair as alt
import streamlit as st

from dashboards.data.connection import Runner, Source, connect
from dashboards.data.errors import DatabaseBusy, DestinationUnavailable, NoData
from dashboards.data.filters import Filters
from dashboards.ui.text import md

T = TypeVar("T")

CACHE_TTL_S: Final = 60
"""Query results live this long; a finished DuckDB load changes the cache key at once anyway."""
LOAD_COMMAND: Final = "python pipelines/streak_full.py --demo"


class Reader:
    """Opens the destination only when a query misses the cache, and closes it after the run."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.tries = 0
        self._runner: Runner | None = None

    def runner(self) -> Runner:
        if self._runner is None:
            self._runner, self.tries = connect(self.source)
        return self._runner

    def close(self) -> None:
        if self._runner is not None:
            self._runner.close()
            self._runner = None


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False, max_entries=1024)
def _cached_query(module: str, name: str, version: str, args: tuple[Any, ...], _reader: Reader) -> Any:
    """Every query result, keyed on the query, the data version and the filters in ``args``.

    The reader is not part of the key (leading underscore): on a hit nothing is opened at all.
    """
    query = getattr(importlib.import_module(module), name)
    return query(_reader.runner(), *args)


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
    closed_stage_names: tuple[str, ...] = ()
    """The closed stages as the user spelled them (``filters.closed_stage_keys`` are the stages they mean)."""

    def q(self, query: Callable[..., T], *args: Any) -> T:
        """``query(runner, *args)`` through the cache; ``query`` is a module-level function."""
        return _cached_query(query.__module__, query.__name__, self.version, args, _reader=self.reader)

    def scope_caption(self) -> str:
        """One Markdown line saying what the numbers on the page cover (names escaped)."""
        f = self.filters
        pipeline = self.pipeline_names.get(f.pipeline_key, f.pipeline_key) if f.pipeline_key else "All pipelines"
        owner = ", ".join(self.owner_names.get(o, o) for o in f.owners) if f.owners else "everyone"
        if f.created_from or f.created_to:
            start = f.created_from.isoformat() if f.created_from else "…"
            end = f.created_to.isoformat() if f.created_to else "…"
            created = f"created {start} → {end}"
        else:
            created = "any creation date"
        return f"**{md(pipeline)}** · owner: {md(owner)} · {md(created)}"

    def closed_note(self) -> str:
        """Markdown sentence naming the closed stages a page leaves out (escaped)."""
        if not self.closed_stage_names:
            return (
                "No stage is marked closed, so every box counts. Mark closed stages (Won, Lost, ...) "
                "in the sidebar or in `.dlt/config.toml` (`[outcomes] won_stages`, `lost_stages`, "
                "`[dashboard] closed_stages`)."
            )
        return "Leaves out boxes in closed stages: " + ", ".join(md(n) for n in self.closed_stage_names) + "."


@dataclass(frozen=True)
class PageSpec:
    """One page of the app: ``render(ctx)`` draws it; the shell lists these in ``app_pages.PAGES``."""

    render: Callable[[Context], None]
    title: str
    icon: str
    url_path: str


def page_header(ctx: Context, title: str, subtitle: str) -> bool:
    """Title and scope line; shows the no-data / busy message and returns False when there is none."""
    st.title(title, anchor=False)
    if ctx.problem is not None:
        show_problem(ctx)
        return False
    st.caption(f"{subtitle}  \n{ctx.scope_caption()}")
    return True


def show_problem(ctx: Context) -> None:
    """Friendly message instead of a traceback: no data yet, a load holding the file, bad config."""
    problem = ctx.problem
    if isinstance(problem, NoData):
        where = (
            f"the DuckDB file `{ctx.source.duckdb_path}` does not exist yet"
            if problem.reason == "missing"
            else f"{md(ctx.source.label)} has no Streak tables yet"
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
            f"**Could not read {md(ctx.source.label)}.** {md(problem)}\n\n"
            "Check `[destination.warehouse]` in `.dlt/config.toml` / `.dlt/secrets.toml` "
            "(or the `DESTINATION__WAREHOUSE__*` environment variables).",
            icon=":material/error:",
        )
    else:  # pragma: no cover - kept for unexpected errors, shown as one line
        st.error(f"Could not read the data: {md(type(problem).__name__)}: {md(problem)}")


def empty_state(message: str) -> None:
    """A calm note where a chart would be (``message`` is Markdown: escape names with ``md``)."""
    st.info(message, icon=":material/info:")


def chart(spec: alt.Chart | alt.LayerChart) -> None:
    st.altair_chart(spec, width="stretch")
