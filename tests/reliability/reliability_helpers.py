"""The check every malformed input must pass: a non-zero exit with one clear line."""

from __future__ import annotations

from mtlkit.cli.main import main

LABELS = ["label0", "label1"]
#: Longest message a user should have to read for one mistake.
MAX_MESSAGE = 300


def run_cli(argv: list[str], capsys) -> tuple[int, str]:
    """Run ``mtlkit ARGV`` in this process: (exit code, everything printed)."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as done:  # argparse's own errors
        code = done.code
    out, err = capsys.readouterr()
    return code, out + err


def assert_clear_error(argv: list[str], capsys, needle: str) -> str:
    """The command fails, without a traceback, and its last line is one ``mtlkit CMD:
    error: ...`` message naming ``needle`` (the file, column or setting)."""
    code, printed = run_cli(argv, capsys)
    assert code not in (0, None), printed
    assert "Traceback" not in printed, printed
    message = printed.strip().splitlines()[-1]
    assert message.startswith("mtlkit ") and ": error: " in message, printed
    assert needle in message, message
    assert len(message) < MAX_MESSAGE, message
    return message
