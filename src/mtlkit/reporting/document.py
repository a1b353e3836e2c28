"""The pages mtlkit writes (the comparison report, the task-affinity page) as one document
model: their content is built once as a :class:`Section` tree of blocks, and two renderers
walk it, :func:`to_html` (a self-contained page, images inlined) and :func:`to_markdown`.

Text in the model is plain: each renderer escapes every string it writes (HTML escaping in
:func:`to_html`, :func:`~mtlkit.markdown.md_escape` in :func:`to_markdown`), so user-given
names show as written and cannot inject markup or links.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from os.path import relpath
from pathlib import Path
from urllib.parse import quote

import pandas as pd

from mtlkit.markdown import md_escape


@dataclass(frozen=True)
class Paragraph:
    """A paragraph of text; a ``note`` is secondary (shown smaller and grey in HTML)."""

    text: str
    note: bool = False


@dataclass(frozen=True)
class Bullets:
    """A bulleted list, one string an item."""

    items: Sequence[str]


@dataclass(frozen=True)
class Table:
    """A table with a header row: ``frame``'s columns and its cells as text. ``ranked``: the
    rows are best first, the second and third columns name what is ranked (in HTML the first
    row is bold, the name columns left-aligned)."""

    frame: pd.DataFrame
    ranked: bool = False


@dataclass(frozen=True)
class Image:
    """A PNG file and its caption: inlined in HTML, linked (relative path) in Markdown."""

    caption: str
    path: Path


@dataclass(frozen=True)
class Code:
    """Text shown verbatim (a command, a configuration file)."""

    text: str
    language: str = ""


@dataclass
class Section:
    """A titled section: its blocks in order, sections among them nested one level deeper.
    The outermost section is the document (its title the page's)."""

    title: str
    blocks: list[Block] = field(default_factory=list)


Block = Paragraph | Bullets | Table | Image | Code | Section

#: One stylesheet for every page mtlkit writes.
STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;
margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.6em 0 1.4em;font-size:.88em}
th,td{border:1px solid #ddd;padding:.3em .6em;text-align:right}th{background:#f4f4f4}
table.ranked td:nth-child(2),table.ranked td:nth-child(3){text-align:left}
table.ranked tbody tr:first-child td{font-weight:600}
li{margin:.3em 0}.note{color:#666}
figure{margin:1em 0}img{max-width:100%;border:1px solid #eee}
figcaption{color:#555;font-size:.9em}pre{background:#f7f7f7;padding:.8em;overflow-x:auto}
"""


def to_html(document: Section) -> str:
    """``document`` as one self-contained HTML page (images inlined as base64, no network)."""
    head = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<link rel="icon" href="data:,">',
        f"<title>{html.escape(document.title)}</title><style>{STYLE}</style></head><body>",
    ]
    return "\n".join([*head, *_html(document, 1), "</body></html>"])


def _html(block: Block, level: int) -> list[str]:
    e = html.escape
    match block:
        case Section(title, blocks):
            deeper = min(level + 1, 6)
            return [
                f"<h{level}>{e(title)}</h{level}>",
                *(s for b in blocks for s in _html(b, deeper)),
            ]
        case Paragraph(text, note):
            return [f'<p class="note">{e(text)}</p>' if note else f"<p>{e(text)}</p>"]
        case Bullets(items):
            return ["<ul>" + "".join(f"<li>{e(item)}</li>" for item in items) + "</ul>"]
        case Table(frame, ranked):
            head = "".join(f"<th>{e(str(c))}</th>" for c in frame.columns)
            rows = "".join(
                "<tr>" + "".join(f"<td>{e(str(v))}</td>" for v in row) + "</tr>"
                for row in frame.itertuples(index=False)
            )
            kind = ' class="ranked"' if ranked else ""
            return [f"<table{kind}><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"]
        case Image(caption, path):
            data = base64.b64encode(path.read_bytes()).decode()
            return [
                f'<figure><img src="data:image/png;base64,{data}" alt="{e(caption)}">'
                f"<figcaption>{e(caption)} ({e(path.name)})</figcaption></figure>"
            ]
        case Code(text):
            return [f"<pre>{e(text)}</pre>"]
    raise TypeError(f"no HTML for a {type(block).__name__} block")


def to_markdown(document: Section, folder: Path) -> str:
    """``document`` as Markdown, to be written into ``folder`` (figures are linked by their
    path relative to it)."""
    return "\n\n".join(_markdown(document, 1, Path(folder))) + "\n"


def _markdown(block: Block, level: int, folder: Path) -> list[str]:
    e = md_escape
    match block:
        case Section(title, blocks):
            deeper = min(level + 1, 6)
            nested = (s for b in blocks for s in _markdown(b, deeper, folder))
            return ["#" * level + " " + e(title), *nested]
        case Paragraph(text):
            return [e(text)]
        case Bullets(items):
            return ["\n".join(f"- {e(item)}" for item in items)]
        case Table(frame):
            head = "| " + " | ".join(e(c) for c in frame.columns) + " |"
            rule = "|" + "|".join(" --- " for _ in frame.columns) + "|"
            rows = [
                "| " + " | ".join(e(v) for v in row) + " |" for row in frame.itertuples(index=False)
            ]
            return ["\n".join([head, rule, *rows])]
        case Image(caption, path):
            return [f"![{e(caption)}]({quote(Path(relpath(path, folder)).as_posix())})"]
        case Code(text, language):
            # The fence is longer than any run of backticks in the text.
            longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
            fence = "`" * max(3, longest + 1)
            return ["\n".join([fence + language, text, fence])]
    raise TypeError(f"no Markdown for a {type(block).__name__} block")
