"""Every sentence the CLI says is true when read (issue 10, sections 2 and 4)."""

from __future__ import annotations

import asyncio
import json
import re
import time

from helpers.profiles import cli_env, profile_env
from helpers.sandbox import dataset, start_sandbox
from helpers.wait import wait_for
from helpers.workflows import count, course_file, hang, learners, submit

from importconsole.cli import main


def test_diagnose_on_a_stalled_running_import_says_how_long_it_has_not_moved_and_whether_that_is_hung(
        monkeypatch, tmp_path, capsys):
    with start_sandbox(dataset(users=learners(30)), rows_per_second=200) as lms:
        item = asyncio.run(submit(lms, course_file(30, bad_row=20), course="C-FIXED"))
        lms.wait_rows(item["id"], 19)
        time.sleep(1.5)
        cli_env(monkeypatch, tmp_path, lms, hung_after=1.0)
        main(["diagnose", str(item["id"])])
        out = capsys.readouterr().out
        assert f"Import {item['id']} (import.csv): running, 19/30 rows processed. It has not moved for " in out
        assert "(by the LMS's clock) and holds the course importer's lock: that counts as hung (hung after 1s" in out
        cli_env(monkeypatch, tmp_path, lms, hung_after=600.0)
        main(["diagnose", str(item["id"]), "--json"])
        data = json.loads(capsys.readouterr().out)
        assert data["hung"] is False and data["moved_ago"] >= 1.0
        assert "not hung yet (hung after 10m00s without progress while holding the lock)" in data["stall"]


def _env(tmp_path, lms) -> dict:
    import os

    return {**os.environ, **profile_env(tmp_path, lms, poll_interval=0.2, hung_after=30), "PYTHONUNBUFFERED": "1"}


def _interrupt_after(args: list[str], env: dict, ready: str, timeout: float = 20) -> tuple[int, str, str]:
    """Run the CLI, wait until stdout holds `ready`, press Ctrl+C (SIGINT), return (code, out, err)."""
    import signal
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "importconsole", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    out: list[str] = []

    def ready_line() -> bool:
        out.append(proc.stdout.readline())
        return ready in out[-1]

    try:
        wait_for(ready_line, timeout, 0, f"{ready!r} on stdout", show=lambda: "".join(out))
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, "".join(out) + rest, err


def test_ctrl_c_in_submit_watch_after_the_import_was_created_says_so_and_how_to_follow_it(tmp_path):
    with start_sandbox(dataset(users=learners(30)), rows_per_second=3) as lms:
        source = tmp_path / "in.csv"
        source.write_bytes(course_file(30))
        code, out, err = _interrupt_after(["submit", str(source), "--course", "C-FIXED", "--watch", "--yes"],
                                          _env(tmp_path, lms), "Import 1 created")
        assert code == 130, err
        assert "may or may not have reached the LMS" not in err
        assert "Import 1 was created on the LMS (the journal records it) and goes on there: follow it with " \
               "`importconsole watch 1`" in err
        assert "Traceback" not in err
        assert lms.db().execute("SELECT count(*) FROM imports").fetchone()[0] == 1


def test_ctrl_c_in_watch_says_the_import_goes_on_on_the_lms_and_how_to_follow_it(tmp_path):
    with start_sandbox(dataset(users=learners(30)), rows_per_second=3) as lms:
        item = asyncio.run(submit(lms, course_file(30), course="C-FIXED"))
        code, out, err = _interrupt_after(["watch", str(item["id"])], _env(tmp_path, lms), f"import {item['id']}")
        assert code == 130, err
        assert err.strip() == (f"Stopped watching. Nothing was changed: import {item['id']} goes on on the LMS. Follow "
                               f"again with `importconsole watch {item['id']}`, or see them all with `importconsole imports`.")
        assert lms.get_import(item["id"])["state"] == "running"


def test_a_second_recover_after_a_successful_one_lists_no_rows_to_add_by_hand(monkeypatch, tmp_path, capsys):

    with start_sandbox(dataset(users=learners(40)), rows_per_second=1000) as lms:
        item = asyncio.run(hang(lms, rows=40, bad_row=12))
        cli_env(monkeypatch, tmp_path, lms)
        assert main(["recover", str(item["id"]), "--yes"]) == 0
        first = capsys.readouterr().out
        reimport = int(first.rsplit("importconsole watch ", 1)[1].split("`")[0])
        lms.wait_import(reimport)
        assert main(["recover", str(item["id"])]) == 0  # nothing to confirm: nothing will be sent
        again = capsys.readouterr().out
        assert f"already done as import {reimport} (completed); nothing will be sent twice" in again
        assert "by hand" not in again and "will refuse" not in again
        assert lms.db().execute("SELECT count(*) FROM imports").fetchone()[0] == 2


