"""Numbers, times and colours as the pages show them (one palette for the whole app)."""

from __future__ import annotations

import colorsys
import math
import re
from datetime import datetime
from typing import Any, Final

import altair as alt
import pandas as pd

KIND_COLORS: Final = {"Email threads": "#4263eb", "Comments": "#12b886", "Meetings": "#f59f00", "Call logs": "#e64980"}
"""One colour per kind of activity (``activity_queries.ACTIVITY_KINDS``)."""
KIND_HELP: Final = {
    "Email threads": "Email threads on these boxes; over time, each is dated by its last email.",
    "Meetings": "Meeting notes and meetings of any type but call logs.",
    "Call logs": "Meetings logged as calls (type CALL_LOG).",
}
"""What each kind of activity counts, the same words wherever its card appears."""
STATE_COLORS: Final = {"Overdue": "#e03131", "Due soon": "#f59f00"}
FALLBACK_PALETTE: Final = (
    "#4263eb", "#12b886", "#f59f00", "#e64980", "#7950f2", "#15aabf", "#fd7e14", "#82c91e",
    "#be4bdb", "#fa5252", "#228be6", "#40c057",
)
_HEX_COLOR: Final = re.compile(r"^#([0-9a-fA-F]{3,4}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$")


def fmt_int(value: float | int) -> str:
    return f"{int(value):,}"


NUMBER_UNITS: Final = ((1e12, 1e12, "T"), (1e9, 1e9, "B"), (1e6, 1e6, "M"), (1e4, 1e3, "k"))
"""Compact numbers: (from, divided by, suffix), largest first."""
SCIENTIFIC_FROM: Final = 1e15
"""From here on a number is written 1.23e+15: a sum of huge values stays a few characters."""


def fmt_number(value: float | None) -> str:
    """Compact number for sums: 1,250 / 48.2k / 3.1M / 7.5B / 2.0T / 1.23e+300 / ∞ (past the
    largest double); "–" for none. :func:`number_label_expr` is the same rule for chart axes."""
    if value is None or pd.isna(value):
        return "–"
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    magnitude = abs(value)
    if magnitude >= SCIENTIFIC_FROM:
        return f"{value:.3g}"
    for start, unit, suffix in NUMBER_UNITS:
        if magnitude >= start:
            return f"{value / unit:.1f}{suffix}"
    return f"{value:,.0f}" if float(value).is_integer() or magnitude >= 100 else f"{value:,.2f}"


def number_label_expr(field: str = "datum.value") -> str:
    """:func:`fmt_number` as a Vega expression, for a quantitative axis' ``labelExpr`` (Vega's own
    labels print a 300-digit number for 1e300); built from the same thresholds."""
    v = field
    expr = f"({v} % 1 == 0 || abs({v}) >= 100) ? format({v}, ',.0f') : format({v}, ',.2f')"
    for start, unit, suffix in reversed(NUMBER_UNITS):
        expr = f"abs({v}) >= {start:g} ? format({v} / {unit:g}, '.1f') + '{suffix}' : ({expr})"
    return f"abs({v}) >= {SCIENTIFIC_FROM:g} ? format({v}, '.3~g') : ({expr})"


