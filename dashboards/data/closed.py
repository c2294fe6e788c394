"""Closed stages: Streak has no "closed" flag, so the user names them once.

Closed = won + lost + closed stages. Where the names come from, first match wins:

1. the page URL: ``?closed=Won&closed=Lost`` (``?closed=`` = none), so a link or bookmark keeps
   the choice; the sidebar writes it there whenever it changes;
2. the configuration (``.dlt/config.toml`` or the environment): ``[dashboard] closed_stages`` with
   ``[outcomes] won_stages`` and ``lost_stages`` (any of them set: these, together);
3. the settings the copy's account comes with (``lookups.account_defaults``): the demo account,
   which is ours, comes with its Won, Lost, Hired and Rejected stages.

Which stages a name means is the warehouse's one rule (``streak_warehouse/outcome_rules.py``): a
stage name, case-insensitive, in every pipeline, or ``Pipeline/Stage`` for one pipeline's stage. The
names become ``(pipeline_key, stage_key)`` pairs (:func:`closed_keys`), which is what every page
filters on. A user's own account has nothing closed until the user says so: the dashboard cannot guess.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from streak_warehouse.outcome_config import CLOSED_STAGES, OutcomesConfigError, read_stage_settings
from streak_warehouse.outcome_rules import StageRef, StageSettings, closed_stage_keys, normalize_stage_names

__all__ = ["CONFIG_KEY", "QUERY_PARAM", "ClosedDefault", "closed_from_url", "closed_keys", "default_closed_stages",
           "normalize_stage_names"]

CONFIG_KEY: Final = CLOSED_STAGES
QUERY_PARAM: Final = "closed"


@dataclass(frozen=True)
class ClosedDefault:
    """The closed stages when the URL says nothing, where they come from, and what was wrong with
    the configuration when it could not be read (then nothing is closed by default)."""

    names: tuple[str, ...]
    origin: Literal["config", "account", "none"]
    problem: str | None = None


@dataclass(frozen=True)
class StageDefaults:
    """The stage settings (won, lost, closed, probabilities) without a URL choice, where they come
    from, and what was wrong with the configuration when it could not be read (then: none)."""

    settings: StageSettings
    origin: Literal["config", "account", "none"]
    problem: str | None = None


def default_stage_settings(account_defaults: Mapping[str, Any]) -> StageDefaults:
    """The configuration's stage settings, else the account's own (``outcome_config``'s one rule)."""
    import dlt

    from streak_warehouse.destination import use_project_settings

    use_project_settings()  # dlt reads the project's .dlt/ wherever the dashboard runs
    try:
        stages, origin = read_stage_settings(dlt.config.get, account_defaults)
    except OutcomesConfigError as exc:
        return StageDefaults(StageSettings(), "none", str(exc))
    return StageDefaults(stages, origin)


def default_closed_stages(account_defaults: Mapping[str, Any]) -> ClosedDefault:
    """The closed stages without a URL choice: the configuration's, else the account's own."""
    defaults = default_stage_settings(account_defaults)
    names: dict[str, str] = {}
    for name in defaults.settings.closed_entries():
        names.setdefault(name.lower(), name)
    return ClosedDefault(tuple(names.values()), defaults.origin, defaults.problem)


def closed_from_url(values: list[str] | None) -> list[str] | None:
    """The URL's choice (``None`` when the URL says nothing; ``[]`` for ``?closed=``)."""
    if values is None or len(values) == 0:
        return None
    return [value.strip() for value in values if value is not None and value.strip()]


def closed_keys(names: Iterable[str], stages: Iterable[StageRef]) -> tuple[tuple[str, str], ...]:
    """``(pipeline_key, stage_key)`` of the stages ``names`` close, by the warehouse's rule."""
    return closed_stage_keys(names, stages)