def test_submit_on_a_folder_a_missing_file_and_a_workbook_says_what_it_is_exit_2(monkeypatch, tmp_path, capsys):
    with start_sandbox(dataset(), rows_per_second=200) as lms:
        cli_env(monkeypatch, tmp_path, lms)
        folder = tmp_path / "exports"
        folder.mkdir()
        assert main(["submit", str(folder), "--course", "C-FIXED"]) == 2
        err = capsys.readouterr().err
        assert "this is a folder, not a file" in err and "Traceback" not in err
        assert main(["submit", str(tmp_path / "nope.csv"), "--course", "C-FIXED"]) == 2
        assert "no such file" in capsys.readouterr().err
        book = tmp_path / "book.csv"
        book.write_bytes(b"PK\x03\x04" + b"\0" * 40)
        assert main(["submit", str(book), "--course", "C-FIXED"]) == 2
        err = capsys.readouterr().err
        assert "Excel workbook" in err and "then try again. Nothing was sent." in err
        assert ".." not in err.replace("...", "") and "byte offset 0" not in err
        assert main(["validate", str(book), "--offline"]) == 2
        assert "byte offset" not in capsys.readouterr().err
        assert lms.db().execute("SELECT count(*) FROM imports").fetchone()[0] == 0


def test_the_upload_bar_is_not_glued_to_the_refusal_that_follows_it(monkeypatch, tmp_path):
    import io
    import sys

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    with start_sandbox(dataset(users=learners(30)), rows_per_second=200) as lms:
        hung = asyncio.run(submit(lms, course_file(30, bad_row=5), course="C-FIXED"))  # holds the course lock
        lms.wait_rows(hung["id"], 4)
        cli_env(monkeypatch, tmp_path, lms)
        source = tmp_path / "second.csv"
        source.write_bytes(b"external_user_id,complete,date_completed,credit_type,credits\r\n"
                           b"u20,1,2026-01-02,,\r\nu21,1,2026-01-02,,\r\n")
        screen = Terminal()
        monkeypatch.setattr(sys, "stderr", screen)
        assert main(["submit", str(source), "--course", "C-FIXED", "--yes"]) in (1, 3)
    lines = screen.getvalue().split("\n")
    refusal = next(line for line in lines if "locked" in line)
    refusal = refusal.removeprefix("\x1b[?25h")  # the cursor, hidden while the bar was drawn, is shown again
    assert refusal.startswith("The course importer is locked") and "\r" not in refusal and "\x1b" not in refusal, lines
    assert any(re.search(r"Uploading (\x1b\[[0-9;]*m)*━", line) for line in lines), lines  # the bar (rich.progress)
    # The check before the upload read the whole file: its bar ends at 100 %, not at its last reported step.
    checked = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", next(line for line in lines if "Validating" in line))
    assert " 100% " in checked.split("\r")[-1], checked


def test_imports_never_cuts_a_course_id_silently(monkeypatch, tmp_path, capsys):
    from importconsole.importfile.wording import clip

    assert clip("LEGACY-2019", 10) == "LEGACY-20…" and clip("CARD-101", 10) == "CARD-101"
    courses = [{"external_id": "LEGACY-2019-BOARD-REVIEW", "title": "Legacy", "has_certificate": True,
                "required_objects": 1, "credits": [{"credit_type": "ama", "min": 1, "max": 2, "increments": 1,
                                                    "enable_variable_credit": False}]}]
    with start_sandbox(dataset(courses=courses, users=learners(2)), rows_per_second=200) as lms:
        item = asyncio.run(submit(lms, b"external_user_id,complete\r\nu1,1\r\n", course="LEGACY-2019-BOARD-REVIEW"))
        lms.wait_import(item["id"])
        cli_env(monkeypatch, tmp_path, lms)
        assert main(["imports"]) == 0
        out = capsys.readouterr().out
        assert "LEGACY-2019-BOA… " in out and "LEGACY-2019-BOAR " not in out


def test_fix_with_nothing_to_fix_says_so(tmp_path, capsys):
    source = tmp_path / "clean.csv"
    source.write_bytes(b"external_user_id,complete,date_completed\nu1,1,2026-01-02\n")
    assert main(["fix", str(source), "--out", str(tmp_path / "o.csv"), "--sanitize"]) == 0
    assert "Nothing needed fixing: the copy holds the same rows as the file" in capsys.readouterr().out
    dirty = tmp_path / "dirty.csv"
    dirty.write_bytes(b"external_user_id,complete,date_completed\nu1\xe2\x80\x8b,1,2026-01-02\n")
    assert main(["fix", str(dirty), "--out", str(tmp_path / "d.csv"), "--sanitize"]) == 0
    assert "Nothing needed fixing" not in capsys.readouterr().out


def test_an_import_id_the_lms_does_not_have_is_a_usage_error_not_an_lms_failure(monkeypatch, tmp_path, capsys):
    # Exit 3 means "the LMS could not be reached or refused us"; here it answered: there is no such import.
    with start_sandbox(dataset(users=learners(3)), rows_per_second=100) as lms:
        cli_env(monkeypatch, tmp_path, lms)
        for command in (["watch", "99"], ["diagnose", "99"], ["recover", "99", "--yes"]):
            assert main(command) == 2, command
            captured = capsys.readouterr()
            assert "There is no import 99." in captured.err and "importconsole imports" in captured.err, command
        assert count(lms, "SELECT count(*) FROM imports") == 0


