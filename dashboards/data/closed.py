"""Closed stages: Streak has no "closed" flag, so the user names them once.

Where the names come from, first match wins:

1. the page URL: ``?closed=Won&closed=Lost`` (``?closed=`` = none), so a link or bookmark keeps
   the choice; the sidebar writes it there whenever it changes;
2. ``[dashboard] closed_stages = ["Won", "Lost", "Hired", "Rejected"]`` in ``.dlt/config.toml``
   (or the environment variable ``DASHBOARD__CLOSED_STAGES='["Won", "Lost"]'``).

Names match stage names case-insensitively, in every pipeline (a stage named "Won" is closed
wherever it appears). Nothing is closed by default: the dashboard cannot guess.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

CONFIG_KEY: Final = "dashboard.closed_stages"
QUERY_PARAM: Final = "closed"


def normalize_stage_names(names: Iterable[Any]) -> tuple[str, ...]:
    """Stage names as matched: trimmed, lower-case, without blanks and duplicates, sorted."""
    cleaned = {str(name).strip().lower() for name in names if name is not None and str(name).strip()}
    return tuple(sorted(cleaned))


def _as_list(value: Any) -> list[Any]:
    """A configured value as a list: TOML/JSON lists as they are, a string split on commas."""
    if value is None:
        return []
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            import json

            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = None
            if isinstance(parsed, list):
                return parsed
        return text.split(",")
    if isinstance(value, (list, tuple, set)):
        return list(value)
    return [value]


def configured_closed_stages() -> list[str]:
    """``[dashboard] closed_stages`` as written (display case kept), or [] when unset."""
    import dlt

    from streak_warehouse.destination import use_project_settings

    use_project_settings()  # dlt reads the project's .dlt/ wherever the dashboard runs
    names = [str(n).strip() for n in _as_list(dlt.config.get(CONFIG_KEY)) if n is not None]
    return [n for n in names if n]


def closed_from_url(values: list[str] | None) -> list[str] | None:
    """The URL's choice (``None`` when the URL says nothing; ``[]`` for ``?closed=``)."""
    if values is None or len(values) == 0:
        return None
    return [value.strip() for value in values if value is not None and value.strip()]
