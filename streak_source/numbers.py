"""The ONE rule for numeric text: what a TEXT_INPUT value must look like to get a ``value_number``.

People type amounts into Streak text fields the way they write them: ``119,500 €``, ``$1,234.50``,
``1.234.567``, ``1 234,5``, ``CHF 1'250``, ``12%``, ``1.5k``. :func:`parse_number` reads those and
nothing else; the text itself always stays in ``value_text``. The wide views type a text field as a
number only if every one of its values parsed (decided in SQL over ``value_number``), so this
module is the only place the rule lives.
"""

from __future__ import annotations

import math
import re
from typing import Final

__all__ = ["parse_number", "CURRENCY_SYMBOLS", "CURRENCY_CODES"]

MAX_LENGTH: Final = 64
"""Longer texts are prose, not amounts (and a bound keeps the regexes cheap)."""

CURRENCY_SYMBOLS: Final[tuple[str, ...]] = (
    # Longest first, so "US$" is not read as "US" + "$".
    "US$", "CA$", "AU$", "NZ$", "HK$", "R$", "C$", "A$", "S$",
    "$", "€", "£", "¥", "₹", "₩", "₽", "₺", "₪", "₫", "₱", "฿", "₴", "₦", "¢", "₣", "₡", "₲", "₵", "₸", "₼", "₾",
)
CURRENCY_CODES: Final[frozenset[str]] = frozenset({
    "USD", "EUR", "GBP", "JPY", "CNY", "RMB", "INR", "CHF", "CAD", "AUD", "NZD", "HKD", "SGD", "SEK", "NOK",
    "DKK", "PLN", "CZK", "HUF", "RON", "BGN", "ISK", "TRY", "RUB", "UAH", "ILS", "AED", "SAR", "QAR", "ZAR",
    "BRL", "MXN", "ARS", "CLP", "COP", "PEN", "KRW", "TWD", "THB", "MYR", "IDR", "PHP", "VND", "PKR", "BDT",
    "EGP", "NGN", "KES", "MAD",
})
"""ISO 4217 codes of the currencies deals are commonly written in (upper case, as ISO writes them)."""

_SPACES: Final = "\u0020\u00a0\u202f\u2009\u2007"
"""Space, no-break space, narrow no-break space (fr-FR), thin space, figure space."""
_APOSTROPHES: Final = "'\u2019"
"""de-CH / it-CH group separator (plain and typographic apostrophe)."""
_MINUS_SIGNS: Final = "-\u2212"
_MULTIPLIERS: Final[dict[str, float]] = {"k": 1e3, "K": 1e3, "M": 1e6}

_PLAIN: Final = re.compile(r"(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?", re.ASCII)
"""What Python's float() reads, minus nan/inf/underscores: ``42``, ``-3.5``, ``.5``, ``1e3``."""
_INDIAN: Final = re.compile(r"\d{1,2}(?:,\d{2})+,\d{3}", re.ASCII)
"""en-IN lakh grouping: ``1,23,456``."""
_DIGITS: Final = re.compile(r"\d+", re.ASCII)


def parse_number(text: str) -> float | None:
    """The number written in ``text``, or None when it is not one amount.

    Accepted, around an optional sign (``-``, ``+``, ``−``):

    * plain numbers as Python writes them: ``42``, `` -3.5 ``, ``.5``, ``1e3``;
    * thousands separators of common locales: ``1,234`` / ``1,234,567.5`` (en), ``1.234.567`` /
      ``1.234,5`` (de, es, it, pt-BR), ``1 234 567,5`` with a space, no-break or narrow no-break
      space (fr, pl, ru, sv), ``1'234.5`` (de-CH), ``1,23,456.78`` (en-IN). Groups must have
      three digits (two in en-IN), so ``1,2,3`` and ``12,34.5`` are not numbers;
    * a decimal comma: ``1,5``, ``1 234,56``;
    * a currency symbol (``$ € £ ¥ ₹ ...``, ``US$``, ``R$``) or ISO code (``USD``, ``EUR``, ...)
      before or after, with or without a space: ``$1,200``, ``119,500 €``, ``EUR 99.5``, ``-$5``;
    * a trailing ``%``, kept as written: ``12%`` -> 12.0 (not 0.12);
    * a ``k``/``K`` (thousand) or ``M`` (million) suffix: ``1.5k`` -> 1500.0, ``$2M`` -> 2000000.0.
      Lower-case ``m`` is not accepted (metres? milli?), nor ``bn``/``B``.

    Ambiguous cases, decided once here:

    * one ``,`` followed by exactly three digits is a thousands separator: ``1,234`` -> 1234.0
      (``0,123`` is a decimal comma: nobody groups a leading zero); any other single ``,`` is a
      decimal comma: ``1,5`` -> 1.5, ``1,2345`` -> 1.2345;
    * one ``.`` is always a decimal point: ``1.234`` -> 1.234 (German 1234 would be written
      ``1.234,00`` or ``1234``); two or more ``.`` with three-digit groups are thousands:
      ``1.234.567`` -> 1234567.0;
    * when both ``,`` and ``.`` appear, the last one is the decimal separator and the other must
      group correctly: ``1.234,5`` and ``1,234.5`` are both 1234.5; ``1.2,3`` is not a number.

    A leading zero followed by a digit (``007``, ``02139``) marks an identifier or postal code, not
    an amount: None, so such a field's wide-view column stays text. Digits are ASCII ``0-9`` only (``١٢`` and full-width ``１２`` stay text). Everything else is
    None: words (``about 5``), ranges (``5-10``), two currencies, ``%`` with a currency or a suffix,
    ``nan``/``inf``, hex, ``1_000``, an empty string, a non-finite result. Never raises for any ``str``.
    """
    if not isinstance(text, str) or len(text) > MAX_LENGTH:
        return None
    body = text.strip(_SPACES + "\t\n\r")
    negative, body = _sign(body)
    body, currency = _strip_currency(body)
    if currency and not negative:
        negative, body = _sign(body)  # "$-5"
    multiplier = 1.0
    if body.endswith("%"):
        if currency:
            return None
        body = body[:-1].rstrip(_SPACES)
    elif body[-1:] in _MULTIPLIERS:
        multiplier = _MULTIPLIERS[body[-1]]
        body = body[:-1].rstrip(_SPACES)
    magnitude = _unsigned(body)
    if magnitude is None:
        return None
    value = -magnitude * multiplier if negative else magnitude * multiplier
    return value if math.isfinite(value) else None


