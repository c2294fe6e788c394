"""Entity keys that look, and decode, like Streak's.

Streak's entity keys (boxes, pipelines, users, teams, tasks, ...) are URL-safe base64 (no padding)
of Google App Engine datastore ``Reference`` protobufs: app id ``s~mailfoogae`` plus an ancestor
path such as ``Organization("acme.com")/Case(5629499534213120)``. Encoded, every one of them starts
with ``agxzfm1haWxmb29nYWVy`` (streak_api.md section 4). The sandbox builds real ``Reference``
bytes, so its keys have the same prefix, alphabet and length range (about 40-110 characters) as
Streak's, and "well formed" can be defined exactly: the string decodes to a ``Reference`` of that
app with a non-empty path. A path slot holding anything else answers 400, like Streak's "Illegal
Argument Exception in GetEntities"; a well-formed key of no entity answers 404.

Newer contact/organization keys are not datastore keys: base64 of
``TeamContact,~~streaklongid~~<n>`` (section 4, [M]); :func:`team_entity_key` makes those.
"""

from __future__ import annotations

import base64
import binascii
import random
import re
from typing import Final

APP_ID: Final = "s~mailfoogae"
KEY_PREFIX: Final = "agxzfm1haWxmb29nYWVy"
"""base64 of ``0x6a 0x0c "s~mailfoogae" 0x72``: the app field and the path field's tag."""

_URLSAFE_KEY: Final = re.compile(r"^[A-Za-z0-9_-]+$")

# Protobuf tags of the legacy datastore Reference message.
_TAG_APP: Final = 0x6A  # field 13, length-delimited
_TAG_PATH: Final = 0x72  # field 14, length-delimited
_TAG_ELEMENT_START: Final = 0x0B  # group 1 start
_TAG_ELEMENT_END: Final = 0x0C  # group 1 end
_TAG_KIND: Final = 0x12  # field 2, length-delimited
_TAG_ID: Final = 0x18  # field 3, varint
_TAG_NAME: Final = 0x22  # field 4, length-delimited

PathElement = tuple[str, int | str]
"""(kind, numeric id or string name), e.g. ("Case", 5629499534213120)."""


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _length_prefixed(tag: int, payload: bytes) -> bytes:
    return bytes([tag]) + _varint(len(payload)) + payload


def _element_bytes(kind: str, ident: int | str) -> bytes:
    out = bytearray([_TAG_ELEMENT_START]) + _length_prefixed(_TAG_KIND, kind.encode())
    if isinstance(ident, int):
        out += bytes([_TAG_ID]) + _varint(ident)
    else:
        out += _length_prefixed(_TAG_NAME, ident.encode())
    out.append(_TAG_ELEMENT_END)
    return bytes(out)


_APP_BYTES: Final = _length_prefixed(_TAG_APP, APP_ID.encode())


def _encode(path_bytes: bytes) -> str:
    raw = _APP_BYTES + _length_prefixed(_TAG_PATH, path_bytes)
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def datastore_key(*path: PathElement) -> str:
    """Encode an ancestor path as a Streak-style entity key."""
    if not path:
        raise ValueError("a datastore key needs at least one path element")
    return _encode(b"".join(_element_bytes(kind, ident) for kind, ident in path))


class _Reader:
    """Bounds-checked reading of protobuf bytes; any overrun raises ValueError."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def done(self) -> bool:
        return self.pos >= len(self.data)

    def byte(self) -> int:
        if self.pos >= len(self.data):
            raise ValueError("truncated")
        value = self.data[self.pos]
        self.pos += 1
        return value

    def varint(self) -> int:
        result = shift = 0
        while True:
            byte = self.byte()
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return result
            shift += 7
            if shift > 63:
                raise ValueError("varint too long")

    def chunk(self) -> bytes:
        length = self.varint()
        end = self.pos + length
        if end > len(self.data):
            raise ValueError("truncated")
        value = self.data[self.pos : end]
        self.pos = end
        return value


def _parse_path(data: bytes) -> tuple[PathElement, ...]:
    reader = _Reader(data)
    elements: list[PathElement] = []
    while not reader.done():
        if reader.byte() != _TAG_ELEMENT_START or reader.byte() != _TAG_KIND:
            raise ValueError("bad path element")
        kind = reader.chunk().decode()
        tag = reader.byte()
        ident: int | str
        if tag == _TAG_ID:
            ident = reader.varint()
        elif tag == _TAG_NAME:
            ident = reader.chunk().decode()
        else:
            raise ValueError("path element without id or name")
        if reader.byte() != _TAG_ELEMENT_END or not kind:
            raise ValueError("bad path element")
        elements.append((kind, ident))
    if not elements:
        raise ValueError("empty path")
    return tuple(elements)


def parse_datastore_key(key: str) -> tuple[PathElement, ...] | None:
    """The ancestor path of a well-formed key, or None for anything else."""
    if not key.startswith(KEY_PREFIX) or len(key) > 500 or not _URLSAFE_KEY.match(key):
        return None
    try:
        raw = base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))
        reader = _Reader(raw)
        if reader.byte() != _TAG_APP or reader.chunk() != APP_ID.encode():
            return None
        if reader.byte() != _TAG_PATH:
            return None
        path = _parse_path(reader.chunk())
        if not reader.done():
            return None
        return path
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None


def is_well_formed_key(key: str) -> bool:
    """True when ``key`` decodes to a datastore Reference of Streak's app (the 400-vs-404 line)."""
    return parse_datastore_key(key) is not None


def team_entity_key(kind: str, number: int) -> str:
    """A newer-style contact/organization key: base64 of ``<kind>,~~streaklongid~~<number>``."""
    raw = f"{kind},~~streaklongid~~{number}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


_ID_VARINT_BYTES: Final = 8
"""Bytes of the varint of an id in [2**52, 2**53) (53 bits, 7 per byte)."""
_ELEMENT_END: Final = bytes([_TAG_ELEMENT_END])


class KeyFactory:
    """Hands out unique, seed-determined datastore ids (16 digits, like Streak's)."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._used: set[int] = set()
        self._heads: dict[tuple[tuple[PathElement, ...], str], bytes] = {}

    def new_id(self) -> int:
        while True:
            candidate = (1 << 52) + self._rng.getrandbits(51)
            if candidate not in self._used:
                self._used.add(candidate)
                return candidate

    def key(self, *ancestors: PathElement, kind: str) -> str:
        """A fresh key of ``kind`` under the given ancestors.

        Hot (hundreds of thousands of calls for a big account), so everything but the id is
        encoded once per (ancestors, kind): ids are in [2**52, 2**53), whose varint is always
        8 bytes, so the path length, hence every byte before the id, is fixed.
        """
        head = self._heads.get((ancestors, kind))
        if head is None:
            prefix = b"".join(_element_bytes(k, i) for k, i in ancestors)
            element_head = (
                bytes([_TAG_ELEMENT_START]) + _length_prefixed(_TAG_KIND, kind.encode())
            ) + bytes([_TAG_ID])
            path_length = len(prefix) + len(element_head) + _ID_VARINT_BYTES + 1
            head = _APP_BYTES + bytes([_TAG_PATH]) + _varint(path_length) + prefix + element_head
            self._heads[(ancestors, kind)] = head
        raw = head + _varint(self.new_id()) + _ELEMENT_END
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")