def test_a_refused_token_from_the_environment_is_named_by_validate_and_fix_too(monkeypatch, tmp_path, capsys):
    # "Log in again" alone is no help: IMPORTCONSOLE_TOKEN wins over the keyring (imports, watch... said so).
    with start_sandbox(dataset(users=learners(3)), rows_per_second=100) as lms:
        cli_env(monkeypatch, tmp_path, lms)
        monkeypatch.setenv("IMPORTCONSOLE_TOKEN", "not-the-token")
        file = tmp_path / "roster.csv"
        file.write_bytes(course_file(3))
        original = file.read_bytes()
        for command in (["validate", str(file), "--course", "C-FIXED"],
                        ["fix", str(file), "--out", str(tmp_path / "out.csv"), "--completion-only", "--course", "C-FIXED"]):
            assert main(command) == 3, command
            err = capsys.readouterr().err
            assert "did not accept the API token (401)" in err, command
            assert "The secret came from IMPORTCONSOLE_TOKEN, which wins over the keyring" in err, command
            assert "not-the-token" not in err
        assert file.read_bytes() == original and not (tmp_path / "out.csv").exists()


def test_submit_refused_for_one_error_says_fix_it_not_fix_them(monkeypatch, tmp_path, capsys):
    with start_sandbox(dataset(users=learners(3)), rows_per_second=200) as lms:
        cli_env(monkeypatch, tmp_path, lms)
        file = tmp_path / "roster.csv"
        file.write_bytes(course_file(3, bad_row=2))
        assert main(["submit", str(file), "--course", "C-FIXED"]) == 1
        out = capsys.readouterr()
        said = out.out + out.err
        assert "has 1 error; nothing was sent. Fix it (" in said, said
        file.write_bytes(course_file(3, bad_row=2).replace(b"u3,", b"u3\xe2\x80\x8b,"))
        assert main(["submit", str(file), "--course", "C-FIXED"]) == 1
        out = capsys.readouterr()
        assert "has 2 errors; nothing was sent. Fix them (" in out.out + out.err
        assert count(lms, "SELECT count(*) FROM imports") == 0


def test_fix_completion_only_with_one_row_left_says_the_manifest_lists_it(monkeypatch, tmp_path, capsys):
    with start_sandbox(dataset(users=learners(2)), rows_per_second=200) as lms:
        cli_env(monkeypatch, tmp_path, lms)
        file = tmp_path / "roster.csv"
        file.write_bytes(course_file(2).replace(b"u1,1,2026-01-02,ama,1.0", b"u1,1,2026-01-02,ama,0.5"))
        original = file.read_bytes()
        main(["fix", str(file), "--out", str(tmp_path / "co.csv"), "--completion-only", "--course", "C-FIXED"])
        out = capsys.readouterr().out
        assert "1 row not fixed (the LMS would record other credit than the file says; the manifest lists it)" in out
        assert file.read_bytes() == original


def test_imports_calls_a_hung_import_hung_not_just_running(monkeypatch, tmp_path, capsys):
    # `diagnose` said "that counts as hung" while `imports --state running` listed it as plain "running".
    with start_sandbox(dataset(users=learners(30)), rows_per_second=200) as lms:
        item = asyncio.run(submit(lms, course_file(30, bad_row=20), course="C-FIXED"))
        lms.wait_rows(item["id"], 19)
        time.sleep(1.5)
        cli_env(monkeypatch, tmp_path, lms, hung_after=1.0)
        assert main(["imports", "--state", "running"]) == 0
        line = next(l for l in capsys.readouterr().out.splitlines() if l.split()[:1] == [str(item["id"])])
        assert "running (HUNG)" in line, line
        cli_env(monkeypatch, tmp_path, lms, hung_after=600.0)
        assert main(["imports"]) == 0
        line = next(l for l in capsys.readouterr().out.splitlines() if l.split()[:1] == [str(item["id"])])
        assert "running" in line and "HUNG" not in line, line


def test_recover_does_not_unlock_an_import_that_is_not_hung_yet(monkeypatch, tmp_path, capsys):

    with start_sandbox(dataset(users=learners(40)), rows_per_second=1000) as lms:
        item = asyncio.run(hang(lms, rows=40, bad_row=12))
        cli_env(monkeypatch, tmp_path, lms, hung_after=600.0)
        assert main(["diagnose", str(item["id"])]) == 0
        said = capsys.readouterr().out
        assert "Once it counts as hung, `importconsole recover" in said and "Fix:" not in said
        for command in ("recover", "unlock"):
            assert main([command, str(item["id"]), "--yes"]) == 1
            said = capsys.readouterr().out
            assert "is not hung, so it was not unlocked" in said and "not hung yet" in said, said
        assert lms.get_import(item["id"])["state"] == "running"
        assert count(lms, "SELECT count(*) FROM imports") == 1
        # The admin who knows it is dead says so: it is unlocked and the rest re-imported once.
        assert main(["recover", str(item["id"]), "--yes", "--hung-after", "1"]) == 0
        assert lms.get_import(item["id"])["state"] == "unlocked"
        assert count(lms, "SELECT count(*) FROM imports") == 2
