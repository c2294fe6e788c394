"""Closed stages: Streak has no "closed" flag, so the user names them once.

Where the names come from, first match wins:

1. the page URL: ``?closed=Won&closed=Lost`` (``?closed=`` = none), so a link or bookmark keeps
   the choice; the sidebar writes it there whenever it changes;
2. ``[dashboard] closed_stages = ["Won", "Lost", "Hired", "Rejected"]`` in ``.dlt/config.toml``
   (or the environment variable ``DASHBOARD__CLOSED_STAGES='["Won", "Lost"]'``);
3. the settings the copy's account comes with (``lookups.account_defaults``): the demo account,
   which is ours, comes with its Won, Lost, Hired and Rejected stages closed.

Names match stage names case-insensitively, in every pipeline (a stage named "Won" is closed
wherever it appears). A user's own account has nothing closed until the user says so: the
dashboard cannot guess.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

CONFIG_KEY: Final = "dashboard.closed_stages"
QUERY_PARAM: Final = "closed"


@dataclass(frozen=True)
class ClosedDefault:
    """The closed stages when the URL says nothing, and where they come from."""

    names: tuple[str, ...]
    origin: Literal["config", "account", "none"]


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


def configured_closed_stages() -> list[str] | None:
    """``[dashboard] closed_stages`` as written (display case kept); None when unset (``[]`` is set:
    nothing closed)."""
    import dlt

    from streak_warehouse.destination import use_project_settings

    use_project_settings()  # dlt reads the project's .dlt/ wherever the dashboard runs
    value = dlt.config.get(CONFIG_KEY)
    if value is None:
        return None
    names = [str(n).strip() for n in _as_list(value) if n is not None]
    return [n for n in names if n]


def default_closed_stages(account_defaults: Mapping[str, Any]) -> ClosedDefault:
    """The closed stages without a URL choice: the configuration's, else the account's own."""
    configured = configured_closed_stages()
    if configured is not None:
        return ClosedDefault(tuple(configured), "config")
    from_account = [str(n).strip() for n in _as_list(account_defaults.get(CONFIG_KEY)) if n is not None]
    from_account = [n for n in from_account if n]
    return ClosedDefault(tuple(from_account), "account" if from_account else "none")


def closed_from_url(values: list[str] | None) -> list[str] | None:
    """The URL's choice (``None`` when the URL says nothing; ``[]`` for ``?closed=``)."""
    if values is None or len(values) == 0:
        return None
    return [value.strip() for value in values if value is not None and value.strip()]
