"""MkDocs hook: the site's tables of models, strategies and data sets come from the registries.

A page asks for a table with a marker line, ``<!-- registry: models -->`` (or ``strategies``,
``datasets``); the hook replaces it at build time with a table read from
``mtlkit.models.MODELS``, ``mtlkit.training.strategies.STRATEGIES`` and
``mtlkit.datasets.available()``, the same entries ``mtlkit models -v``, ``mtlkit strategies
-v`` and ``mtlkit datasets`` print. So the site cannot disagree with the code.

``commands`` and ``command-help`` list the ``mtlkit`` commands and their ``--help`` from the
command's own parser; ``layers`` draws the layer order of the import-linter contract in
pyproject.toml, the one that ``make test`` enforces.

The hook also makes the repository's README.md the site's home page and puts BENCHMARKS.md and
CONTRIBUTING.md into the site, with their links rewritten for it (``docs/x.md`` -> ``x.md``),
so that docs pages link ``../BENCHMARKS.md``, which works on the repository's web view too.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: Repository files shown as site pages: file -> page.
ROOT_PAGES = {
    "README.md": "index.md",
    "BENCHMARKS.md": "benchmarks.md",
    "CONTRIBUTING.md": "contributing.md",
}

MARKER = re.compile(r"^<!-- registry: (?P<name>[a-z-]+) -->$", re.MULTILINE)


def _cell(text: object) -> str:
    """A value as the text of one Markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(header: Iterable[str], rows: Iterable[Iterable[object]]) -> str:
    header = list(header)
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _ordered(names: Iterable[str], first: str) -> list[str]:
    """``first``, then alphabetically: the order of ``mtlkit models`` / ``strategies``."""
    return sorted(names, key=lambda n: (n != first, n))


def _settings(entry, skip: Iterable[str] = ()) -> str:  # noqa: ANN001 - a registry Entry
    """An entry's own settings as ``name=default (range)`` code spans, as ``mtlkit models -v``
    shows them, then its fixed ones."""
    skip = set(skip)
    own = [f"`{p.describe()}`" for p in entry.params if p.name not in skip]
    fixed = [f"`{k}={v}` (fixed)" for k, v in entry.fixed.items()]
    return ", ".join(own + fixed) or "none"


def models_table() -> str:
    """Every registered model: its description (with the paper) and its own hyperparameters,
    then the hyperparameters every model shares."""
    from mtlkit.models import MODELS

    entries = MODELS.entries()
    common = [p.name for p in MODELS.common]
    rows = [
        (f"`{name}`", entries[name].description, _settings(entries[name], skip=common))
        for name in _ordered(entries, "single_task")
    ]
    shared = _table(
        ("hyperparameter", "default and range", "what it sets"),
        ((f"`{p.name}`", p.describe(), p.help) for p in MODELS.common),
    )
    return (
        _table(("model", "what it is", "hyperparameters (defaults)"), rows)
        + "\n\nEvery model also takes these:\n\n"
        + shared
    )


def strategies_table() -> str:
    """Every registered training strategy with its description and settings."""
    from mtlkit.training.strategies import STRATEGIES

    entries = STRATEGIES.entries()
    rows = [
        (f"`{name}`", entries[name].description, _settings(entries[name]))
        for name in _ordered(entries, "joint")
    ]
    return _table(("strategy", "what it does", "settings (defaults)"), rows)


def datasets_table() -> str:
    """Every built-in data set: tasks, size, source, and whether mtlkit fetches (or generates)
    the data itself or the user places the files."""
    from mtlkit.datasets import available

    sets = available()
    rows = [
        (
            f"`{name}`",
            sets[name].tasks,
            sets[name].size,
            sets[name].source,
            "automatic" if sets[name].download else "files you place",
        )
        for name in _ordered(sets, "synthetic")
    ]
    return _table(("name", "tasks", "size", "source", "data"), rows)


