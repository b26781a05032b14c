"""The monitor against the real reference LMS: watch to completion; a hung import stands out with
its row and cause; `u` then Enter unlocks and re-imports the remainder, every row exactly once."""

from __future__ import annotations

import os
import signal
import time

import pytest

from importconsole.tui.app import ImportConsoleApp
from helpers.sandbox import dataset, start_sandbox
from helpers.tui import flat_text, lms_session, screen_text, wait_for, wait_for_text

pytestmark = pytest.mark.usefixtures("private_state")  # tests/conftest.py: state and config in tmp_path

HEADER = "external_user_id,complete,date_completed\r\n"


def course_file(rows: list[str]) -> bytes:
    return (HEADER + "".join(r + "\r\n" for r in rows)).encode("utf-8")


def submit_hanging(server, rows: int, bad_row: int, file_name: str) -> dict:
    """`rows` completion rows in C-FIXED; row `bad_row` holds U+200B, where the importer hangs."""
    lines = [f"u{(n - 1) % 5 + 1}" + ("\u200b" if n == bad_row else "") + f",1,2026-01-0{(n - 1) % 9 + 1}"
             for n in range(1, rows + 1)]
    return server.submit(course_file(lines), course="C-FIXED", file_name=file_name).json()


def console(server, tmp_path, **kwargs) -> ImportConsoleApp:
    session = lms_session(server, tmp_path)
    return ImportConsoleApp(session=session, workdir=tmp_path, start_mode="monitor", theme_dirs=[], **kwargs)


def imported_users(server, course: str) -> list[str]:
    rows = server.db().execute(
        "SELECT u.external_user_id FROM enrollments e JOIN users u ON u.id = e.user_id "
        "JOIN courses c ON c.id = e.course_id WHERE c.external_id = ? ORDER BY u.external_user_id", (course,))
    return [r[0] for r in rows]


async def test_monitor_follows_an_import_to_completion(tmp_path):
    with start_sandbox(dataset(), rows_per_second=20) as server:
        app = console(server, tmp_path)
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for_text(pilot, "0 active")
            created = server.submit(course_file([f"u{n},1,2026-01-0{n}" for n in range(1, 6)]), course="C-FIXED",
                                    file_name="five.csv").json()
            await wait_for_text(pilot, "five.csv")
            text = await wait_for_text(pilot, "completed", timeout=15)
            assert f"{created['id']}" in text and "5/5" in text
            assert imported_users(server, "C-FIXED") == ["u1", "u2", "u3", "u4", "u5"]


async def _hang(pilot, server, app):
    hung = submit_hanging(server, 5, 3, "zwsp.csv")  # a zero-width space in row 3 hangs the LMS importer
    server.wait_rows(hung["id"], 2)
    await wait_for_text(pilot, "HUNG", timeout=15)
    await wait_for_text(pilot, "Stopped at row 3", timeout=15)
    await wait_for(pilot, lambda: "U+200B" in screen_text(app), timeout=15, what="the cause U+200B")
    return hung


async def test_a_hung_import_stands_out_with_its_row_and_cause(tmp_path):
    with start_sandbox(dataset(), rows_per_second=50) as server:
        app = console(server, tmp_path, hung_after=1.0)
        async with app.run_test(size=(80, 24)) as pilot:
            hung = await _hang(pilot, server, app)
            text = screen_text(app)
            assert "1 hung" in text and "course: locked by 1" in text
            view = app.screen.selected_view()
            assert view.import_id == hung["id"] and view.is_hung
            # the server still says running: only the console calls it hung
            assert server.get_import(hung["id"])["state"] == "running"


async def test_an_import_hung_before_the_console_opened_is_hung_on_the_first_sync(tmp_path):
    from importconsole.operations.watch import ImportWatcher

    with start_sandbox(dataset(), rows_per_second=50) as server:
        hung = submit_hanging(server, 5, 2, "early.csv")  # hangs at row 2, before any console is open
        server.wait_rows(hung["id"], 1)
        time.sleep(1.3)  # stalled longer than hung_after (1 s), by the server's clock
        app = console(server, tmp_path, hung_after=1.0)
        async with app.run_test(size=(80, 24)) as pilot:
            # The first sync alone (no resync, no poll of the watcher's own) knows it is hung.
            first = ImportWatcher(app.lms(), hung_after=1.0)
            await app.seed_watcher(first, app.lms())
            view = first.views[hung["id"]]
            assert view.is_hung and view.hung.stopped_at_row == 2
            # the monitor's own status line (the title line also says HUNG, from the app's watcher)
            await wait_for_text(pilot, "1 hung", timeout=5)


