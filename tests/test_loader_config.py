"""Issue 11 #7 and issue 12 #11: every bad ``[sources.streak]`` setting is one line naming the
setting, its env var, the value and what is allowed; a base_url with credentials is refused."""

from __future__ import annotations

from typing import Any

import pytest

from streak_source import streak_source
from streak_source.config import StreakConfigError, explain_config_error

SETTINGS_ENV = ("API_KEY", "BASE_URL", "MAX_REQUESTS_PER_SECOND", "SKIP_EMPTY_CHILDREN", "PAGE_SIZES")


def failure(monkeypatch: pytest.MonkeyPatch, **env: str | None) -> BaseException:
    for name in SETTINGS_ENV:
        monkeypatch.delenv(f"SOURCES__STREAK__{name}", raising=False)
    monkeypatch.setenv("SOURCES__STREAK__API_KEY", "k")
    for name, value in env.items():
        if value is None:
            monkeypatch.delenv(f"SOURCES__STREAK__{name}", raising=False)
        else:
            monkeypatch.setenv(f"SOURCES__STREAK__{name}", value)
    with pytest.raises(Exception) as caught:
        streak_source()
    return caught.value


@pytest.mark.parametrize(("env", "line"), [
    ({"MAX_REQUESTS_PER_SECOND": "abc"},  # dlt's coercion error said `<class 'float'>`
     "sources.streak.max_requests_per_second = 'abc' (env SOURCES__STREAK__MAX_REQUESTS_PER_SECOND) "
     "is not allowed: a number > 0"),
    ({"MAX_REQUESTS_PER_SECOND": "0"},
     "sources.streak.max_requests_per_second = 0.0 (env SOURCES__STREAK__MAX_REQUESTS_PER_SECOND) "
     "is not allowed: a number > 0"),
    ({"SKIP_EMPTY_CHILDREN": "maybe"},
     "sources.streak.skip_empty_children = 'maybe' (env SOURCES__STREAK__SKIP_EMPTY_CHILDREN) "
     "is not allowed: true or false"),
    ({"BASE_URL": "ftp://example.com/"},
     "sources.streak.base_url = 'ftp://example.com/' (env SOURCES__STREAK__BASE_URL) is not allowed: "
     "an http(s) URL without user:password@ (the key belongs in sources.streak.api_key)"),
    ({"PAGE_SIZES": '{"boxes": 0}'},
     "sources.streak.page_sizes.boxes = 0 (env SOURCES__STREAK__PAGE_SIZES) is not allowed: an integer 1..1000"),
    ({"API_KEY": None},
     "sources.streak.api_key is missing: set api_key under [sources.streak] in .dlt/secrets.toml "
     "or env SOURCES__STREAK__API_KEY"),
])
def test_every_bad_setting_is_one_line(monkeypatch: pytest.MonkeyPatch, env: dict[str, Any], line: str) -> None:
    assert explain_config_error(failure(monkeypatch, **env)) == line


def test_an_unknown_page_size_names_the_known_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    line = explain_config_error(failure(monkeypatch, PAGE_SIZES='{"bogus": 5}'))
    assert line is not None and line.startswith("sources.streak.page_sizes.bogus = 5 ") and "tasks" in line


def test_a_base_url_with_credentials_is_refused_without_showing_them(monkeypatch: pytest.MonkeyPatch) -> None:
    error = failure(monkeypatch, BASE_URL="https://bob:s3cret@api.streak.com/api/")
    assert isinstance(error, StreakConfigError)
    line = explain_config_error(error)
    assert line == ("sources.streak.base_url = 'https://***@api.streak.com/api/' (env SOURCES__STREAK__BASE_URL) "
                    "is not allowed: an http(s) URL without user:password@ (the key belongs in sources.streak.api_key)")
    chain = [error, error.__cause__, error.__context__]
    assert not any("s3cret" in str(e) or "bob" in str(e) for e in chain if e is not None)


def test_explicit_arguments_are_checked_too() -> None:
    with pytest.raises(StreakConfigError, match="max_requests_per_second = -1 "):
        streak_source(api_key="k", max_requests_per_second=-1)


def test_other_errors_are_not_config_errors() -> None:
    assert explain_config_error(RuntimeError("boom")) is None
    assert explain_config_error(ValueError("sources.streak.base_url")) is None


def test_the_line_is_found_inside_a_wrapping_exception(monkeypatch: pytest.MonkeyPatch) -> None:
    inner = failure(monkeypatch, MAX_REQUESTS_PER_SECOND="abc")
    try:
        try:
            raise inner
        except Exception as exc:
            raise RuntimeError("pipeline step failed") from exc
    except RuntimeError as outer:
        assert explain_config_error(outer) == explain_config_error(inner)
