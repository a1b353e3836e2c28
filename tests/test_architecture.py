"""The layers of mtlkit (CONTRIBUTING.md, "Layers") and no import cycles.

import-linter checks the contracts of pyproject.toml (a layers contract over mtlkit's
subpackages and an acyclic-siblings contract in every package); the contracts are shown to
break on a copy of the package with an upward import and a cycle. A package importing one of
its own modules that imports it back (what acyclic-siblings does not see) is checked here
with grimp, import-linter's graph.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

grimp = pytest.importorskip("grimp")
pytest.importorskip("importlinter")

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint_imports(cwd: Path, src: Path) -> subprocess.CompletedProcess:
    """``lint-imports`` with the contracts of ``cwd/pyproject.toml`` on the mtlkit in ``src``."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def module_cycles(graph) -> list[tuple[str, str]]:  # noqa: ANN001 (a grimp.ImportGraph)
    """Every direct import ``(a, b)`` where ``b`` also reaches ``a`` through imports."""
    return sorted(
        (module, imported)
        for module in graph.modules
        for imported in graph.find_modules_directly_imported_by(module)
        if graph.chain_exists(importer=imported, imported=module)
    )


def test_the_import_contracts_hold():
    result = _lint_imports(ROOT, ROOT / "src")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_an_upward_import_and_a_cycle_break_the_contracts(tmp_path):
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    package = tmp_path / "src" / "mtlkit"
    shutil.copytree(ROOT / "src" / "mtlkit", package, ignore=shutil.ignore_patterns("*.pyc"))
    with open(package / "models" / "base.py", "a") as fh:  # a function-level import counts
        fh.write("\n\ndef _upward():\n    from mtlkit.training import trainer  # noqa: F401\n")
    with open(package / "experiments" / "cells.py", "a") as fh:  # grid imports cells
        fh.write("\nfrom mtlkit.experiments import grid  # noqa: E402, F401\n")
    result = _lint_imports(tmp_path, tmp_path / "src")
    assert result.returncode == 1
    out = result.stdout
    assert "mtlkit.models is not allowed to import mtlkit.training" in out
    assert "mtlkit.models.base -> mtlkit.training.trainer" in out
    assert "No cycles are allowed in mtlkit.experiments." in out
    assert "2 broken" in out


def test_no_module_imports_itself_back():
    assert module_cycles(grimp.build_graph("mtlkit")) == []


def test_a_package_importing_its_own_plug_in_back_is_a_cycle():
    graph = grimp.ImportGraph()
    for module in ("pkg", "pkg.plugin", "pkg.other"):
        graph.add_module(module)
    graph.add_import(importer="pkg.plugin", imported="pkg")  # the plug-in reads the registry
    graph.add_import(importer="pkg.other", imported="pkg")
    assert module_cycles(graph) == []
    graph.add_import(importer="pkg", imported="pkg.plugin")  # the package re-exports it
    assert module_cycles(graph) == [("pkg", "pkg.plugin"), ("pkg.plugin", "pkg")]
