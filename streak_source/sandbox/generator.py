"""What every part of the account generator shares: the seeded RNGs, the key factory, time helpers.

The generator is split by what it builds (``account.py``: people, teams, contacts, pipelines;
``generate_boxes.py``: boxes and their children; ``generate_paths.py``: each box's stage moves;
``generate_newsfeed.py``: history; ``hostile.py``: the hostile account). They all draw from the
ONE ``rng`` below in a fixed order, which is what makes the same seed give the same account.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime
from typing import Final

import streak_clock
from .keys import KeyFactory, PathElement
from .text import TextPools, ascii_slug

MINUTE_MS: Final = 60_000
HOUR_MS: Final = 60 * MINUTE_MS
DAY_MS: Final = 24 * HOUR_MS


def anchor_ms_for(anchor_date: date | str | None) -> int:
    """Midnight UTC of ``anchor_date`` (a date or ``YYYY-MM-DD``; default today) in epoch ms."""
    if anchor_date is None:
        anchor_date = streak_clock.today()
    elif isinstance(anchor_date, str):
        anchor_date = date.fromisoformat(anchor_date)
    midnight = datetime(anchor_date.year, anchor_date.month, anchor_date.day, tzinfo=UTC)
    return int(midnight.timestamp()) * 1000


def foreground_for(background: str) -> str:
    """A stage's text colour: black on a light ``#rrggbb`` background, white on a dark one."""
    light = sum(int(background[i : i + 2], 16) for i in (1, 3, 5)) > 384
    return "#000000" if light else "#ffffff"


class GeneratorBase:
    """One generation run's shared state. Subclasses add the builders."""

    def __init__(self, seed: int, box_count: int, anchor_ms: int) -> None:
        self.seed = seed
        self.box_count = box_count
        self.now = anchor_ms
        self.rng = random.Random(f"{seed}:account")
        self.keys = KeyFactory(random.Random(f"{seed}:keys"))
        self.text = TextPools(seed, size=min(1500, max(80, box_count)))
        self.domain = self.text.domains[0]
        self.org_root: PathElement = ("Organization", self.domain)
        self._email_locals: set[str] = set()

    # ------------------------------------------------------------------ helpers

    def key(self, kind: str) -> str:
        return self.keys.key(self.org_root, kind=kind)

    def between(self, start: int, end: int) -> int:
        """A random instant in [start, end] (end clamped to at least start).

        ``random()`` arithmetic, not ``randint``: this runs millions of times for big accounts.
        """
        return start + int(self.rng.random() * (max(0, end - start) + 1))

    def days_ago(self, low: int, high: int) -> int:
        return self.now - self.between(low * DAY_MS, high * DAY_MS)

    def maybe_emoji(self, text: str, probability: float) -> str:
        if self.rng.random() < probability:
            return f"{text} {self.rng.choice(self.text.emojis)}"
        return text

    def unique_email(self, given: str, family: str, domain: str) -> str:
        local = ascii_slug(f"{given} {family}") or self.rng.choice(self.text.user_names)
        candidate, suffix = local, 1
        while candidate in self._email_locals:
            suffix += 1
            candidate = f"{local}{suffix}"
        self._email_locals.add(candidate)
        return f"{candidate}@{domain}"

