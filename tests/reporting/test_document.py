"""The document model's two renderers say the same thing: every heading, paragraph, list item,
table row, code block and figure of the HTML page is in the Markdown file, in the same order,
and the reverse; user-given text survives each renderer's escaping as written."""

from __future__ import annotations

import html
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import pandas as pd
import pytest

from mtlkit.cli.main import main
from mtlkit.reporting.document import (
    Bullets,
    Code,
    Image,
    Paragraph,
    Section,
    Table,
    to_html,
    to_markdown,
)

HOSTILE = "<img src=x onerror=alert(1)> | [click](http://e.x) *x* _y_ `z` #1 a\\b ~c & d"


def _plain(text: str) -> str:
    return " ".join(text.split())


class _HtmlUnits(HTMLParser):
    """The units of a page as (kind, text) pairs, text unescaped, in document order."""

    KINDS = {"p": "paragraph", "li": "item", "pre": "code", "figcaption": "figure"}
    KINDS |= {f"h{n}": f"heading{n}" for n in range(1, 7)}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.units: list[tuple[str, object]] = []
        self._open: str | None = None
        self._text: list[str] = []
        self._row: list[str] | None = None
        self._in_body = False

    def handle_starttag(self, tag, attrs):
        self._in_body |= tag == "body"
        if not self._in_body:
            return
        if tag == "tr":
            self._row = []
        elif tag in ("td", "th") or tag in self.KINDS:
            self._open, self._text = tag, []

    def handle_endtag(self, tag):
        if tag == "tr" and self._row is not None:
            self.units.append(("row", tuple(self._row)))
            self._row = None
        elif tag == self._open:
            text = "".join(self._text)
            if tag in ("td", "th"):
                self._row.append(_plain(text))
            else:
                kind = self.KINDS[tag]
                self.units.append((kind, text if kind == "code" else _plain(text)))
            self._open = None

    def handle_data(self, data):
        if self._open:
            self._text.append(data)


def _md_text(escaped: str) -> str:
    """Markdown text as it reads: backslash escapes resolved, then the HTML entities."""
    return _plain(html.unescape(re.sub(r"\\(.)", r"\1", escaped)))


def _md_cells(line: str) -> tuple[str, ...]:
    cells, current, chars = [], [], iter(line.strip()[1:-1])
    for char in chars:
        if char == "\\":
            current.append(char + next(chars))
        elif char == "|":
            cells.append("".join(current))
            current = []
        else:
            current.append(char)
    return tuple(_md_text(c) for c in [*cells, "".join(current)])


def _markdown_units(text: str) -> list[tuple[str, object]]:
    units: list[tuple[str, object]] = []
    lines = iter(text.splitlines())
    for line in lines:
        if line.startswith("```"):
            fence, body = re.match(r"`+", line).group(), []
            for inner in lines:
                if inner == fence:
                    break
                body.append(inner)
            units.append(("code", "\n".join(body)))
        elif heading := re.match(r"(#+) (.*)", line):
            units.append((f"heading{len(heading.group(1))}", _md_text(heading.group(2))))
        elif line.startswith("- "):
            units.append(("item", _md_text(line[2:])))
        elif line.startswith("|") and not line.startswith("| ---") and "--- |" not in line:
            units.append(("row", _md_cells(line)))
        elif image := re.fullmatch(r"!\[(.*)\]\(([^)]*)\)", line):
            name = Path(unquote(image.group(2))).name
            units.append(("figure", f"{_md_text(image.group(1))} ({name})"))
        elif line.strip() and not line.startswith("|"):
            units.append(("paragraph", _md_text(line)))
    return units


def _html_units(page: str) -> list[tuple[str, object]]:
    parser = _HtmlUnits()
    parser.feed(page)
    return parser.units


def test_both_renderers_show_every_block_and_user_text_as_written(tmp_path):
    png = tmp_path / "plots" / "a b+c.png"
    png.parent.mkdir()
    png.write_bytes(b"\x89PNG not really")
    frame = pd.DataFrame({"model": [HOSTILE, "mmoe"], "mean | std": ["0.5 ± 0.1", 3]})
    document = Section(
        f"Title {HOSTILE}",
        [
            Paragraph(f"Status {HOSTILE}", note=True),
            Section("List", [Bullets([HOSTILE, "plain"]), Paragraph("after\nthe list")]),
            Section(
                "Nested",
                [Section(f"Deeper {HOSTILE}", [Table(frame, ranked=True), Image(HOSTILE, png)])],
            ),
            Code("mtlkit compare x --labels 'a b' ``` ````"),
            Code(json.dumps({"k": HOSTILE}, indent=2), "json"),
        ],
    )
    page, markdown = to_html(document), to_markdown(document, tmp_path)
    units = _html_units(page)
    assert units == _markdown_units(markdown)
    assert units[0] == ("heading1", f"Title {_plain(HOSTILE)}")
    assert ("heading3", f"Deeper {_plain(HOSTILE)}") in units
    assert ("row", ("model", "mean | std")) in units and ("row", ("mmoe", "3")) in units
    assert ("row", (_plain(HOSTILE), "0.5 ± 0.1")) in units
    assert ("figure", f"{_plain(HOSTILE)} (a b+c.png)") in units
    assert ("code", "mtlkit compare x --labels 'a b' ``` ````") in units
    # Nothing the user wrote becomes markup in either output (code blocks show it verbatim).
    text = re.sub(r"```.*?```", "", markdown, flags=re.S)
    assert "<img src=x" not in page and "<img src=x" not in text
    assert not re.search(r"(?<!\\)\]\(http", text)
    assert "](plots/a%20b%2Bc.png)" in markdown  # linked relative to the Markdown file


def test_a_block_type_without_a_renderer_is_refused():
    with pytest.raises(TypeError, match="no HTML for a str block"):
        to_html(Section("t", ["not a block"]))
    with pytest.raises(TypeError, match="no Markdown for a str block"):
        to_markdown(Section("t", ["not a block"]), Path("."))


def test_report_html_and_markdown_hold_the_same_rows_verdicts_and_sentences(tmp_path, capsys):
    config = tmp_path / "grid.yaml"
    config.write_text(
        "data: synthetic\nn_rows: 300\nepochs: 1\nseeds: [0, 1]\n"
        f"models: [{{model: shared_bottom, label: {json.dumps(HOSTILE)}}}]\n"
    )
    out = tmp_path / "run"
    assert main(["compare", "--config", str(config), "--out", str(out), "--quiet"]) == 0
    capsys.readouterr()
    page = (out / "report.html").read_text()
    units = _html_units(page)
    assert units == _markdown_units((out / "report.md").read_text())
    rows = [cells for kind, cells in units if kind == "row"]
    verdicts = {row[11] for row in rows if len(row) == 14}  # the summary's 'vs single-task'
    assert verdicts == {"vs single-task", "not converged"}  # header + one epoch: no verdict
    assert any(row[1] == _plain(HOSTILE) for row in rows)
    summary = pd.read_csv(out / "summary.csv")
    assert len([r for r in rows if len(r) == 14]) == len(summary) + summary["task"].nunique()
    items = [text for kind, text in units if kind == "item"]
    assert any(text.startswith("python: ") for text in items)  # the environment
    assert any("did not converge within 1 epochs" in text for text in items)
    headings = [text for kind, text in units if kind.startswith("heading")]
    assert headings[:3] == [
        "mtlkit comparison: run",
        "Recommendation",
        "Summary: test roc_auc over seeds",
    ]
    assert {"Plots", "Reproduce", "Environment"} <= set(headings)
    assert page.count("<img ") == len([u for u in units if u[0] == "figure"]) > 3
