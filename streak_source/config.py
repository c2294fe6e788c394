"""``[sources.streak]``: the typed configuration spec, its checks, and one-line error wording.

dlt resolves and coerces every setting from ``.dlt/config.toml``, ``.dlt/secrets.toml`` and env
(``SOURCES__STREAK__<NAME>``) into :class:`StreakSourceConfiguration`; ``on_resolved`` then checks
what types cannot say (a positive rate, an http(s) URL, page sizes in range). Any bad setting,
whether dlt's coercion refused it or our check did, can be worded by :func:`explain_config_error`
in one line::

    sources.streak.max_requests_per_second = 'abc' (env SOURCES__STREAK__MAX_REQUESTS_PER_SECOND) is not allowed: a number > 0
"""

from __future__ import annotations

from typing import Any, Dict, Final, Optional
from urllib.parse import urlsplit, urlunsplit

from dlt.common.configuration import configspec
from dlt.common.configuration.exceptions import (
    ConfigFieldMissingException,
    ConfigurationValueError,
    ConfigValueCannotBeCoercedException,
)
from dlt.common.configuration.specs import BaseConfiguration
from dlt.common.typing import TSecretStrValue

from streak_source import settings
from streak_source.refresh import DEFAULT_FULL_REFRESH_EVERY_DAYS, DEFAULT_REFRESH, REFRESH_MODES, RefreshMode

__all__ = ["StreakSourceConfiguration", "StreakConfigError", "explain_config_error", "page_sizes_from", "SECTION",
           "refresh_mode_from", "full_refresh_days_from"]

SECTION: Final = "sources.streak"

ALLOWED: Final[dict[str, str]] = {
    "api_key": "a non-empty Streak API key",
    "base_url": "an http(s) URL without user:password@ (the key belongs in sources.streak.api_key)",
    "max_requests_per_second": "a number > 0",
    "skip_empty_children": "true or false",
    "page_sizes": (f"a table of endpoint = 1..{settings.MAX_PAGE_SIZE}, endpoints: "
                   + ", ".join(vars(settings.DEFAULT_PAGE_SIZES))),
    "refresh": " or ".join(f'"{mode}"' for mode in REFRESH_MODES),
    "full_refresh_every_days": "a number of days >= 0 (0: every run is a full load)",
}
"""What each setting accepts, in the words of the error line."""


def env_name(setting: str) -> str:
    """``max_requests_per_second`` -> ``SOURCES__STREAK__MAX_REQUESTS_PER_SECOND``; ``page_sizes.boxes``
    -> ``SOURCES__STREAK__PAGE_SIZES`` (a table is one value in env: JSON such as ``{"boxes": 100}``)."""
    return "__".join(part.upper() for part in (*SECTION.split("."), setting.split(".")[0]))


def shown_value(setting: str, value: Any) -> str:
    """The value as the error line shows it: never an API key, never a URL's password."""
    if setting == "api_key":
        return "<hidden>" if value else repr(value)
    if setting == "base_url" and isinstance(value, str):
        return repr(without_userinfo(value))
    return repr(value)