def _sign(body: str) -> tuple[bool, str]:
    if body[:1] in _MINUS_SIGNS:
        return True, body[1:].lstrip(_SPACES)
    if body[:1] == "+":
        return False, body[1:].lstrip(_SPACES)
    return False, body


def _strip_currency(body: str) -> tuple[str, bool]:
    """``body`` without one currency symbol or code at either end; True if one was there."""
    for symbol in CURRENCY_SYMBOLS:
        if body.startswith(symbol):
            return body[len(symbol):].lstrip(_SPACES), True
        if body.endswith(symbol):
            return body[: -len(symbol)].rstrip(_SPACES), True
    head, tail = body[:3], body[-3:]
    if head in CURRENCY_CODES and not body[3:4].isalpha():
        return body[3:].lstrip(_SPACES), True
    if tail in CURRENCY_CODES and not body[-4:-3].isalpha():
        return body[:-3].rstrip(_SPACES), True
    return body, False


def _unsigned(body: str) -> float | None:
    """A non-negative number with locale grouping, or None."""
    if not body or body[0] not in "0123456789.":
        return None
    if body[0] == "0" and body[1:2].isdigit():  # "007", "02139": an identifier or a ZIP code, not an amount
        return None
    if _PLAIN.fullmatch(body):
        return _finite(body)
    for space in _SPACES + _APOSTROPHES:
        if space in body:
            return _grouped(body, group=space, decimal_marks=",.")
    commas, dots = body.count(","), body.count(".")
    if commas and dots:
        decimal = "," if body.rfind(",") > body.rfind(".") else "."
        return _grouped(body, group="." if decimal == "," else ",", decimal_marks=decimal)
    if dots > 1:
        return _grouped(body, group=".", decimal_marks="")
    if commas == 1:
        whole, fraction = body.split(",")
        if len(fraction) == 3 and _DIGITS.fullmatch(whole) and not whole.startswith("0"):
            return _grouped(body, group=",", decimal_marks="")
        return _finite(f"{whole}.{fraction}") if _DIGITS.fullmatch(whole) and _DIGITS.fullmatch(fraction) else None
    if commas > 1:
        return _finite(body.replace(",", "")) if _INDIAN.fullmatch(body) or _grouped_ok(body, ",") else None
    return None


def _grouped(body: str, group: str, decimal_marks: str) -> float | None:
    """``body`` = grouped integer part, optionally one decimal mark from ``decimal_marks`` + digits."""
    whole, fraction = body, ""
    for mark in decimal_marks:
        if mark != group and mark in body:
            if body.count(mark) != 1:
                return None
            whole, fraction = body.split(mark)
            if not _DIGITS.fullmatch(fraction):
                return None
            break
    if not (_grouped_ok(whole, group) or (group == "," and _INDIAN.fullmatch(whole))):
        return None
    digits = whole.replace(group, "")
    return _finite(f"{digits}.{fraction}" if fraction else digits)


def _grouped_ok(whole: str, group: str) -> bool:
    """``1,234,567``: a 1-3 digit head, then groups of exactly three digits after ``group``."""
    return re.fullmatch(r"\d{1,3}(?:" + re.escape(group) + r"\d{3})+", whole, re.ASCII) is not None


def _finite(number_text: str) -> float | None:
    try:
        value = float(number_text)
    except (ValueError, OverflowError):
        return None
    return value if math.isfinite(value) else None
