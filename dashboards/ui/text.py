"""Showing text that comes from Streak: always as text, never as Markdown, HTML or LaTeX.

Pipeline, stage, owner, field and box names are typed by whoever uses the Streak account. Every
Streamlit parameter that renders Markdown (``st.caption``, ``st.subheader``, ``st.markdown``,
``st.info``, metric and widget *labels*, ``help`` tooltips) gets them through :func:`md`, which
backslash-escapes every ASCII punctuation character (CommonMark allows that for all of them), so
``![x](http://host/p.png)`` stays those characters: no image fetch, no link, no ``$LaTeX$``, no
``:red[colour]``, no HTML. Escaping alone does not stop GitHub-style *autolinks* (Streamlit turns
``http://...``, ``www.`` and ``a@b.c`` in plain text into links after parsing), so :func:`md` also
puts an invisible WORD JOINER (U+2060) after a URL scheme and ``www`` and before ``@``: the text
reads the same, and nothing in it is a link. Parameters that Streamlit shows as plain text (selectbox/multiselect
*options*, dataframe cells, Altair chart text) take the raw string: escaping there would show
the backslashes.
"""

from __future__ import annotations

import re
from typing import Any, Final

_PUNCTUATION: Final = re.compile(r"([!-/:-@\[-`{-~])")
"""Every ASCII punctuation character (the ranges between digits and letters)."""
WORD_JOINER: Final = "\u2060"
_AUTOLINK: Final = re.compile(r"(?i)\b(https?|ftp|mailto|xmpp|www)(?=[:.])|(?=@)")
"""Where an autolink literal could start: after a scheme or ``www``, before ``@``."""


def md(value: Any) -> str:
    """``value`` as Markdown source that renders exactly its characters, on one line."""
    text = " ".join(str(value).split())  # a newline in a name must not start a Markdown block
    text = _AUTOLINK.sub(lambda m: (m.group(1) or "") + WORD_JOINER, text)
    return _PUNCTUATION.sub(r"\\\1", text)


def shorten(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters with "…" (chart titles: a long name must not crowd out the chart)."""
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"
