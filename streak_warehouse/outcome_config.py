"""``[outcomes]`` and ``[dashboard] closed_stages`` as read from configuration (docs/metrics.md,
"Configuration"), checked once, for the main job and the dashboard alike.

Where a setting comes from: the user's configuration (``.dlt/config.toml``, environment variables
such as ``OUTCOMES__WON_STAGES``), else the settings the account comes with (``account_defaults``:
the demo's). The stage settings (won, lost and closed stages, probabilities) go together: when the
configuration sets any of them, the account's are not used at all, so a user's lists are never mixed
with the demo's.

What is wrong on its face (a list that is not a list, a stage both won and lost, a probability
outside 0..1, a sample size below 1) is an :class:`OutcomesConfigError`: the run stops before it
reads anything, with one line naming the setting (exit 3). What depends on the account (a stage or
field name it does not have) is only known after loading: a warning, the run goes on
(``outcome_views.py``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from streak_warehouse.destination import WarehouseConfigError, use_project_settings
from streak_warehouse.outcome_rules import StageListError, StageSettings, shared_entries, stage_list

WON_STAGES: Final = "outcomes.won_stages"
LOST_STAGES: Final = "outcomes.lost_stages"
CLOSED_STAGES: Final = "dashboard.closed_stages"
PROBABILITY: Final = "outcomes.probability"
VALUE_FIELD: Final = "outcomes.value_field"
MIN_SAMPLE: Final = "outcomes.min_sample"
STAGE_SETTINGS: Final = (WON_STAGES, LOST_STAGES, CLOSED_STAGES, PROBABILITY)
"""Taken together from one place: the configuration, else the account."""

DEFAULT_MIN_SAMPLE: Final = 20
"""Closed boxes a stage needs before its own history sets its probability (``[outcomes] min_sample``)."""

Origin = Literal["config", "account", "none"]


class OutcomesConfigError(WarehouseConfigError):
    """An ``[outcomes]`` / ``[dashboard]`` setting that cannot work; ``str()`` is the one line."""

    def __init__(self, setting: str, problem: str) -> None:
        self.setting = setting
        super().__init__(f"{_shown(setting)} (env {env_name(setting)}): {problem}")


def env_name(setting: str) -> str:
    return setting.upper().replace(".", "__")


def _shown(setting: str) -> str:
    section, _, name = setting.rpartition(".")
    return f"[{section}] {name}"


@dataclass(frozen=True)
class OutcomeSettings:
    """The checked settings, and where the stage settings came from."""

    stages: StageSettings = field(default_factory=StageSettings)
    value_field: str | Mapping[str, str] | None = None
    min_sample: int = DEFAULT_MIN_SAMPLE
    stages_from: Origin = "none"


Lookup = Callable[[str], Any]
"""``setting -> value`` (None: not set)."""


def read_stage_settings(configured: Lookup, account_defaults: Mapping[str, Any] | None = None) -> tuple[StageSettings, Origin]:
    """The checked stage settings (won, lost, closed, probabilities) and where they came from: the
    configuration when it sets any of them, else ``account_defaults``."""
    account = dict(account_defaults or {})
    from_config = any(configured(key) is not None for key in STAGE_SETTINGS)
    from_account = not from_config and any(account.get(key) is not None for key in STAGE_SETTINGS)
    value: Lookup = configured if from_config else (account.get if from_account else (lambda _: None))
    won, lost, closed = (_names(value(key), key) for key in (WON_STAGES, LOST_STAGES, CLOSED_STAGES))
    both = shared_entries(won, lost)
    if both:
        raise OutcomesConfigError(WON_STAGES, f"{both[0]!r} is also in {_shown(LOST_STAGES)}: a stage cannot be both "
                                              "won and lost (name it as Pipeline/Stage where it differs by pipeline)")
    origin: Origin = "config" if from_config else ("account" if from_account else "none")
    return StageSettings(tuple(won), tuple(lost), tuple(closed), _probabilities(value(PROBABILITY))), origin


def read_settings(configured: Lookup, account_defaults: Mapping[str, Any] | None = None) -> OutcomeSettings:
    """The checked settings from ``configured`` (the configuration), else ``account_defaults``;
    raises :class:`OutcomesConfigError` on the first setting that cannot work."""
    account = dict(account_defaults or {})
    stages, origin = read_stage_settings(configured, account)
    value_field = _value_field(_either(configured, account, VALUE_FIELD))
    min_sample = _min_sample(_either(configured, account, MIN_SAMPLE))
    return OutcomeSettings(stages, value_field, min_sample, origin)


def configured_settings(account_defaults: Mapping[str, Any] | None = None) -> OutcomeSettings:
    """:func:`read_settings` from dlt's configuration (the project's ``.dlt/``, the environment)."""
    import dlt

    use_project_settings()
    return read_settings(dlt.config.get, account_defaults)


def _either(configured: Lookup, account: Mapping[str, Any], key: str) -> Any:
    value = configured(key)
    return value if value is not None else account.get(key)


def _names(value: Any, setting: str) -> list[str]:
    try:
        return stage_list(value, setting)
    except StageListError:
        raise OutcomesConfigError(setting, f"must be a list of stage names, e.g. [\"Won\"]; got {value!r}") from None


def _table(value: Any, setting: str, example: str) -> Mapping[str, Any] | None:
    """A TOML table, or a JSON object given as text (an environment variable)."""
    if value is None:
        return None
    if isinstance(value, str) and value.strip().startswith("{"):
        try:
            value = json.loads(value)
        except ValueError:
            raise OutcomesConfigError(setting, f"is not a JSON object: {value!r}") from None
    if not isinstance(value, Mapping):
        raise OutcomesConfigError(setting, f"must be a table, e.g. {example}; got {value!r}")
    return value


def _probabilities(value: Any) -> Mapping[str, float] | None:
    table = _table(value, PROBABILITY, '{ Qualified = 0.3, "Sales/Negotiation" = 0.6 }')
    if table is None:
        return None
    checked: dict[str, float] = {}
    for stage, number in table.items():
        if isinstance(number, bool) or not isinstance(number, (int, float)) or math.isnan(number) or not 0 <= number <= 1:
            raise OutcomesConfigError(PROBABILITY, f"{stage!r} = {number!r}: a probability is a number from 0 to 1")
        clash = [earlier for earlier in checked if shared_entries([str(stage)], [earlier])
                 and checked[earlier] != float(number)]
        if clash:
            raise OutcomesConfigError(PROBABILITY, f"{clash[0]!r} and {stage!r} name the same stage with different numbers")
        checked[str(stage)] = float(number)
    return checked


def _value_field(value: Any) -> str | Mapping[str, str] | None:
    if value is None:
        return None
    if isinstance(value, str) and not value.strip().startswith("{"):
        return value.strip()
    table = _table(value, VALUE_FIELD, '"Deal size", or { Sales = "Deal size" }')
    assert table is not None
    for pipeline, name in table.items():
        if not isinstance(name, str):
            raise OutcomesConfigError(VALUE_FIELD, f"{pipeline!r} = {name!r}: a field is named by text")
    return {str(k): str(v).strip() for k, v in table.items()}


def _min_sample(value: Any) -> int:
    if value is None:
        return DEFAULT_MIN_SAMPLE
    number = value
    if isinstance(value, str):
        try:
            number = int(value.strip())
        except ValueError:
            number = value
    if isinstance(number, bool) or not isinstance(number, int) or number < 1:
        raise OutcomesConfigError(MIN_SAMPLE, f"must be a whole number of boxes, at least 1; got {value!r}")
    return number
