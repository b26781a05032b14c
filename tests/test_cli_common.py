"""The CLI's one plumbing (cli/common.py): one confirmation for every command that asks, every error
made visible before it reaches the terminal, one set of exit codes (issue 11, item 2)."""

from __future__ import annotations

import io
import sys

import pytest

from helpers.profiles import cli_env
from helpers.sandbox import dataset, start_sandbox
from helpers.workflows import count, learners

from importconsole.cli import main


class Terminal(io.StringIO):
    def isatty(self):
        return True


def on_a_terminal(monkeypatch, answer: str) -> Terminal:
    """stdin and stderr are a terminal; the admin types `answer`. Returns what stderr showed."""
    monkeypatch.setattr(sys, "stdin", Terminal(answer))
    screen = Terminal()
    monkeypatch.setattr(sys, "stderr", screen)
    return screen


# complete=1 and no date_completed: the completion-date-missing warning, which submit asks about.
NO_DATE = b"external_user_id,complete,date_completed\r\nu1,1,\r\nu2,1,\r\n"


@pytest.mark.parametrize("answer, sent", [("y\n", 1), ("yes\n", 1), ("n\n", 0), ("\n", 0)])
def test_submit_asks_on_the_terminal_and_only_yes_sends(monkeypatch, tmp_path, capsys, answer, sent):
    with start_sandbox(dataset(users=learners(2)), rows_per_second=1000) as lms:
        cli_env(monkeypatch, tmp_path, lms)
        source = tmp_path / "no-date.csv"
        source.write_bytes(NO_DATE)
        screen = on_a_terminal(monkeypatch, answer)
        code = main(["submit", str(source), "--course", "C-FIXED"])
        assert count(lms, "SELECT count(*) FROM imports") == sent
    shown = screen.getvalue()
    assert "Warnings:\n" in shown and "Submit no-date.csv anyway? [y/N] " in shown
    assert "Submit no-date.csv anyway?" not in capsys.readouterr().out  # stdout may be a log: the question is not there
    if sent:
        assert code == 0
    else:
        assert code == 1 and "Not submitted: 2 warnings to confirm; read them, then run again with --yes." in shown


def test_without_a_terminal_submit_asks_nothing_and_sends_nothing(monkeypatch, tmp_path, capsys):
    with start_sandbox(dataset(users=learners(2)), rows_per_second=1000) as lms:
        cli_env(monkeypatch, tmp_path, lms)
        source = tmp_path / "no-date.csv"
        source.write_bytes(NO_DATE)
        monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))  # piped input is not an answer
        assert main(["submit", str(source), "--course", "C-FIXED"]) == 1
        assert count(lms, "SELECT count(*) FROM imports") == 0
    err = capsys.readouterr().err
    assert "[y/N]" not in err and "Not submitted: 2 warnings to confirm" in err


def test_the_one_confirmation_asks_on_stderr_and_says_why_it_did_not_ask(monkeypatch, capsys):
    from importconsole.cli.common import NOT_ASKED, confirm

    assert confirm("Unlock import 3?", yes=True)  # --yes: nothing asked, nothing read
    assert capsys.readouterr() == ("", "")
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))
    assert not confirm("Unlock import 3?")
    assert capsys.readouterr().err == f"Unlock import 3?\n{NOT_ASKED}\n"
    screen = on_a_terminal(monkeypatch, "Y\n")
    assert confirm("Re-import rows 7-20 of import \x1b[2J3?")
    assert screen.getvalue() == "Re-import rows 7-20 of import <U+001B>[2J3? [y/N] "  # no escape reaches the screen


def test_an_error_quoting_a_path_reaches_the_screen_without_its_escape_sequence(tmp_path, capsys):
    """`validate` and `fix` printed some errors raw (file_cmds._err): a config path with an escape
    sequence in it could clear the admin's screen."""
    source = tmp_path / "roster.csv"
    source.write_bytes(b"external_user_id,complete\r\nu1,1\r\n")
    config = str(tmp_path / "\x1b[2Jcfg\x1b]0;owned\x07.toml")
    for command in (["validate", str(source)], ["fix", str(source), "--out", str(tmp_path / "o.csv"), "--completion-only"]):
        assert main(["--config", config, *command]) == 2
        err = capsys.readouterr().err
        assert "\x1b" not in err and "\x07" not in err, err
        assert "<U+001B>[2Jcfg<U+001B>]0;owned<U+0007>.toml" in err and "no config file here yet" in err


def test_exit_codes_are_defined_once():
    """cli/common.py spells the CLI's exit codes; no other CLI module assigns one (the core keeps the
    two it needs in lms/connect.py, and common.py takes those)."""
    import ast
    from pathlib import Path

    import importconsole.cli as cli
    from importconsole.cli import common
    from importconsole.lms import connect

    spelled = [(path.name, target.id) for path in Path(cli.__file__).parent.glob("*.py") if path.name != "common.py"
               for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.Assign)
               for target in ast.walk(node) if isinstance(target, ast.Name) and isinstance(target.ctx, ast.Store)
               and target.id.startswith("EXIT_")]
    assert spelled == []
    assert (common.EXIT_OK, common.EXIT_PROBLEM, common.EXIT_USAGE, common.EXIT_LMS, common.EXIT_INTERRUPTED) == (0, 1, 2, 3, 130)
    assert (common.EXIT_LMS, common.EXIT_SETUP) == (connect.EXIT_LMS, connect.EXIT_NO_SECRET)
