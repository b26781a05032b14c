"""An unexpected error shows one sentence and writes a private report without local variables."""

import os
import stat

from importconsole import crash
from importconsole.cli import main


def test_unexpected_error_is_one_sentence_and_a_private_report(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("IMPORTCONSOLE_STATE_DIR", str(tmp_path))
    token = "tok-SECRET-1234567890"
    crash.register_secret(token)

    def explode(args):
        api_token = token  # a local the crash report must never show
        raise RuntimeError(f"boom while using {api_token}")

    import importconsole.cli as cli

    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    sub = next(a for a in parser._actions if a.dest == "command")
    explode_parser = sub.add_parser("explode")
    explode_parser.set_defaults(func=explode)

    assert main(["explode"]) == 70
    err = capsys.readouterr().err
    assert "unexpected problem" in err and "Traceback" not in err
    assert token not in err
    reports = list((tmp_path / "crashes").iterdir())
    assert len(reports) == 1
    body = reports[0].read_text()
    assert "RuntimeError" in body and token not in body
    assert stat.S_IMODE(os.stat(reports[0]).st_mode) == 0o600


def test_two_crashes_in_the_same_second_keep_both_reports(tmp_path, monkeypatch):
    monkeypatch.setenv("IMPORTCONSOLE_STATE_DIR", str(tmp_path))
    monkeypatch.setattr(crash.time, "strftime", lambda fmt, *a: "crash-20260101-000000")
    first = crash.write_crash_report(RuntimeError("first"))
    second = crash.write_crash_report(ValueError("second"))
    assert first != second
    assert "RuntimeError: first" in first.read_text() and "ValueError: second" in second.read_text()
    assert stat.S_IMODE(os.stat(second).st_mode) == 0o600
