"""Personal data under the user's control (``[privacy]``; docs/privacy.md): hashed or dropped in
the raw Streak objects as soon as they are read, before anything reaches disk.

Public API (stable; the ``forget`` command and rule changes build on it):

* :func:`configured_policy` / :func:`policy_from` -> :class:`PrivacyPolicy`: ``protect_items``,
  ``protect``, ``protect_webhook_object``, ``protect_custom_event``, ``hash``, ``treatment``,
  ``protected``, ``fingerprint``, ``summary_line``, ``active``, ``preset``, ``settings``;
  :data:`NO_PRIVACY`.
* The catalog: :data:`CATALOG` (every personal-data :class:`Column`), :data:`COLUMNS` by
  ``table.column``, :data:`DERIVED` (columns that follow another), :func:`kind_of_name`,
  :func:`field_kinds`, :func:`source_of_endpoint`, :func:`source_of_webhook`.
* Hashing: :func:`hash_value`, :func:`normalized`, :func:`is_hashed`, :func:`looks_like_email`,
  :data:`HASH_PREFIX`.
* Settings: :class:`PrivacySettings`, :func:`checked_settings`, :func:`configured_privacy_settings`,
  :class:`PrivacyConfigError`, :data:`PRESETS`, :data:`MIN_SALT_CHARS`.
"""

from __future__ import annotations

from streak_source.privacy.catalog import (
    CATALOG, COLUMNS, DERIVED, Column, kind_of_name, source_of_endpoint, source_of_webhook,
)
from streak_source.privacy.hashing import HASH_PREFIX, KINDS, Kind, hash_value, is_hashed, looks_like_email, normalized
from streak_source.privacy.policy import NO_PRIVACY, PRESET_ACTIONS, PrivacyPolicy, field_kinds, policy_from
from streak_source.privacy.protect import ACTIONS, Action, Treatment
from streak_source.privacy.settings import (
    MIN_SALT_CHARS, PRESETS, PrivacyConfigError, PrivacySettings, checked_settings, configured_privacy_settings,
)

__all__ = [
    "ACTIONS", "CATALOG", "COLUMNS", "DERIVED", "HASH_PREFIX", "KINDS", "MIN_SALT_CHARS", "NO_PRIVACY",
    "PRESETS", "PRESET_ACTIONS", "Action", "Column", "Kind", "PrivacyConfigError", "PrivacyPolicy",
    "PrivacySettings", "Treatment", "checked_settings", "configured_policy", "configured_privacy_settings",
    "field_kinds", "hash_value", "is_hashed", "kind_of_name", "looks_like_email", "normalized", "policy_from",
    "source_of_endpoint", "source_of_webhook",
]


def configured_policy() -> PrivacyPolicy:
    """The policy of ``[privacy]`` in dlt's configuration; raises :class:`PrivacyConfigError`."""
    return PrivacyPolicy(configured_privacy_settings())
