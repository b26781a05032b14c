"""The whole way through against the real reference LMS: open a file, validate it with the LMS's
facts, write a fixed copy, submit it to a course picked by search, and watch it to completion.
The LMS database then holds exactly one import and every row once."""

from __future__ import annotations

import pytest

from importconsole.tui.app import ImportConsoleApp
from helpers.sandbox import dataset, start_sandbox
from helpers.tui import lms_session, screen_text, wait_for, wait_for_text

pytestmark = pytest.mark.usefixtures("private_state")  # tests/conftest.py: state and config in tmp_path


async def _check_before_sending(pilot, shown: str, name: str) -> None:
    """Once the file is read (`shown` on screen): s, its submit dialog, Ctrl+S (checked with the LMS's facts)."""
    await wait_for_text(pilot, shown)
    await pilot.press("s")
    await wait_for_text(pilot, f"Submit {name}")
    await pilot.press("ctrl+s")


async def test_open_validate_fix_submit_and_watch_to_completion(tmp_path):
    original = tmp_path / "completions.csv"
    original.write_bytes(b"external_user_id ,complete,date_completed\r\n"  # trailing space: hangs the LMS
                         + b"".join(f"u{n},1,2026-02-0{n}\r\n".encode() for n in range(1, 6)))
    with start_sandbox(dataset(), rows_per_second=100) as server:
        session = lms_session(server, tmp_path)
        app = ImportConsoleApp(session=session, workdir=tmp_path, open_path=original, theme_dirs=[])
        async with app.run_test(size=(100, 32)) as pilot:
            await wait_for_text(pilot, "5 rows")
            await pilot.press("v")
            text = await wait_for_text(pilot, "header-whitespace", timeout=15)
            assert "1 error ·" in text and "1 errors" not in text
            await pilot.press("x")
            fixed = tmp_path / "completions.fixed.csv"
            await wait_for(pilot, lambda: app.open_path == fixed and app.current_mode == "preview", timeout=15,
                           what="the fixed copy open in the preview")
            assert original.read_bytes().startswith(b"external_user_id ,")  # the original is never edited
            await wait_for_text(pilot, "completions.fixed.csv · UTF-8")
            await pilot.press("v")
            await wait_for_text(pilot, "0 errors", timeout=15)
            await pilot.press("s")
            await wait_for_text(pilot, "Submit completions.fixed.csv")
            await pilot.press(*"fixed")
            await wait_for_text(pilot, "C-FIXED  Fixed credit course")
            assert "C-VAR" not in screen_text(app)  # the search narrowed the list
            await pilot.press("ctrl+s")
            text = await wait_for_text(pilot, "Enter: submit", timeout=15)
            assert "File: completions.fixed.csv" in text
            assert "5 rows · course-level importer · course C-FIXED" in text
            assert server.db().execute("SELECT count(*) FROM imports").fetchone()[0] == 0  # nothing sent yet
            await pilot.press("enter")
            dialog = app.screen
            await wait_for(pilot, lambda: dialog.import_id is not None, timeout=15, what="the upload")
            await pilot.press("enter")
            await wait_for(pilot, lambda: app.current_mode == "monitor", what="the monitor")
            monitor = app.screen
            await wait_for(pilot, lambda: (v := monitor.selected_view()) is not None and v.import_id == dialog.import_id
                           and v.state == "completed", timeout=20, what="the import followed to completion")
            assert "5/5" in screen_text(app)
            await pilot.press("j")  # the journal names what this console did
            text = await wait_for_text(pilot, "completions.fixed.csv")
            assert "submit" in text and "created" in text and str(dialog.import_id) in text
        db = server.db()
        assert db.execute("SELECT count(*) FROM imports").fetchone()[0] == 1
        users = [r[0] for r in db.execute(
            "SELECT u.external_user_id FROM enrollments e JOIN users u ON u.id = e.user_id ORDER BY 1")]
        assert users == ["u1", "u2", "u3", "u4", "u5"]
        journal = (tmp_path / "journal.jsonl").read_text()
        assert "completions.fixed.csv" in journal and server.admin_token not in journal


def _marked(screen: str, label: str) -> bool:
    line = next(line for line in screen.splitlines() if label in line)
    return "●" in line.split(label)[0]


async def test_the_global_importer_warns_about_pars_before_anything_is_sent(tmp_path):
    path = tmp_path / "legacy.csv"
    path.write_bytes(b"external_user_id,external_course_id,title,complete,date_completed,credit_type,credits\r\n"
                     b"u1,C-FIXED,Fixed credit course,1,2026-01-01,ama,1.0\r\n")
    with start_sandbox(dataset(), rows_per_second=100) as server:
        session = lms_session(server, tmp_path)
        app = ImportConsoleApp(session=session, workdir=tmp_path, open_path=path, theme_dirs=[])
        async with app.run_test(size=(100, 32)) as pilot:
            await wait_for_text(pilot, "1 row ·")
            await pilot.press("s")
            text = await wait_for_text(pilot, "Submit legacy.csv")
            # the chosen importer is marked, not only coloured (16 colours, colour-blind admins)
            assert _marked(text, "course-level importer") and not _marked(text, "global importer")
            app.screen.query_one("#global").value = True
            text = await wait_for_text(pilot, "importer is for legacy data only")
            assert _marked(text, "global importer") and not _marked(text, "course-level importer")
            await pilot.pause()
            await pilot.press("ctrl+s")
            text = await wait_for_text(pilot, "Enter: submit", timeout=15)
            assert "global importer" in text and "PARS" in text
            assert "1 row · global importer" in text and "Enter: submit 1 row to" in text and "1 rows" not in text
            await pilot.press("escape")
            await wait_for(pilot, lambda: app.current_mode == "preview" and app.screen.__class__.__name__ == "PreviewScreen",
                           what="back to the preview")
        assert server.db().execute("SELECT count(*) FROM imports").fetchone()[0] == 0