async def test_one_key_recovers_a_hung_import_and_every_row_is_imported_once(tmp_path):
    pytest.importorskip("importconsole.importfile.fixes", reason="recover sanitizes the remainder with importfile.fixes")
    with start_sandbox(dataset(), rows_per_second=50) as server:
        app = console(server, tmp_path, hung_after=1.0)
        async with app.run_test(size=(120, 40)) as pilot:
            hung = await _hang(pilot, server, app)
            await pilot.press("u")
            text = await wait_for_text(pilot, "Enter: unlock import", timeout=15)
            assert "rows 3-5" in text
            await pilot.press("enter")
            dialog = app.screen
            await wait_for(pilot, lambda: dialog.result_id is not None, timeout=15, what="the re-import")
            text = screen_text(app)
            assert "unlocked import 1" in text and "re-imported rows 3-5" in text
            await pilot.press("enter")
            reimport = app.screen.following
            assert reimport is not None and reimport != hung["id"]
            server.wait_import(reimport)
            await wait_for(pilot, lambda: app.screen.selected_view() is not None
                           and app.screen.selected_view().import_id == reimport
                           and app.screen.selected_view().finished, timeout=15, what="the re-import followed to its end")
            assert server.get_import(hung["id"])["state"] == "unlocked"
            # every row of the original file imported exactly once
            assert imported_users(server, "C-FIXED") == ["u1", "u2", "u3", "u4", "u5"]
            assert server.db().execute("SELECT count(*) FROM enrollments").fetchone()[0] == 5


async def test_the_monitor_stands_still_while_a_dialog_is_open_and_catches_up_after(tmp_path):
    with start_sandbox(dataset(), rows_per_second=20) as server:
        app = console(server, tmp_path)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for_text(pilot, "0 active")
            rows = [f"u{n % 5 + 1},1,2026-01-01" for n in range(40)]
            created = server.submit(course_file(rows), course="C-FIXED", file_name="slow.csv").json()
            monitor = app.screen
            await wait_for(pilot, lambda: any(v.import_id == created["id"] and v.rows_processed > 0
                                              for v in monitor.views), what="the import moving")
            await pilot.press("question_mark")  # a dialog over the monitor
            await pilot.pause(0.3)
            painted = [(v.import_id, v.rows_processed) for v in monitor.views]
            server.wait_rows(created["id"], painted[0][1] + 5)
            await pilot.pause(0.5)
            assert [(v.import_id, v.rows_processed) for v in monitor.views] == painted
            await pilot.press("escape")
            await wait_for(pilot, lambda: [(v.import_id, v.rows_processed) for v in monitor.views] != painted,
                           what="the monitor catching up")


async def test_the_recover_plan_title_and_header_agree_when_an_import_turns_hung_under_the_dialog(tmp_path):
    """`u` pressed while the import is stalled but not yet hung; it turns hung with the dialog open.
    The title line, the monitor header under the dialog and the plan all read the watcher's verdict."""
    with start_sandbox(dataset(), rows_per_second=50) as server:
        app = console(server, tmp_path, hung_after=3.0)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for_text(pilot, "0 active")
            hung = submit_hanging(server, 5, 3, "zwsp.csv")
            server.wait_rows(hung["id"], 2)
            monitor = app.screen
            await wait_for(pilot, lambda: any(v.import_id == hung["id"] and v.holds_lock and not v.is_hung
                                              for v in monitor.views), what="the import stalled, lock held")
            await pilot.press("u")
            await wait_for_text(pilot, f"Not hung: import {hung['id']}", timeout=15)
            await wait_for(pilot, lambda: hung["id"] in app.hung_ids, timeout=15, what="the watcher's hung verdict")
            await pilot.pause(0.3)
            text = screen_text(app)
            assert f"HUNG: import {hung['id']}" in text
            assert "Not hung" not in text and f"Enter: unlock import {hung['id']}" in text
            assert "1 hung" in text and "0 hung" not in text
            await pilot.press("escape")
            await wait_for(pilot, lambda: "HUNG" in screen_text(app).splitlines()[3], what="the row says HUNG")
            text = screen_text(app)
            assert "1 hung" in text and f"HUNG: import {hung['id']}" in text


