"""Whose values ``forget`` erases, and how a value that mentions them is redacted (pure: no SQL).

A :class:`Person` is what the copy holds of one person: the contact rows (every version) found by
the address or key asked for, and the rows of the account's users / team members with that
address. Their values fall in two classes:

* **strong**: identify the person wherever they appear: e-mail addresses, the full name, phone
  numbers, postal addresses, handles, the photo URL, the notes about them, the contact key. A
  value equal to one of them is theirs in any table; a longer text holding one (a comment naming
  the address) has it replaced by :data:`FORGOTTEN`.
* **weak**: a given or family name alone. Another person may be called "Ada" too, so a weak value
  is erased only where it sits next to a strong one: in the same row, or the same JSON object (a
  sharing entry with the person's address and their given name).

Each clear value is matched in its clear form and in every hashed form the ``[privacy]`` policy
gives it (:meth:`PrivacyPolicy.hash` of the value as each kind), so a copy written under any
preset is covered; values the copy holds hashed already are matched as they are. Comparison is by
:func:`streak_source.privacy.normalized`-like folding (trimmed, whitespace collapsed, case-folded;
an ``Ada <ada@x.com>`` address by its address).

:func:`redact` walks a value (text, JSON text, a parsed list or object): a matching string in a
list is removed from it, a matching value of an object or a whole cell becomes :data:`ERASED` (the
caller writes NULL), a ``", "``-joined list (``boxes.assigned_to_emails``) loses that part.
Everything else stays byte for byte, so other people's data is intact.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from streak_source.privacy import COLUMNS, Kind, is_hashed, looks_like_email, normalized

__all__ = ["ERASED", "FORGOTTEN", "PERSON_COLUMNS", "Person", "holds_strong", "json_text_like", "parsed_json",
           "person_from", "redact", "redacted_cells"]

FORGOTTEN: Final = "[forgotten]"
"""What a strong value inside a longer text is replaced with."""

MIN_VALUE_CHARS: Final = 3
"""Shorter values are not matched at all (an initial, a two-letter handle)."""
MIN_NEEDLE_CHARS: Final = 6
"""Shorter strong values are matched only as whole values, never inside a longer text."""

Strength = str  # "strong" | "weak"

PERSON_COLUMNS: Final[Mapping[str, Mapping[str, Strength]]] = {
    "contacts": {"contact_key": "strong", "full_name": "strong", "email_addresses": "strong",
                 "phone_numbers": "strong", "addresses": "strong", "other": "strong", "linkedin_handle": "strong",
                 "twitter_handle": "strong", "photo_url": "strong", "given_name": "weak", "family_name": "weak"},
    "users": {"email": "strong", "lowercase_email": "strong", "google_profile_full_name": "strong",
              "google_profile_photo_url": "strong", "display_name": "weak", "google_profile_first_name": "weak",
              "google_profile_last_name": "weak"},
    "team_members": {"email": "strong", "full_name": "strong", "image": "strong", "display_name": "weak",
                     "given_name": "weak"},
}
"""Per table a person is found in: the columns whose values are theirs, and how strongly they
identify them (module doc). Only ``contacts`` rows (and their history) ARE the person and are
deleted; a user's or team member's row is account data and is redacted like any other."""


class _Erased:
    def __repr__(self) -> str:
        return "ERASED"


ERASED: Final = _Erased()
"""A whole value that is the person's: the caller removes it (NULL, or out of its list)."""


def _folded(text: str) -> str:
    return " ".join(text.split()).casefold()


def _forms(text: str) -> set[str]:
    """``text`` as compared: folded, and as an e-mail address when it is one."""
    forms = {_folded(text)}
    if looks_like_email(text):
        forms.add(normalized("email", text))
    return forms


