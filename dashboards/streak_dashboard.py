"""Streak CRM dashboard: funnels, ageing, task load and activity over the pipeline's dataset.

    streamlit run dashboards/streak_dashboard.py

The shell: page config, the sidebar filters every page shares, and navigation over
``dashboards.app_pages.PAGES``. Pages live in ``app_pages/`` (one module and one query module
each), the data layer in ``data/``, shared presentation helpers in ``ui/``. Reads whatever
destination ``pipelines/streak_full.py`` wrote, resolved by ``streak_warehouse.destination``: the
DuckDB file by default (opened read-only, briefly, once per page view), any other dlt destination
through ``dlt.dataset``.
"""

from __future__ import annotations

from typing import Final

import streamlit as st

import streak_clock
from dashboards.app_pages import PAGES
from dashboards.data import lookups
from dashboards.data.connection import resolve_source
from dashboards.data.errors import READ_PROBLEMS
from dashboards.ui.context import Context, PageSpec, Reader, show_problem
from dashboards.ui.sidebar import sidebar_filters
from dashboards.ui.text import md

APP_TITLE: Final = "Streak CRM"
# The sidebar's wordmark: inline SVG, so the app needs no image files.
LOGO_SVG: Final = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="210" height="40" viewBox="0 0 210 40">'
    '<rect x="1" y="6" width="36" height="28" rx="7" fill="#4263eb"/>'
    '<path d="M8 14 L19 22 L30 14" stroke="#fff" stroke-width="3" fill="none" '
    'stroke-linecap="round" stroke-linejoin="round"/>'
    '<text x="47" y="28" font-family="Source Sans Pro, Helvetica, Arial, sans-serif" '
    'font-size="22" font-weight="700" fill="#1f2933">Streak CRM</text></svg>'
)


def _page(spec: PageSpec, ctx: Context, default: bool) -> st.Page:
    return st.Page(lambda: spec.render(ctx), title=spec.title, icon=spec.icon, url_path=spec.url_path, default=default)


def main() -> None:
    st.set_page_config(page_title=APP_TITLE, page_icon=":material/mail:", layout="wide")
    now = streak_clock.now().replace(second=0, microsecond=0)  # a stable cache key per minute
    try:
        source = resolve_source()
    except Exception as exc:
        st.title(APP_TITLE, anchor=False)
        st.error(f"Could not read the destination configuration: {md(type(exc).__name__)}: {md(exc)}")
        return
    reader = Reader(source)
    ctx = Context(source=source, reader=reader, version=source.version(), now=now)
    try:
        st.logo(LOGO_SVG, size="large")
        try:
            ctx.q(lookups.pipelines)  # raises NoData on an empty destination
            ctx.filters = sidebar_filters(ctx)
        except READ_PROBLEMS as exc:
            ctx.problem = exc
            st.sidebar.caption(f"Source: {md(source.label)}")
        navigation = st.navigation([_page(spec, ctx, index == 0) for index, spec in enumerate(PAGES)])
        try:
            navigation.run()
        except READ_PROBLEMS as exc:
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