async def test_picking_the_course_brings_in_the_rules_that_need_it(tmp_path):
    path = tmp_path / "partial.csv"
    path.write_bytes(b"external_user_id,complete,date_completed,credit_type,credits\r\n"
                     b"u1,1,2026-01-01,ama,0.5\r\n")
    with start_sandbox(dataset(), rows_per_second=100) as server:
        session = lms_session(server, tmp_path)
        app = ImportConsoleApp(session=session, workdir=tmp_path, open_path=path, start_mode="findings",
                               theme_dirs=[])
        async with app.run_test(size=(100, 32)) as pilot:
            text = await wait_for_text(pilot, "no course chosen", timeout=15)
            assert "partial-credit-not-variable" not in text
            await pilot.press("o")
            await wait_for_text(pilot, "C-VAR  Variable credit course")
            await pilot.press(*"fixed")
            await wait_for_text(pilot, "C-FIXED  Fixed credit course")
            await pilot.press("enter")
            text = await wait_for_text(pilot, "partial-credit-not-variable", timeout=15)
            assert app.course_external_id == "C-FIXED" and "no course chosen" not in text


async def test_a_submit_refused_because_another_import_holds_the_importer_says_how_to_go_on_here(tmp_path):
    path = tmp_path / "mine.csv"
    path.write_bytes(b"external_user_id,complete,date_completed\r\nu1,1,2026-02-01\r\n")
    with start_sandbox(dataset(), rows_per_second=2) as server:
        # a colleague's long import on another course holds the (site-wide) course importer
        busy = server.submit(b"external_user_id,complete,date_completed\r\n"
                             + b"".join(f"u{n % 5 + 1},1,2026-01-01\r\n".encode() for n in range(60)),
                             course="C-VAR", file_name="colleague.csv").json()
        session = lms_session(server, tmp_path)
        app = ImportConsoleApp(session=session, workdir=tmp_path, open_path=path, theme_dirs=[], live=False)
        app.course_external_id = "C-FIXED"
        async with app.run_test(size=(80, 24)) as pilot:
            await _check_before_sending(pilot, "1 row ·", "mine.csv")
            await wait_for_text(pilot, "Enter: submit", timeout=15)
            await pilot.press("enter")
            text = await wait_for_text(pilot, "Enter or Esc: close", timeout=15)
            said = " ".join(str(app.screen.query_one("#submit-summary").render()).split())
            assert f"locked by import {busy['id']}" in said
            assert f"Here: Esc, then m (Monitor); if import {busy['id']} is hung, select it and press u." in said
            assert "100%" not in text  # no full progress bar over a refusal
            await pilot.press("escape")
        assert server.db().execute("SELECT count(*) FROM imports").fetchone()[0] == 1  # only the colleague's


async def test_a_file_with_errors_is_refused_in_sentences_on_their_own_lines(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_bytes(b"external_user_id,complete,date_completed\r\nu1,yes,2026-02-01\r\n")
    with start_sandbox(dataset()) as server:
        session = lms_session(server, tmp_path)
        app = ImportConsoleApp(session=session, workdir=tmp_path, open_path=path, theme_dirs=[], live=False)
        app.course_external_id = "C-FIXED"
        async with app.run_test(size=(100, 32)) as pilot:
            await _check_before_sending(pilot, "1 row ·", "bad.csv")
            text = await wait_for_text(pilot, "Ctrl+S: check again", timeout=15)
            said = str(app.screen.query_one("#submit-summary").render())
            assert "nothing was sent" in said and "row 1 (line 2), column complete" in said
            assert "<U+000A>" not in text and len(said.splitlines()) > 1  # the core's line breaks kept
        assert server.db().execute("SELECT count(*) FROM imports").fetchone()[0] == 0


async def test_the_confirmation_says_what_the_lms_will_record_as_the_cli_does(tmp_path):
    # Issue 10: the submit confirmation reads importfile.award; the console's said only rows, importer, course.
    path = tmp_path / "completions.csv"
    path.write_bytes(b"external_user_id,complete,date_completed\r\nu1,1,2026-02-01\r\nu2,1,2026-02-02\r\n")
    with start_sandbox(dataset(), rows_per_second=100) as server:
        session = lms_session(server, tmp_path)
        app = ImportConsoleApp(session=session, workdir=tmp_path, open_path=path, theme_dirs=[])
        app.course_external_id = "C-FIXED"
        async with app.run_test(size=(80, 24)) as pilot:
            await _check_before_sending(pilot, "2 rows", "completions.csv")
            text = await wait_for_text(pilot, "Enter: submit", timeout=15)
            assert "2 rows · course-level importer · course C-FIXED" in text
            assert "each of 2 rows: the LMS will record 1 ama (awarded, reported to PARS)" in " ".join(text.split()), text
            await pilot.press("enter")
            dialog = app.screen
            await wait_for(pilot, lambda: dialog.import_id is not None, timeout=15, what="the upload")
        server.wait_import(dialog.import_id)
        credit = server.db().execute("SELECT credit_type, amount, source FROM credit_records ORDER BY id").fetchall()
        assert [tuple(r) for r in credit] == [("ama", 1.0, "awarded")] * 2
