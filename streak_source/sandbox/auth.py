"""Which API key a request carries: every form Streak accepts (streak_api.md section 2).

* ``Basic base64(KEY:)``: the documented form (``curl -u KEY:``);
* ``Basic base64(KEY:KEY)``: the key repeated as password, for tools that insist on one;
* ``Basic base64(KEY)``: no colon at all, what Streak's own long-standing Node client sends;
* ``Bearer KEY``: Streak's newer official SDKs.

Anything else (another password, another scheme, bad base64) carries no key: 401.
"""

from __future__ import annotations

import base64
import binascii


def api_key_from(authorization: str | None) -> str | None:
    """The API key in an ``Authorization`` header value, or None."""
    if not authorization:
        return None
    scheme, _, credentials = authorization.strip().partition(" ")
    credentials = credentials.strip()
    if scheme.lower() == "bearer":
        return credentials or None
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(credentials, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    user, separator, password = decoded.partition(":")
    if not user:
        return None
    if separator and password not in ("", user):
        return None
    return user
