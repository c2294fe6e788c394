"""A multiselect of stage names kept in the page URL: the sidebar's closed stages, the Outcomes page's
won and lost stages, one behaviour for all.

The choice comes from the URL (``?won=Won&won=Hired``; ``?won=`` = none) when it says something, else
from the default (the configuration, else the account's own: ``data/closed.py``). The account's
spelling is shown once per stage whatever case the URL used. The URL holds the choice only while it
differs from the default, so a link or bookmark keeps it and a plain URL means "as configured".
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import streamlit as st

from dashboards.data import closed


def stage_names_picker(
    label: str, key: str, param: str, default: Sequence[str], known: Sequence[str], *, placeholder: str, help: str,
) -> tuple[list[str], bool]:
    """Draw the picker (in the current container); returns the names picked and whether they are
    the default."""
    if key not in st.session_state:
        from_url = closed.closed_from_url(st.query_params.get_all(param))
        st.session_state[key] = dedupe(from_url if from_url is not None else default)
    chosen: list[str] = list(st.session_state[key])
    lower_known = {n.lower() for n in known}
    options = [*known, *(n for n in chosen if n.lower() not in lower_known)]
    by_lower = {n.lower(): n for n in options}  # the account's spelling: one entry per stage
    st.session_state[key] = dedupe(by_lower.get(n.lower(), n) for n in chosen)
    picked = st.multiselect(label, options, key=key, placeholder=placeholder, help=help)
    is_default = closed.normalize_stage_names(picked) == closed.normalize_stage_names(default)
    if not is_default:
        st.query_params[param] = list(picked) if picked else ""
    elif param in st.query_params:
        del st.query_params[param]
    return list(picked), is_default


def dedupe(names: Iterable[object]) -> list[str]:
    """Names once each (case-insensitive), first spelling kept."""
    seen: dict[str, str] = {}
    for name in names:
        seen.setdefault(str(name).lower(), str(name))
    return list(seen.values())
