"""The README stays an entry point, the docs' links resolve, the generated tables cover the
registries, and docs/architecture.md names files that exist. (`make test` also builds the site
with `mkdocs build --strict`, which fails on a broken link, anchor or docstring.)"""

import importlib.util
import re
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
PAGES = sorted(DOCS.rglob("*.md"))

LINK = re.compile(r"!?\[[^\]]*\]\((?P<target>[^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"`[^`\n]*`")


def _hook():
    """docs/hooks/registry_tables.py, the MkDocs hook that writes the generated tables."""
    spec = importlib.util.spec_from_file_location(
        "registry_tables", DOCS / "hooks" / "registry_tables.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _prose(text: str) -> str:
    """Markdown without code blocks and code spans (where `](` is code, not a link)."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def _slug(heading: str) -> str:
    """A heading's anchor as MkDocs (and GitHub) make it."""
    text = re.sub(r"[^\w\s-]", "", heading.strip().lower().replace("`", ""))
    return re.sub(r"[\s]+", "-", text).strip("-")


def _anchors(page: Path) -> set[str]:
    headings = re.findall(r"^#{1,6} (.+)$", FENCE.sub("", page.read_text()), re.MULTILINE)
    return {_slug(h) for h in headings}


def _section(text: str, heading: str) -> str:
    """The text under ``heading`` up to the next heading of the same or a higher level."""
    level = heading.split(" ")[0]
    start = text.index(heading + "\n") + len(heading)
    end = re.search(rf"^#{{1,{len(level)}}} ", text[start:], re.MULTILINE)
    return text[start : start + end.start()] if end else text[start:]


def _first_column(table_text: str) -> list[str]:
    """The code-spanned names in the first column of a Markdown table's body rows."""
    rows = [line for line in table_text.splitlines() if line.startswith("| ")][1:]
    return [name for row in rows for name in re.findall(r"`([^`]+)`", row.split("|")[1])]


# ---- the README -------------------------------------------------------------------------------
def test_readme_is_an_entry_point_of_at_most_150_lines():
    lines = README.read_text().splitlines()
    assert len(lines) <= 150, f"README.md has {len(lines)} lines; move detail into docs/"
    text = README.read_text()
    assert "make demo" in text and "make test" in text  # the two set-up commands


def test_readme_lists_every_command():
    from mtlkit.cli.main import build_parser

    (sub,) = (a for a in build_parser()._actions if a.__class__.__name__ == "_SubParsersAction")
    text = README.read_text()
    missing = [name for name in sub.choices if f"`mtlkit {name}" not in text]
    assert missing == [], f"README.md's command table lacks: {missing}"


@pytest.mark.parametrize("page", [README, *PAGES], ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page):
    broken = []
    for match in LINK.finditer(_prose(page.read_text())):
        target = match["target"]
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.exists():
            broken.append(target)
        elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
            broken.append(f"{target} (no such heading)")
    assert broken == [], f"{page.relative_to(ROOT)}: broken links {broken}"


def test_link_checker_catches_a_broken_link(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Top\n[ok](page.md#top) [gone](missing.md) [bad](page.md#nowhere)\n")
    links = [m["target"] for m in LINK.finditer(_prose(page.read_text()))]
    assert links == ["page.md#top", "missing.md", "page.md#nowhere"]
    assert _anchors(page) == {"top"}
    assert not (tmp_path / "missing.md").exists()


# ---- tables generated from the registries -----------------------------------------------------
REGISTRY_PAGES = {
    "models": "models.md",
    "strategies": "training.md",
    "datasets": "datasets.md",
    "commands": "cli.md",
    "command-help": "cli.md",
}


def _registered() -> dict[str, list[str]]:
    from mtlkit import datasets
    from mtlkit.cli.main import build_parser
    from mtlkit.models import MODELS
    from mtlkit.training.strategies import STRATEGIES

    (sub,) = (a for a in build_parser()._actions if a.__class__.__name__ == "_SubParsersAction")
    return {
        "models": MODELS.names(),
        "strategies": STRATEGIES.names(),
        "datasets": list(datasets.available()),
        "commands": [f"mtlkit {name}" for name in sub.choices],
    }


@pytest.mark.parametrize("name", ["models", "strategies", "datasets", "commands"])
def test_generated_table_has_a_row_per_registry_entry(name):
    page = (DOCS / REGISTRY_PAGES[name]).read_text()
    marker = f"<!-- registry: {name} -->"
    assert marker in page, f"{REGISTRY_PAGES[name]} lost its {marker} line"
    rendered = _hook().render(page)
    assert marker not in rendered
    for entry in _registered()[name]:
        assert f"| `{entry}` |" in rendered, f"{entry} has no row in {REGISTRY_PAGES[name]}"


def test_generated_tables_show_settings_and_help():
    hook = _hook()
    models = hook.models_table()
    assert "`n_experts=8 (2 <= n_experts)`" in models  # mmoe's own hyperparameter
    assert "| `embedding_dim` |" in models  # the common ones, listed once
    assert "`order=round_robin (one of round_robin, proportional)`" in hook.strategies_table()
    help_text = hook.commands_help()
    assert "### `mtlkit compare`" in help_text and "--label-fractions" in help_text


def test_unknown_registry_marker_is_an_error():
    with pytest.raises(ValueError, match="unknown registry table 'modles'"):
        _hook().render("<!-- registry: modles -->")


def test_hand_written_model_guide_covers_exactly_the_registered_models():
    text = (DOCS / "models.md").read_text()
    guide = set(_first_column(_section(text, "## Choosing a model")))
    assert guide == set(_registered()["models"])


def test_strategy_families_name_only_registered_strategies():
    text = (DOCS / "training.md").read_text()
    named = set(_first_column(_section(text, "## Families")))
    assert named and named <= set(_registered()["strategies"])


def test_root_files_become_site_pages_with_site_links():
    hook = _hook()
    text = "[m](docs/methods.md) [b](BENCHMARKS.md#x) [c](CONTRIBUTING.md)"
    assert hook.root_page(text) == "[m](methods.md) [b](benchmarks.md#x) [c](contributing.md)"
    assert hook.site_links("see [B](../BENCHMARKS.md)") == "see [B](benchmarks.md)"


def test_sphinx_roles_become_optional_cross_references():
    html = ":func:<code>~mtlkit.load_tables</code>, :meth:<code>fit &lt;a.B.fit&gt;</code>"
    assert _hook().cross_references(html) == (
        '<autoref optional identifier="mtlkit.load_tables"><code>load_tables</code></autoref>, '
        '<autoref optional identifier="a.B.fit"><code>fit</code></autoref>'
    )


# ---- docs/architecture.md ---------------------------------------------------------------------
ARCHITECTURE = (DOCS / "architecture.md").read_text()


def test_where_things_live_names_files_and_definitions_that_exist():
    section = _section(ARCHITECTURE, "## Where does X live").splitlines()
    rows = [r for r in section if r.startswith("| ") and "`" in r]
    assert len(rows) > 30
    problems = []
    for row in rows:
        _, _what, file_cell, names_cell, _ = row.split("|")
        (path,) = re.findall(r"`([^`]+)`", file_cell)
        if not (ROOT / path).is_file():
            problems.append(f"{path}: no such file")
            continue
        source = (ROOT / path).read_text()
        for name in re.findall(r"`([^`]+)`", names_cell):
            defined = rf"^(class|def) {name}\b|^{name}\b[^=\n]*="
            if not re.search(defined, source, re.MULTILINE):
                problems.append(f"{path}: {name} is not defined there")
    assert problems == []


def test_layers_diagram_is_drawn_from_the_import_linter_contract():
    assert "<!-- registry: layers -->" in ARCHITECTURE
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    (contract,) = (c for c in config["tool"]["importlinter"]["contracts"] if c["id"] == "layers")
    diagram = _hook().layers_diagram()
    labels = re.findall(r'L\d+\["([^"]+)"\]', diagram)
    assert labels == [
        " | ".join(p.strip() for p in layer.split("|")) for layer in contract["layers"]
    ]
    assert labels[0] == "__main__" and labels[-1] == "errors"
    assert " --> ".join(f"L{i}" for i in range(len(labels))) in diagram
