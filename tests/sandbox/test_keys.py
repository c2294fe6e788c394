"""Entity keys: Streak's prefix and alphabet, real datastore structure, exact well-formedness."""

from __future__ import annotations

import random

import pytest

from streak_source.sandbox.keys import (
    KEY_PREFIX,
    KeyFactory,
    datastore_key,
    is_well_formed_key,
    parse_datastore_key,
    team_entity_key,
)

pytestmark = pytest.mark.timeout(30)


def test_datastore_keys_round_trip_with_streaks_prefix() -> None:
    path = (("Organization", "acme.example"), ("Case", 5629499534213120))
    key = datastore_key(*path)
    assert key.startswith(KEY_PREFIX)
    assert set(key) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert 40 <= len(key) <= 110
    assert parse_datastore_key(key) == path


def test_the_prefix_decodes_to_streaks_app_id() -> None:
    """``agxzfm1haWxmb29nYWVy`` is what every real Streak key starts with (streak_api.md 4)."""
    assert datastore_key(("Team", 1)).startswith("agxzfm1haWxmb29nYWVy")


@pytest.mark.parametrize(
    "candidate",
    [
        "",
        "abc",
        "not-a-key!",
        KEY_PREFIX,  # prefix alone: no path
        KEY_PREFIX + "garbage",
        datastore_key(("Case", 12))[:-3],  # truncated
        datastore_key(("Case", 12)) + "AA",  # trailing bytes
        datastore_key(("Case", 12)).replace("_", "/") + "/x",  # wrong alphabet
        team_entity_key("TeamContact", 42),  # newer contact keys are not entity-path keys
    ],
)
def test_anything_else_is_malformed(candidate: str) -> None:
    assert not is_well_formed_key(candidate)


def test_key_factory_is_deterministic_and_unique() -> None:
    first = KeyFactory(random.Random("s"))
    second = KeyFactory(random.Random("s"))
    keys_a = [first.key(("Organization", "x.org"), kind="Case") for _ in range(500)]
    keys_b = [second.key(("Organization", "x.org"), kind="Case") for _ in range(500)]
    assert keys_a == keys_b
    assert len(set(keys_a)) == 500
    assert all(is_well_formed_key(k) for k in keys_a)