@dataclass(frozen=True)
class Person:
    """The values of one person the copy holds (module doc)."""

    strong: frozenset[str]
    """Folded clear values and hashes that identify the person anywhere."""
    weak: frozenset[str]
    """Folded clear values and hashes erased only beside a strong one."""
    needles: tuple[str, ...]
    """Lower-case texts a cell holding the person's data contains (the SQL pre-filter), longest first;
    also what is replaced inside longer texts."""
    contact_keys: frozenset[str] = field(default_factory=frozenset)
    """Keys of the contacts that are the person (their rows are deleted)."""
    hash_: Callable[[Kind, str], str] | None = field(default=None, compare=False)
    """The policy's hashing: a clear text whose hash is one of the person's hashed values is theirs
    too (a contact kept hashed, named in clear in a thread's participants)."""

    def _hashed_in(self, text: str, values: frozenset[str]) -> bool:
        if self.hash_ is None or is_hashed(text) or len(text.strip()) < MIN_VALUE_CHARS:
            return False
        return self.hash_("name", text) in values or (looks_like_email(text) and self.hash_("email", text) in values)

    def _named_by_parts(self, text: str) -> bool:
        """``Ada Lovelace`` in clear where the copy holds the contact's given and family names
        hashed one by one (its ``full_name`` then is ``h:... h:...``)."""
        words = text.split()
        if self.hash_ is None or not 1 < len(words) <= 8 or not self.weak:
            return False
        return any(self.hash_("name", " ".join(words[:cut])) in self.weak
                   and self.hash_("name", " ".join(words[cut:])) in self.weak for cut in range(1, len(words)))

    def is_strong(self, text: str) -> bool:
        return (not _forms(text).isdisjoint(self.strong) or self._hashed_in(text, self.strong)
                or self._named_by_parts(text))

    def is_weak(self, text: str) -> bool:
        return not _forms(text).isdisjoint(self.weak) or self._hashed_in(text, self.weak)

    @property
    def empty(self) -> bool:
        return not self.strong


def _values(value: Any) -> Iterable[str]:
    """The strings of a cell: a text, a JSON list's strings, a list."""
    if isinstance(value, str):
        parsed = parsed_json(value)
        if isinstance(parsed, list):
            yield from _values(parsed)
        elif value.strip():
            yield value.strip()
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, str) and item.strip():
                yield item.strip()


def _hashed_as(text: str, kinds: set[Kind]) -> set[Kind]:
    """The kinds whose hash of ``text`` can differ: an e-mail address and a phone number are
    normalized their own way, every other kind as a name (``hashing.normalized``)."""
    if not kinds:
        return set()
    wanted: set[Kind] = {"name"}
    if "email" in kinds or looks_like_email(text):
        wanted.add("email")
    if "phone" in kinds:
        wanted.add("phone")
    return wanted


def person_from(addresses: Iterable[str], rows: Iterable[tuple[str, Mapping[str, Any]]],
                hash_: Callable[[Kind, str], str] | None, contact_keys: Iterable[str] = ()) -> Person:
    """The person of ``addresses`` and ``contact_keys`` (as asked for) and ``rows`` (``(table, row)``
    found for them, the tables of :data:`PERSON_COLUMNS`); ``hash_``: the policy's hashing (None: no
    salt configured, then only clear values and hashes already in the rows are matched)."""
    clear: dict[str, dict[str, set[Kind]]] = {"strong": {}, "weak": {}}
    hashed: dict[str, set[str]] = {"strong": set(), "weak": set()}
    keys = {key.strip() for key in contact_keys if key.strip()}
    for address in addresses:
        clear["strong"].setdefault(address.strip(), set()).add("email")
    for key in keys:
        clear["strong"].setdefault(key, set())
    for table, row in rows:
        for column, strength in PERSON_COLUMNS[table].items():
            catalog = COLUMNS.get(f"{table}.{column}")
            for text in _values(row.get(column)):
                if is_hashed(text):
                    hashed[strength].add(text)
                elif catalog is not None:  # a key is never hashed
                    clear[strength].setdefault(text, set()).update(catalog.kinds)
                else:
                    clear[strength].setdefault(text, set())
        if table == "contacts" and row.get("contact_key"):
            keys.add(str(row["contact_key"]))
    for strength in ("strong", "weak"):
        clear[strength] = {text: kinds for text, kinds in clear[strength].items() if len(text) >= MIN_VALUE_CHARS}
        if hash_ is not None:
            hashed[strength] |= {hash_(kind, text) for text, kinds in clear[strength].items()
                                 for kind in _hashed_as(text, kinds)}
    weak_only = set(clear["weak"]) - set(clear["strong"])
    strong = {form for text in clear["strong"] for form in _forms(text)} | hashed["strong"]
    weak = {form for text in weak_only for form in _forms(text)} | (hashed["weak"] - hashed["strong"])
    needles = {text.lower() for text in clear["strong"] if len(text) >= MIN_NEEDLE_CHARS} | hashed["strong"]
    needles |= {normalized("email", text) for text in clear["strong"] if looks_like_email(text)}
    needles |= {escaped for text in list(needles) if (escaped := json.dumps(text)[1:-1]) != text}
    return Person(frozenset(strong), frozenset(weak), tuple(sorted(needles, key=lambda n: (-len(n), n))),
                  frozenset(keys), hash_)