def _commands() -> dict[str, tuple[str, argparse.ArgumentParser]]:
    """``mtlkit``'s commands in ``--help`` order: name -> (one-line help, its parser)."""
    from mtlkit.cli.main import build_parser

    (sub,) = (a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return {a.dest: (a.help, sub.choices[a.dest]) for a in sub._choices_actions}


def commands_table() -> str:
    """Every ``mtlkit`` command with its one-line help, as ``mtlkit --help`` lists them."""
    rows = ((f"`mtlkit {name}`", about) for name, (about, _) in _commands().items())
    return _table(("command", "what it does"), rows)


def commands_help() -> str:
    """Each command's ``--help``, as a section with a code block."""
    os.environ["COLUMNS"] = "100"  # argparse wraps to the terminal's width
    return "\n\n".join(
        f"### `mtlkit {name}`\n\n```\n{parser.format_help().rstrip()}\n```"
        for name, (_, parser) in _commands().items()
    )


def layers_diagram() -> str:
    """The layers of the import-linter contract in pyproject.toml (id ``layers``), highest
    first, as a Mermaid flowchart: each layer may import the ones below it."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = config.get("tool", {}).get("importlinter", {}).get("contracts", [])
    layers = next((c["layers"] for c in contracts if c.get("id") == "layers"), None)
    if not layers:
        raise ValueError("pyproject.toml has no import-linter contract with id 'layers'")
    nodes = [
        f'    L{i}["{" | ".join(p.strip() for p in layer.split("|"))}"]'
        for i, layer in enumerate(layers)
    ]
    chain = " --> ".join(f"L{i}" for i in range(len(layers)))
    return "```mermaid\nflowchart TB\n" + "\n".join(nodes) + f"\n    {chain}\n```"


TABLES: dict[str, Callable[[], str]] = {
    "models": models_table,
    "strategies": strategies_table,
    "datasets": datasets_table,
    "commands": commands_table,
    "command-help": commands_help,
    "layers": layers_diagram,
}


def render(markdown: str) -> str:
    """``markdown`` with each registry marker replaced by its table (an unknown marker is an
    error naming the known ones)."""

    def table(match: re.Match) -> str:
        name = match["name"]
        if name not in TABLES:
            raise ValueError(f"unknown registry table {name!r}; known: {', '.join(TABLES)}")
        return TABLES[name]()

    return MARKER.sub(table, markdown)


def root_page(text: str) -> str:
    """A repository file's Markdown with its links rewritten for the site: ``docs/x.md`` ->
    ``x.md``, and the other repository files shown as pages to those pages."""
    text = re.sub(r"\]\(docs/", "](", text)
    for source, page in ROOT_PAGES.items():
        text = text.replace(f"]({source}", f"]({page}")
    return text


def site_links(text: str) -> str:
    """A docs page's links to repository files shown as pages (``../BENCHMARKS.md``), pointed
    at those pages."""
    for source, page in ROOT_PAGES.items():
        text = text.replace(f"](../{source}", f"]({page}")
    return text


#: A Sphinx cross-reference role left in a rendered docstring: ``:func:<code>~a.b</code>``
#: (``title <target>`` inside the backticks is escaped to ``&lt;target&gt;``).
ROLE = re.compile(r":(?:func|meth|class|mod|data|attr|exc):<code>(?P<ref>[^<]*)</code>")


def _reference(match: re.Match) -> str:
    """A role as an optional cross-reference: a link where the target is on the site (an API
    reference page), else the name as code."""
    ref = match["ref"]
    title, _, target = ref.partition(" &lt;")
    if target:  # :meth:`Trainer.fit <mtlkit.training.trainer.Trainer.fit>`
        target = target.removesuffix("&gt;")
    else:
        target = title = ref.lstrip("~")
        if ref.startswith("~"):
            title = target.rsplit(".", 1)[-1]
    return f'<autoref optional identifier="{target}"><code>{title}</code></autoref>'


def cross_references(html: str) -> str:
    """Rendered docstrings with their Sphinx roles (the docstrings' convention) turned into
    links for mkdocs-autorefs."""
    return ROLE.sub(_reference, html)


# ---- MkDocs events ---------------------------------------------------------------------------
def on_files(files, config):  # noqa: ANN001, ANN201 - MkDocs' hook signature
    from mkdocs.structure.files import File

    for source, page in ROOT_PAGES.items():
        content = root_page((ROOT / source).read_text(encoding="utf-8"))
        files.append(File.generated(config, page, content=content))
    return files


def on_page_markdown(markdown, page, config, files):  # noqa: ANN001, ANN201, ARG001
    return site_links(render(markdown))


def on_page_content(html, page, config, files):  # noqa: ANN001, ANN201, ARG001
    return cross_references(html)
