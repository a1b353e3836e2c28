"""The one escaping rule for user-given text (column names, settings, commands) in the
Markdown files mtlkit writes: the comparison report and an exported model's README."""

from __future__ import annotations

import re

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]|#~])")


def md_escape(text: object) -> str:
    """``text`` as literal Markdown on one line: markup characters backslash-escaped, HTML
    characters as entities (a ``|`` cannot split a table row, a newline cannot end it)."""
    plain = " ".join(str(text).split())
    plain = plain.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MARKDOWN_SPECIAL.sub(r"\\\1", plain)
