"""The dashboard's pages, in navigation order.

Adding a page: write ``app_pages/<page>.py`` (a ``render(ctx)`` function and a ``PAGE =
PageSpec(...)``) with its SQL in ``app_pages/<page>_queries.py``, then add ``<page>.PAGE`` below.
Query functions take ``(run, *args)`` and are called through ``ctx.q`` so they are cached.

(Not ``pages/``: Streamlit turns a ``pages/`` directory next to the main script into pages of its
own, bypassing ``st.navigation``.)
"""

from __future__ import annotations

from dashboards.app_pages import (
    activity,
    ageing,
    changes,
    events,
    explorer,
    funnel,
    outcomes,
    overview,
    tasks,
    velocity,
)
from dashboards.ui.context import PageSpec

PAGES: tuple[PageSpec, ...] = (
    overview.PAGE,
    funnel.PAGE,
    ageing.PAGE,
    velocity.PAGE,
    outcomes.PAGE,
    tasks.PAGE,
    activity.PAGE,
    events.PAGE,
    changes.PAGE,
    explorer.PAGE,
)
