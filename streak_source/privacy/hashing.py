"""Keyed hashing of personal values: the ONE rule for what a protected value becomes.

A value is first *normalized* by its kind, so that the same person gives the same text wherever
Streak wrote it down (``Ada@Example.com `` in a thread and ``ada@example.com`` in a contact), then
hashed with HMAC-SHA256 keyed by the ``[privacy] salt``. The result is ``h:`` followed by the first
32 hex digits (128 bits) of the digest: recognisable in any column, short, and the same in every
table and every run with the same salt, so hashed addresses still join (contacts to threads, box
owners to users). Without the salt nobody can recompute it, so a list of candidate addresses
cannot be hashed and compared (an unkeyed SHA-256 of an e-mail address can).

Kinds and their normalization (:func:`normalized`):

* ``email``: trimmed and lower-cased; ``"Ada <ada@x.com>"`` becomes ``ada@x.com``;
* ``phone``: its digits, with a leading ``+`` kept (``+1 (555) 010-0003`` -> ``+15550100003``);
  a "phone" without any digit is normalized as a name;
* ``name``, ``text``, ``url``: trimmed, inner whitespace collapsed to one space, case-folded.

A value that already is a hash (:func:`is_hashed`) is left as it is, so protecting twice changes
nothing (re-applying rules to a protected copy is safe).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from typing import Any, Final, Literal

__all__ = ["HASH_PREFIX", "HASH_HEX_DIGITS", "Kind", "KINDS", "Hasher", "hash_value", "is_hashed", "looks_like_email",
           "normalized"]

Kind = Literal["email", "phone", "name", "text", "url"]
KINDS: Final[tuple[Kind, ...]] = ("email", "phone", "name", "text", "url")
"""What a personal value is: an e-mail address, a phone number, a name (of a person or an
organization, or a handle), text people wrote (notes, messages, subjects, postal addresses) or a
link to a person's photo."""

HASH_PREFIX: Final = "h:"
HASH_HEX_DIGITS: Final = 32
_HASHED: Final = re.compile(r"h:[0-9a-f]{32}")
_ANGLED_ADDRESS: Final = re.compile(r"<\s*([^<>\s@]+@[^<>\s@]+)\s*>")
_EMAIL: Final = re.compile(r"[^@\s<>/\\,;:\"()\[\]]+@[^@\s<>/\\,;:\"()\[\]]+\.[^@\s<>/\\,;:\"()\[\].]{2,}")


def is_hashed(value: Any) -> bool:
    """True for a value this module produced (``h:`` + 32 lower-case hex digits)."""
    return isinstance(value, str) and len(value) == len(HASH_PREFIX) + HASH_HEX_DIGITS and bool(_HASHED.fullmatch(value))


def looks_like_email(value: Any) -> bool:
    """True for a string that is one e-mail address (``ada@x.com``, or ``Ada <ada@x.com>``)."""
    if not isinstance(value, str) or "@" not in value:
        return False
    text = value.strip()
    angled = _ANGLED_ADDRESS.search(text)
    return bool(_EMAIL.fullmatch(angled.group(1) if angled else text))


def normalized(kind: Kind, value: str) -> str:
    """``value`` as it is hashed: the same person's value gives the same text (module doc)."""
    if kind == "email":
        angled = _ANGLED_ADDRESS.search(value)
        return (angled.group(1) if angled else value).strip().lower()
    if kind == "phone":
        digits = "".join(ch for ch in value if ch.isdigit())
        if digits:
            return ("+" if value.strip().startswith("+") else "") + digits
    return " ".join(unicodedata.normalize("NFKC", value).split()).casefold()


def hash_value(kind: Kind, value: Any, salt: str) -> Any:
    """``value`` hashed as a ``kind`` with ``salt`` (a non-string scalar as its text); None, "" and
    values already hashed stay as they are."""
    return Hasher(salt).hash(kind, value)


class Hasher:
    """:func:`hash_value` with the key prepared once and recent results remembered (the same
    addresses and names recur in every box's sharing entries)."""

    _CACHE_LIMIT: Final = 200_000

    def __init__(self, salt: str) -> None:
        if not salt:
            raise ValueError("a Hasher needs a salt")
        self._keyed = hmac.new(salt.encode("utf-8"), digestmod=hashlib.sha256)
        self._cache: dict[tuple[str, str], str] = {}

    def hash(self, kind: Kind, value: Any) -> Any:
        if value is None or isinstance(value, bool) or value == "" or is_hashed(value):
            return value
        if not isinstance(value, str):
            value = str(value)
        key = (kind, value)
        found = self._cache.get(key)
        if found is None:
            mac = self._keyed.copy()
            mac.update(normalized(kind, value).encode("utf-8"))
            found = HASH_PREFIX + mac.hexdigest()[:HASH_HEX_DIGITS]
            if len(self._cache) >= self._CACHE_LIMIT:
                self._cache.clear()
            self._cache[key] = found
        return found
