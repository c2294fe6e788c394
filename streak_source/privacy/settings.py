"""``[privacy]`` as configured: ``preset``, ``salt`` and ``rules``, read and checked once.

Where they come from: dlt's configuration like every other section (``.dlt/config.toml``,
``.dlt/secrets.toml``, env ``PRIVACY__PRESET``, ``PRIVACY__SALT``, ``PRIVACY__RULES`` as a JSON
object). The salt is a secret: typed as one, so dlt's trace never records it, and no message ever
shows it. What is wrong (an unknown preset, a rule naming no personal-data column, an action that
is not ``hash``/``drop``/``keep``, a missing or short salt where something is hashed) is a
:class:`PrivacyConfigError`: one line naming the setting, and the run stops before it reads anything.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Dict, Final, Optional

from dlt.common.configuration import configspec, resolve_configuration
from dlt.common.configuration.exceptions import ConfigurationException, ConfigurationValueError
from dlt.common.configuration.specs import BaseConfiguration
from dlt.common.typing import TSecretStrValue

from streak_source.privacy.catalog import COLUMNS, DERIVED
from streak_source.privacy.protect import ACTIONS, Action

__all__ = ["MIN_SALT_CHARS", "PRESETS", "PrivacyConfigError", "PrivacySettings", "checked_settings",
           "configured_privacy_settings"]

SECTION: Final = "privacy"
PRESETS: Final = ("none", "contacts", "strict")
DEFAULT_PRESET: Final = "none"
MIN_SALT_CHARS: Final = 16
"""A short salt can be guessed, and with it every hashed address checked against a list."""


class PrivacyConfigError(ConfigurationValueError):
    """One bad ``[privacy]`` setting; ``str()`` is the one line (never the salt)."""


@dataclass(frozen=True)
class PrivacySettings:
    """The checked settings. ``rules``: ``table.column`` -> action, as configured."""

    preset: str = DEFAULT_PRESET
    salt: str | None = field(default=None, repr=False)
    rules: Mapping[str, Action] = field(default_factory=dict)


@configspec
class PrivacyConfiguration(BaseConfiguration):
    preset: Optional[str] = None
    salt: Optional[TSecretStrValue] = None
    rules: Optional[Dict[str, Any]] = None


def configured_privacy_settings() -> PrivacySettings:
    """``[privacy]`` from dlt's configuration (the project's ``.dlt/``, the environment), checked."""
    try:
        config = resolve_configuration(PrivacyConfiguration(), sections=(SECTION,), accept_partial=True)
    except ConfigurationException as exc:
        field_name = getattr(exc, "field_name", None)
        shown = f"[privacy] {field_name}" if field_name else "[privacy]"
        raise PrivacyConfigError(f"{shown} cannot be read ({type(exc).__name__}): preset is text, rules a table "
                                 "of \"table.column\" = \"hash\" | \"drop\" | \"keep\"") from None
    return checked_settings(config.preset, config.salt, config.rules)


def checked_settings(preset: Any = None, salt: Any = None, rules: Any = None) -> PrivacySettings:
    """The settings from raw values (None: not set); raises :class:`PrivacyConfigError`."""
    return PrivacySettings(_preset(preset), _salt(salt), _rules(rules))


def _preset(value: Any) -> str:
    if value is None:
        return DEFAULT_PRESET
    text = value.strip().lower() if isinstance(value, str) else value
    if text not in PRESETS:
        raise PrivacyConfigError(f"[privacy] preset = {value!r} (env PRIVACY__PRESET) is not allowed: "
                                 + " or ".join(f'"{p}"' for p in PRESETS))
    return str(text)


def _salt(value: Any) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        raise PrivacyConfigError("[privacy] salt (env PRIVACY__SALT) must be text")
    return value.strip()


def _rules(value: Any) -> dict[str, Action]:
    if value is None:
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise PrivacyConfigError("[privacy] rules (env PRIVACY__RULES) is not a JSON object of "
                                     "\"table.column\": \"hash\" | \"drop\" | \"keep\"") from None
    if not isinstance(value, Mapping):
        raise PrivacyConfigError('[privacy] rules must be a table of "table.column" = "hash" | "drop" | "keep"')
    rules: dict[str, Action] = {}
    for name, action in _flattened(value):
        if name in DERIVED:
            raise PrivacyConfigError(f"[privacy] rules: \"{name}\" is computed from \"{DERIVED[name]}\" and follows "
                                     "it: set the rule on that column")
        if name not in COLUMNS:
            raise PrivacyConfigError(f"[privacy] rules: \"{name}\" is not a personal-data column of the copy"
                                     + _did_you_mean(name) + " (docs/privacy.md lists them)")
        text = action.strip().lower() if isinstance(action, str) else action
        if text not in ACTIONS:
            raise PrivacyConfigError(f"[privacy] rules: \"{name}\" = {action!r} is not allowed: "
                                     + ", ".join(f'"{a}"' for a in ACTIONS))
        rules[name] = text
    return rules


def _flattened(rules: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """``{"contacts.email_addresses": "hash"}``, and the nested form TOML gives for unquoted dotted
    keys (``contacts.email_addresses = "hash"`` -> ``{"contacts": {"email_addresses": "hash"}}``)."""
    flat: list[tuple[str, Any]] = []
    for name, action in rules.items():
        if isinstance(action, Mapping):
            flat += [(f"{name}.{inner}", value) for inner, value in _flattened(action)]
        else:
            flat.append((str(name).strip(), action))
    return flat


def _did_you_mean(name: str) -> str:
    """The known column most like ``name``: the same table's first, by shared words (``emails`` ->
    ``email_addresses``), then by spelling."""
    table, _, column = name.rpartition(".")
    words = [word.rstrip("s") for word in column.lower().split("_") if word]

    def likeness(candidate: str) -> tuple[bool, int, float]:
        other_table, _, other = candidate.rpartition(".")
        shared = sum(any(part.startswith(word) for part in other.split("_")) for word in words)
        return other_table == table, shared, difflib.SequenceMatcher(None, name, candidate).ratio()

    best = max([*COLUMNS, *DERIVED], key=likeness)
    same_table, shared, ratio = likeness(best)
    return f" (did you mean \"{best}\"?)" if shared or ratio >= 0.6 else ""