def without_userinfo(url: str) -> str:
    """``https://user:pass@host/`` -> ``https://***@host/`` (for messages)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]))


class StreakConfigError(ConfigurationValueError):
    """One bad ``[sources.streak]`` setting; ``str()`` is the one-line explanation."""

    def __init__(self, setting: str, value: Any, allowed: str | None = None) -> None:
        self.setting = setting
        self.value = value
        self.allowed = allowed or ALLOWED.get(setting.split(".")[0], "a valid value")
        super().__init__(
            f"{SECTION}.{setting} = {shown_value(setting, value)} (env {env_name(setting)}) "
            f"is not allowed: {self.allowed}"
        )


@configspec
class StreakSourceConfiguration(BaseConfiguration):
    """The settings of ``streak_source`` (section ``[sources.streak]``)."""

    api_key: TSecretStrValue = None  # type: ignore[assignment]  # required: dlt raises when it is missing
    base_url: str = settings.DEFAULT_BASE_URL
    max_requests_per_second: float = settings.DEFAULT_MAX_REQUESTS_PER_SECOND
    skip_empty_children: bool = True
    page_sizes: Optional[Dict[str, int]] = None
    refresh: str = DEFAULT_REFRESH
    """``full`` or ``changed`` (docs/refresh.md). Read by the main job, which builds the run's
    ``refresh_plan``; ``--refresh`` on its command line wins."""
    full_refresh_every_days: float = DEFAULT_FULL_REFRESH_EVERY_DAYS

    def on_resolved(self) -> None:
        check_settings(self.api_key, self.base_url, self.max_requests_per_second, self.page_sizes)
        refresh_mode_from(self.refresh)
        full_refresh_days_from(self.full_refresh_every_days)


def check_settings(api_key: Any, base_url: Any, max_requests_per_second: Any, page_sizes: Any) -> None:
    """Raise :class:`StreakConfigError` for the first setting that is not allowed."""
    if not isinstance(api_key, str) or not api_key.strip():
        raise StreakConfigError("api_key", api_key)
    try:
        parsed = urlsplit(str(base_url))
        has_userinfo = "@" in parsed.netloc
    except ValueError:
        raise StreakConfigError("base_url", base_url) from None
    if not isinstance(base_url, str) or parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise StreakConfigError("base_url", base_url)
    if has_userinfo:
        raise StreakConfigError("base_url", base_url)
    rate = max_requests_per_second
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not rate > 0 or rate == float("inf"):
        raise StreakConfigError("max_requests_per_second", rate)
    page_sizes_from(page_sizes)


def refresh_mode_from(value: Any) -> RefreshMode:
    """``refresh`` (config, env or ``--refresh``) as a mode; None means the default, ``full``."""
    if value is None:
        return DEFAULT_REFRESH
    text = value.strip().lower() if isinstance(value, str) else value
    for mode in REFRESH_MODES:
        if text == mode:
            return mode
    raise StreakConfigError("refresh", value)


def full_refresh_days_from(value: Any) -> float:
    """``full_refresh_every_days`` as a number of days; None means the default (7)."""
    if value is None:
        return DEFAULT_FULL_REFRESH_EVERY_DAYS
    number = value
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise StreakConfigError("full_refresh_every_days", value) from None
    if isinstance(number, bool) or not isinstance(number, (int, float)) or not 0 <= number < float("inf"):
        raise StreakConfigError("full_refresh_every_days", value)
    return float(number)


def page_sizes_from(overrides: Any) -> settings.PageSizes:
    """``[sources.streak.page_sizes]`` (e.g. ``boxes = 100``) over the defaults."""
    if overrides is None or overrides == {}:
        return settings.DEFAULT_PAGE_SIZES
    if not isinstance(overrides, dict):
        raise StreakConfigError("page_sizes", overrides)
    known = set(vars(settings.DEFAULT_PAGE_SIZES))
    sizes: dict[str, int] = {}
    for name, value in overrides.items():
        if name not in known:
            raise StreakConfigError(f"page_sizes.{name}", value, f"one of the endpoints {', '.join(sorted(known))}")
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= settings.MAX_PAGE_SIZE:
            raise StreakConfigError(f"page_sizes.{name}", value, f"an integer 1..{settings.MAX_PAGE_SIZE}")
        sizes[name] = value
    return settings.PageSizes(**sizes)


def explain_config_error(exc: BaseException) -> str | None:
    """One line for a bad or missing ``[sources.streak]`` setting anywhere in ``exc``'s chain, else None.

    Covers our own checks (:class:`StreakConfigError`), dlt's coercion errors (``=abc`` for a number,
    which dlt words with ``<class 'float'>``) and a missing ``api_key``.
    """
    from streak_source.privacy import PrivacyConfigError

    for error in _chain(exc):
        if isinstance(error, (StreakConfigError, PrivacyConfigError)):
            return str(error)
        if isinstance(error, ConfigValueCannotBeCoercedException) and error.field_name in ALLOWED:
            return str(StreakConfigError(error.field_name, error.field_value))
        if isinstance(error, ConfigFieldMissingException) and "api_key" in error.fields:
            return (f"{SECTION}.api_key is missing: set api_key under [sources.streak] in .dlt/secrets.toml "
                    f"or env {env_name('api_key')}")
    return None


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc``, its causes and contexts, and dlt's wrapped ``.exception`` (pipeline step failures)."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        error = todo.pop(0)
        if error is None or any(error is s for s in seen) or len(seen) > 50:
            continue
        seen.append(error)
        wrapped = getattr(error, "exception", None)
        todo.extend([wrapped if isinstance(wrapped, BaseException) else None, error.__cause__, error.__context__])
    return seen
