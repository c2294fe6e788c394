"""The ONE rule for an entity's key in Streak's JSON.

Streak sends every entity's key as ``key`` and, in most v1 payloads, again under a type-specific
alias (``boxKey``, ``pipelineKey``, ``userKey``...); v2 objects often carry only ``key`` and a few
(newsfeed entries) only the alias. The rule: ``key`` first, then the aliases in the order given;
a usable key is a non-empty string, or an integer (sent as JSON number by some clients, returned
as its decimal text). Anything else (null, "", a bool, an object) is "no key" — never the text
``"None"``, which once ended up in URLs like ``/v1/boxes/None/threads``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["entity_key", "as_key"]


def as_key(value: Any) -> str | None:
    """``value`` as a key: a non-blank string as is, an int as its digits, anything else None."""
    if isinstance(value, str):
        return value if value.strip() else None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def entity_key(obj: Any, *aliases: str) -> str | None:
    """The key of ``obj``: ``obj["key"]``, else the first usable alias (``"boxKey"``...), else None."""
    if not isinstance(obj, dict):
        return None
    for name in ("key", *aliases):
        key = as_key(obj.get(name))
        if key is not None:
            return key
    return None
