"""The receiver's settings, section ``[events]`` (``.dlt/secrets.toml``, env ``EVENTS__...``), via dlt.

``api_key`` (``EVENTS__API_KEY``) guards ``POST /events/ingestion/v1`` (header ``X-API-Key``);
``webhook_token`` (``EVENTS__WEBHOOK_TOKEN``) is the token given to Streak when a webhook is
registered and checked on every delivery (header ``X-Streak-Webhook-Token``). Both are required:
the receiver refuses to start without them. Neither is ever printed: errors name the setting only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from dlt.common.configuration import configspec, resolve_configuration
from dlt.common.configuration.exceptions import ConfigurationException
from dlt.common.configuration.specs import BaseConfiguration
from dlt.common.typing import TSecretStrValue

PROJECT_ROOT: Final = Path(__file__).resolve().parent.parent
DEFAULT_SPOOL: Final = PROJECT_ROOT / "events_spool.sqlite"
DEFAULT_MAX_BODY_BYTES: Final = 1_048_576
"""1 MiB: the documented body limit of both POST endpoints (413 beyond)."""


class EventsConfigError(ValueError):
    """One line naming a missing or bad ``[events]`` setting (never its value)."""


@configspec
class EventsConfiguration(BaseConfiguration):
    api_key: TSecretStrValue = None  # type: ignore[assignment]
    webhook_token: TSecretStrValue = None  # type: ignore[assignment]
    spool_path: str = str(DEFAULT_SPOOL)
    spool_synchronous: str = "FULL"
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES


def _require(name: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise EventsConfigError(
            f"events.{name} is not set: put it in .dlt/secrets.toml under [events] "
            f"or set EVENTS__{name.upper()}"
        )
    return value.strip()


def load_events_config(need_keys: bool = True) -> EventsConfiguration:
    """Resolve ``[events]``; with ``need_keys`` both secrets must be set. Raises EventsConfigError."""
    try:
        config = resolve_configuration(EventsConfiguration(), sections=("events",), accept_partial=True)
    except ConfigurationException as exc:
        raise EventsConfigError(f"events: bad setting ({type(exc).__name__})") from None
    if need_keys:
        config.api_key = _require("api_key", config.api_key)  # type: ignore[assignment]
        config.webhook_token = _require("webhook_token", config.webhook_token)  # type: ignore[assignment]
    if str(config.spool_synchronous).upper() not in ("FULL", "NORMAL"):
        raise EventsConfigError("events.spool_synchronous must be FULL or NORMAL")
    config.spool_synchronous = str(config.spool_synchronous).upper()
    if isinstance(config.max_body_bytes, bool) or not isinstance(config.max_body_bytes, int) or config.max_body_bytes < 1024:
        raise EventsConfigError("events.max_body_bytes must be an integer >= 1024")
    return config


__all__ = ["DEFAULT_MAX_BODY_BYTES", "DEFAULT_SPOOL", "EventsConfigError", "EventsConfiguration", "load_events_config"]
