"""SIGTERM on the command line: one line from the process the user started, none from ranks."""

from __future__ import annotations

import argparse
import os
import signal

import pytest

from mtlkit.cli import main as cli_main
from mtlkit.processes import LAUNCHER_PID


@pytest.fixture
def terminated_command(monkeypatch):
    """``mtlkit models`` replaced by a command that receives SIGTERM while it runs."""

    def run(args: argparse.Namespace) -> int:
        os.kill(os.getpid(), signal.SIGTERM)
        raise AssertionError("SIGTERM did not stop the command")

    real = cli_main.build_parser

    def parser() -> argparse.ArgumentParser:
        built = real()
        for action in built._subparsers._group_actions:
            action.choices["models"].set_defaults(func=run)
        return built

    monkeypatch.setattr(cli_main, "build_parser", parser)


def test_sigterm_ends_a_command_in_one_line(terminated_command, monkeypatch, capsys):
    monkeypatch.delenv(LAUNCHER_PID, raising=False)
    assert cli_main.main(["models"]) == 128 + signal.SIGTERM
    assert capsys.readouterr().err.strip() == "mtlkit models: terminated (SIGTERM)"


def test_a_rank_stopped_by_its_launcher_prints_nothing(terminated_command, monkeypatch, capsys):
    # The launcher of `mtlkit train --nproc` stops the other ranks when one fails and prints
    # the one error line itself: a rank's "terminated" line would come before it.
    monkeypatch.setenv(LAUNCHER_PID, str(os.getppid()))
    assert cli_main.main(["models"]) == 128 + signal.SIGTERM
    assert capsys.readouterr().err == ""