def ago(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "never"
    seconds = max(0.0, (now - moment).total_seconds())
    if seconds < 90:
        return "just now"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 36 * 3600:
        return f"{seconds / 3600:.0f} h ago"
    return f"{seconds / 86400:.0f} days ago"


def chart_color(css: Any, index: int) -> str:
    """A stage's Streak colour made usable as a bar fill on white.

    Streak's stage backgrounds are often pastel (text sits on them); as bar fills they vanish. The
    hue is kept, lightness is pulled into a readable band. Anything that is not a ``#hex`` colour
    gets a palette colour.
    """
    text = css.strip() if isinstance(css, str) else ""
    if not _HEX_COLOR.match(text):
        return FALLBACK_PALETTE[index % len(FALLBACK_PALETTE)]
    digits = text[1:]
    if len(digits) in (3, 4):
        digits = "".join(ch * 2 for ch in digits[:3])
    red, green, blue = (int(digits[i : i + 2], 16) / 255 for i in (0, 2, 4))
    hue, lightness, saturation = colorsys.rgb_to_hls(red, green, blue)
    lightness = min(max(lightness, 0.30), 0.66)
    if saturation > 0.05:
        saturation = max(saturation, 0.45)
    red, green, blue = colorsys.hls_to_rgb(hue, lightness, saturation)
    return "#" + "".join(f"{round(c * 255):02x}" for c in (red, green, blue))


def ink(fill: str) -> str:
    """Black or white, whichever reads better on ``fill`` (a #rrggbb colour)."""
    red, green, blue = (int(fill[i : i + 2], 16) for i in (1, 3, 5))
    return "#1f2933" if (0.299 * red + 0.587 * green + 0.114 * blue) > 150 else "#ffffff"


def stage_colors(frame: pd.DataFrame, label_column: str) -> alt.Scale:
    """A colour scale giving every stage (label) the colour it has in Streak."""
    domain: list[str] = []
    colors: list[str] = []
    for index, (label, color) in enumerate(zip(frame[label_column], frame["color"])):
        if label in domain:
            continue
        domain.append(label)
        colors.append(chart_color(color, index))
    return alt.Scale(domain=domain, range=colors)


def unique_labels(names: pd.Series, keys: pd.Series) -> pd.Series:
    """Stage names made unique (two stages may share a name): "Won", "Won (5009)"."""
    names = names.astype(str)
    duplicated = names.duplicated(keep=False)
    return names.where(~duplicated, names + " (" + keys.astype(str) + ")")


def fmt_days(seconds: float | None) -> str:
    """A duration in seconds as days with one decimal ("3.5 d"); "–" when there is none."""
    if seconds is None or pd.isna(seconds):
        return "–"
    return f"{seconds / 86400:,.1f} d"


def fmt_pct(part: int, whole: int) -> str:
    """``part`` of ``whole`` as a percentage with one decimal; "–" of nothing."""
    return "–" if not whole else f"{100.0 * part / whole:.1f}%"


def with_period_end(frame: pd.DataFrame, grain: str, column: str = "period", fill: float = 0.85) -> pd.DataFrame:
    """``frame`` plus ``<column>_end``: where a bar for the period starting at ``column`` ends.

    Bars drawn from ``x`` to ``x2`` are as wide as their period (a day, a week from Monday, a
    month) whatever the time axis, with a small gap (``fill`` of the period) between neighbours.
    """
    start = frame[column]
    if grain == "month":
        end = start + pd.DateOffset(months=1)
    else:
        end = start + pd.Timedelta(days=7 if grain == "week" else 1)
    return frame.assign(**{f"{column}_end": start + (end - start) * fill})


def blank_missing_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Text columns (only text, or nothing) with empty cells where a value is missing (a table would
    print "None"); other columns keep their type, so a checkbox column stays one."""
    text = [c for c in frame.columns if pd.api.types.infer_dtype(frame[c], skipna=True) in ("string", "empty")]
    return frame.assign(**{c: frame[c].where(frame[c].notna(), "") for c in text}) if text else frame


def load_labels(finished: pd.Series) -> list[str]:
    """A label per load, by its end (UTC): "2026-12-07 01:46", with the seconds where two loads
    share a minute, and "(2)", "(3)" where they share a second too: every label names one load."""
    moments = pd.to_datetime(finished, utc=True)
    labels = [f"{m:%Y-%m-%d %H:%M}" for m in moments]
    labels = [f"{m:%Y-%m-%d %H:%M:%S}" if labels.count(label) > 1 else label for m, label in zip(moments, labels)]
    seen: dict[str, int] = {}
    unique = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        unique.append(label if seen[label] == 1 else f"{label} ({seen[label]})")
    return unique


def field_value(text: Any, number: Any, flag: Any, moment: Any) -> str:
    """A field value as a person reads it: its text as Streak shows it, else the number, the yes/no,
    the time (:func:`fmt_moment`); "–" for no value."""
    if is_present(text) and str(text) != "":
        return str(text)
    if is_present(number):
        value = float(number)
        return f"{value:,.0f}" if value.is_integer() else f"{value:,}"
    if is_present(flag):
        return "yes" if bool(flag) else "no"
    if is_present(moment):
        return fmt_moment(moment)
    return "–"


def fmt_moment(moment: Any) -> str:
    """A time in UTC as a table shows it: the date alone at midnight (a due date, a date field), else
    the date and the minute; "" for none."""
    if not is_present(moment):
        return ""
    at = pd.Timestamp(moment)
    at = at.tz_convert("UTC") if at.tzinfo else at
    return f"{at:%Y-%m-%d}" if (at.hour, at.minute, at.second, at.microsecond) == (0, 0, 0, 0) else f"{at:%Y-%m-%d %H:%M}"


def is_present(value: Any) -> bool:
    """Not None, NaN or NaT: a cell a query left empty is no value."""
    return not (value is None or (pd.api.types.is_scalar(value) and pd.isna(value)))
