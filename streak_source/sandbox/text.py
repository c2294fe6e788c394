"""Realistic, seeded text for the generated account, drawn from Faker.

Faker is slow per call (tens of microseconds), so a 20,000-box account cannot call it per value.
Instead each kind of text gets a pool filled once from several locales (so names, notes and subjects
carry accents, kana and kanji), and the generator picks from the pools with its own seeded RNG.
Everything is a function of the seed and the pool size, hence of the seed and the box count.
"""

from __future__ import annotations

import mimetypes
import random
import re
import unicodedata
from collections.abc import Callable
from typing import TypeVar

from faker import Faker

T = TypeVar("T")

LOCALE_WEIGHTS: dict[str, int] = {
    "en_US": 12,
    "de_DE": 2,
    "fr_FR": 2,
    "es_ES": 1,
    "pt_BR": 1,
    "ja_JP": 2,
}
"""Mostly English, with enough other scripts to catch encoding bugs downstream."""

FILE_CATEGORIES: tuple[str, ...] = ("office", "image", "text")


def ascii_slug(text: str, separator: str = ".") -> str:
    """``"Jürgen Müller"`` -> ``"jurgen.muller"``; empty for scripts with no ASCII form."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", separator, folded.lower()).strip(separator)


class TextPools:
    """Pools of Faker text, filled once per account, picked from by the generator's RNG."""

    def __init__(self, seed: int, size: int) -> None:
        self._rng = random.Random(f"{seed}:text")
        self._fakers: dict[str, Faker] = {}
        for offset, locale in enumerate(LOCALE_WEIGHTS):
            fake = Faker(locale)
            fake.seed_instance(seed * 101 + offset)
            self._fakers[locale] = fake
        self._locales = list(LOCALE_WEIGHTS)
        self._weights = list(LOCALE_WEIGHTS.values())
        small = max(20, size // 5)
        self.person_names: list[tuple[str, str]] = self._mixed(
            size, lambda fake: (fake.first_name(), fake.last_name())
        )
        self.english_names: list[tuple[str, str]] = self._english(
            small, lambda fake: (fake.first_name(), fake.last_name())
        )
        self.companies: list[str] = self._mixed(max(20, size // 2), lambda fake: fake.company())
        self.sentences: list[str] = self._mixed(size, lambda fake: fake.sentence(nb_words=9))
        self.paragraphs: list[str] = self._mixed(
            max(20, size // 2), lambda fake: fake.paragraph(nb_sentences=3)
        )
        self.subjects: list[str] = self._english(size, lambda fake: fake.catch_phrase())
        self.deal_labels: list[str] = self._english(small, lambda fake: fake.bs().capitalize())
        self.cities: list[str] = self._mixed(small, lambda fake: fake.city())
        self.jobs: list[str] = self._english(small, lambda fake: fake.job())
        self.domains: list[str] = self._english(max(20, size // 3), lambda fake: fake.domain_name())
        self.user_names: list[str] = self._english(size, lambda fake: fake.user_name())
        self.phone_numbers: list[str] = self._mixed(small, lambda fake: fake.phone_number())
        self.addresses: list[str] = self._mixed(
            small, lambda fake: fake.address().replace("\n", ", ")
        )
        self.emojis: list[str] = self._english(40, lambda fake: fake.emoji())
        self.timezones: list[str] = self._english(20, lambda fake: fake.timezone())
        self.file_names: list[tuple[str, str, str]] = self._english(small, self._file_name)

    @staticmethod
    def _file_name(fake: Faker) -> tuple[str, str, str]:
        """(name without extension, extension, MIME type)."""
        name = fake.file_name(category=fake.random_element(FILE_CATEGORIES))
        stem, _, extension = name.rpartition(".")
        mime_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        return stem.replace("_", " ").capitalize() or "Untitled", extension, mime_type

    def _mixed(self, count: int, make: Callable[[Faker], T]) -> list[T]:
        picks = self._rng.choices(self._locales, self._weights, k=count)
        return [make(self._fakers[locale]) for locale in picks]

    def _english(self, count: int, make: Callable[[Faker], T]) -> list[T]:
        fake = self._fakers["en_US"]
        return [make(fake) for _ in range(count)]