# --- redaction ------------------------------------------------------------------------------------


def parsed_json(text: str) -> Any:
    """``text`` parsed when it is a JSON object or list, else None."""
    stripped = text.lstrip()
    if not stripped or stripped[0] not in "[{":
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def json_text_like(original: str, value: Any) -> str:
    """``value`` as JSON text in the style ``original`` was written in (compact as dlt writes it, or
    with spaces as Postgres' ``jsonb`` and ``json.dumps`` do; ASCII-escaped or not), so a rewritten
    value compares equal to the same value written by a load."""
    for separators in ((",", ":"), (", ", ": ")):
        for ascii_only in (False, True):
            if json.dumps(json.loads(original), separators=separators, ensure_ascii=ascii_only) == original:
                return json.dumps(value, separators=separators, ensure_ascii=ascii_only)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _replaced_inside(text: str, person: Person) -> str:
    lowered = text.lower()
    for needle in person.needles:
        if needle in lowered:
            text = re.sub(re.escape(needle), FORGOTTEN, text, flags=re.IGNORECASE)
            lowered = text.lower()
    return text


def _string(text: str, person: Person, scoped: bool) -> Any:
    """A string: :data:`ERASED`, a ", "-joined list without the person's parts, JSON text redacted
    inside, a text with strong values replaced, or ``text`` itself."""
    if person.is_strong(text) or (scoped and person.is_weak(text)):
        return ERASED
    parsed = parsed_json(text)
    if parsed is not None:
        redacted = redact(parsed, person, scoped)
        return text if redacted is parsed else json_text_like(text, redacted)
    if ", " in text:
        parts = text.split(", ")
        kept = [part for part in parts if not (person.is_strong(part) or (scoped and person.is_weak(part)))]
        if len(kept) != len(parts):
            return ", ".join(kept) if kept else ERASED
    return _replaced_inside(text, person)


def holds_strong(values: Iterable[Any], person: Person) -> bool:
    """Whether one of ``values`` (an object's or a row's direct values) is, or lists, a strong value."""
    for value in values:
        if isinstance(value, str) and (person.is_strong(value) or any(person.is_strong(t) for t in _values(value))):
            return True
        if isinstance(value, list) and any(isinstance(item, str) and person.is_strong(item) for item in value):
            return True
    return False


def redact(value: Any, person: Person, scoped: bool = False) -> Any:
    """``value`` without the person's values (module doc): the SAME object when nothing changed, a
    new one otherwise, :data:`ERASED` when the whole value is theirs. ``scoped``: weak values count
    too (the value sits next to a strong one)."""
    if isinstance(value, str):
        result = _string(value, person, scoped)
        return value if result == value else result
    if isinstance(value, list):
        items = [redact(item, person, scoped) for item in value]
        if all(new is old for new, old in zip(items, value)):
            return value
        return [item for item in items if item is not ERASED]
    if isinstance(value, dict):
        inner = holds_strong(value.values(), person)
        changed = {name: redact(item, person, inner) for name, item in value.items()}
        if all(changed[name] is value[name] for name in value):
            return value
        return {name: None if item is ERASED else item for name, item in changed.items()}
    return value


def redacted_cells(cells: Mapping[str, str | None], person: Person, nullable: Mapping[str, bool],
                   json_typed: Mapping[str, bool]) -> dict[str, str | None]:
    """The cells of one row (column -> text) that change, with their new text: the person's values
    out, weak ones too when the row holds a strong one. A column that takes no NULL gets ``null``
    (JSON) or :data:`FORGOTTEN` instead; as it may be a key (``events.event_key``, ``api:`` + an
    address), its new text ends in a digest of the old one, so keys stay distinct and the same key
    gets the same new text in ``crm.events`` and in the spool."""
    scoped = holds_strong(cells.values(), person)
    changed: dict[str, str | None] = {}
    for name, text in cells.items():
        if text is None:
            continue
        new = redact(text, person, scoped)
        if new is text:
            continue
        if not nullable.get(name, True):
            if json_typed.get(name, False) or parsed_json(text) is not None:
                new = "null" if new is ERASED else new
            else:
                digest = hashlib.sha256(text.encode()).hexdigest()[:12]
                new = f"{FORGOTTEN if new is ERASED else new}~{digest}"
        elif new is ERASED:
            new = None
        changed[name] = new
    return changed