async def test_the_recover_plan_opened_while_the_import_still_moves_follows_it_until_it_hangs(tmp_path):
    """`u` on an import that still moves: the plan is made again each time it moves, Enter waits for
    the watcher's hung verdict, and then unlocks (never "It is not hung, NOT unlocked" under HUNG)."""
    with start_sandbox(dataset(), rows_per_second=4) as server:
        app = console(server, tmp_path, hung_after=1.5)
        async with app.run_test(size=(100, 32)) as pilot:
            await wait_for_text(pilot, "0 active")
            # Row 16 of 20 hangs it: about 3 s of moving after the first rows, so the first plan is made
            # while it still moves even on a loaded machine (row 8 at 4 rows/s was reached first, 1 run in 3).
            hung = submit_hanging(server, 20, 16, "slow.csv")
            monitor = app.screen
            await wait_for(pilot, lambda: any(v.import_id == hung["id"] and v.holds_lock and 0 < v.rows_processed < 5
                                              for v in monitor.views), timeout=15, what="the import moving")
            await pilot.press("u")
            dialog = app.screen
            await wait_for(pilot, lambda: dialog.plan is not None, timeout=15, what="the first plan")
            assert dialog.plan.rows_committed < 15
            await pilot.press("enter")  # not hung yet: nothing is unlocked
            await pilot.pause(0.3)
            assert server.get_import(hung["id"])["state"] == "running"
            await wait_for(pilot, lambda: hung["id"] in app.hung_ids, timeout=20, what="the hung verdict")
            await wait_for(pilot, lambda: dialog.plan is not None and dialog.plan.rows_committed == 15
                           and f"Enter: unlock import {hung['id']} and re-import rows 16-20" in flat_text(app),
                           timeout=15, what="the plan made again where it stopped")
            assert "Not hung" not in flat_text(app)
            await pilot.press("enter")
            await wait_for(pilot, lambda: dialog.result_id is not None, timeout=15, what="the re-import")
            assert "NOT unlocked" not in flat_text(app)
        assert server.get_import(hung["id"])["state"] == "unlocked"


async def test_recover_on_a_frozen_lms_says_how_long_it_has_not_answered_then_finishes_once(tmp_path):
    """A trial: on an LMS that takes the connection and sends nothing (SIGSTOP), the dialog said
    "Working... (the LMS is being changed; wait)" for three minutes without another word."""
    with start_sandbox(dataset(), rows_per_second=50) as server:
        app = console(server, tmp_path, hung_after=1.0)
        async with app.run_test(size=(100, 32)) as pilot:
            await wait_for_text(pilot, "0 active")
            hung = submit_hanging(server, 10, 8, "frozen.csv")
            await wait_for(pilot, lambda: hung["id"] in app.hung_ids, timeout=20, what="the hung verdict")
            await pilot.press("u")
            dialog = app.screen
            await wait_for(pilot, lambda: dialog.plan is not None and not dialog.busy, timeout=15, what="the plan")
            os.kill(server.process.pid, signal.SIGSTOP)
            try:
                await pilot.press("enter")
                await wait_for(pilot, lambda: "the LMS has not answered for" in flat_text(app), timeout=15,
                               what="the wait said")
                assert "never sends a change twice" in flat_text(app)
            finally:
                os.kill(server.process.pid, signal.SIGCONT)
            await wait_for(pilot, lambda: dialog.result_id is not None, timeout=40, what="the re-import")
            assert "has not answered" not in flat_text(app)
        assert server.get_import(hung["id"])["state"] == "unlocked"
        assert server.db().execute("SELECT COUNT(*) FROM imports").fetchone()[0] == 2  # one re-import, not two
