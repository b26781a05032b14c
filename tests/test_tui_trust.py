"""Issue 10 in the console: every sentence true when it is read, context kept with its file, nothing
written without a word. Each test reads what the admin sees, against the real reference LMS where
the LMS is part of it."""

from __future__ import annotations

from pathlib import Path

import pytest

from importconsole.tui.app import ImportConsoleApp
from importconsole.tui.session import LmsSession
from helpers.sandbox import dataset, start_sandbox
from helpers.tui import flat_text, private_state, screen_text, wait_for, wait_for_text  # noqa: F401 (autouse fixture)

HEADER = b"external_user_id,complete,date_completed,credit_type,credits\r\n"


def _session(server, tmp_path) -> LmsSession:
    return LmsSession(profile="test", base_url=server.base_url, token=server.admin_token,
                      journal_path=tmp_path / "journal.jsonl")


def _write(path: Path, *rows: bytes) -> Path:
    path.write_bytes(HEADER + b"".join(r + b"\r\n" for r in rows))
    return path


# -- 1. completion-only (X) never over-awards without saying so --------------------------------

async def test_X_shows_both_credits_and_leaves_a_row_the_lms_would_award_differently_unless_accepted(tmp_path):
    path = _write(tmp_path / "partial.csv",
                  b"u1,1,2026-01-01,ama,0.5",   # C-FIXED awards ama 1.0 on completion: not what the file says
                  b"u2,1,2026-01-02,ama,1.0")   # exactly what the LMS awards: completion-only is safe
    with start_sandbox(dataset()) as server:
        app = ImportConsoleApp(session=_session(server, tmp_path), workdir=tmp_path, open_path=path,
                               start_mode="findings", theme_dirs=[], state_folder=tmp_path / "state-here")
        app.course_external_id = "C-FIXED"
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: app.screen.report is not None, timeout=15, what="the findings")
            await pilot.press("X")
            await wait_for(pilot, lambda: "Esc: write nothing" in flat_text(app), timeout=15, what="the award dialog")
            text = flat_text(app)
            assert "[leave ] row 1 (u1 in C-FIXED): the file says 0.5 ama; the LMS will record 1 ama" in text
            assert "row 2" not in text  # row 2 gets what the file says: nothing to ask
            await pilot.press("enter")  # leave row 1 as it is
            fixed = tmp_path / "partial.fixed.csv"
            await wait_for(pilot, lambda: app.open_path == fixed, timeout=15, what="the fixed copy")
            assert fixed.read_bytes().splitlines()[1:] == [b"u1,1,2026-01-01,ama,0.5", b"u2,1,2026-01-02,,"]
            note = next(n.message for n in app._notifications if "Fixed copy written" in n.message)
            assert "(1 change)" in note and "Not fixed, left as they are: 1 row (1)" in note
            # Again, accepting what the LMS will record for row 1: both rows completion-only.
            app.open_file(path)
            await pilot.press("v")
            await wait_for(pilot, lambda: app.current_mode == "findings" and app.screen.report is not None
                           and Path(app.screen.report.path) == path, timeout=15, what="the findings again")
            assert app.course_external_id == "C-FIXED"  # still this file's course
            await pilot.press("X")
            await wait_for(pilot, lambda: "Esc: write nothing" in flat_text(app), timeout=15, what="the dialog")
            await pilot.press("space")
            await wait_for(pilot, lambda: "[ACCEPT] row 1" in flat_text(app), what="row 1 accepted")
            await pilot.press("enter")
            second = tmp_path / "partial.fixed-2.csv"
            await wait_for(pilot, lambda: app.open_path == second, timeout=15, what="the second copy")
            assert second.read_bytes().splitlines()[1:] == [b"u1,1,2026-01-01,,", b"u2,1,2026-01-02,,"]
        # What the console called fixed (row 2) is what the LMS records: the file's 1.0 ama, no more.
        created = server.submit(fixed.read_bytes(), course="C-FIXED", file_name=fixed.name).json()
        server.wait_import(created["id"])
        credit = server.db().execute(
            "SELECT c.credit_type, c.amount, c.source FROM credit_records c JOIN enrollments e ON e.id = c.enrollment_id "
            "JOIN users u ON u.id = e.user_id WHERE u.external_user_id = 'u2'").fetchall()
        assert [tuple(r) for r in credit] == [("ama", 1.0, "awarded")]


async def test_the_award_dialog_counts_rows_left_as_they_are_in_the_plural(tmp_path):
    path = _write(tmp_path / "partial.csv", b"u1,1,2026-01-01,ama,0.5", b"u2,1,2026-01-02,ama,0.5")
    with start_sandbox(dataset()) as server:
        app = ImportConsoleApp(session=_session(server, tmp_path), workdir=tmp_path, open_path=path,
                               start_mode="findings", theme_dirs=[], state_folder=tmp_path / "state-here")
        app.course_external_id = "C-FIXED"
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: app.screen.report is not None, timeout=15, what="the findings")
            await pilot.press("X")
            await wait_for(pilot, lambda: "rows accepted" in flat_text(app), timeout=15, what="the award dialog")
            assert "0 rows accepted, 2 rows left as they are." in flat_text(app)  # was "2 rows left as it is"
            await pilot.press("space")
            await wait_for(pilot, lambda: "1 row accepted, 1 row left as it is." in flat_text(app), what="row 1 accepted")
            await pilot.press("escape")
        assert not (tmp_path / "partial.fixed.csv").exists()


# -- 3. context stays with its file; nothing written without a word ----------------------------

async def test_a_course_picked_for_one_file_does_not_carry_over_to_the_next(tmp_path):
    first = _write(tmp_path / "card.csv", b"u1,1,2026-01-01,,")
    second = _write(tmp_path / "ethics.csv", b"u2,1,2026-01-02,,")
    with start_sandbox(dataset()) as server:
        app = ImportConsoleApp(session=_session(server, tmp_path), workdir=tmp_path, open_path=first, theme_dirs=[],
                               state_folder=tmp_path / "state-here")
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for_text(pilot, "card.csv · UTF-8")
            await pilot.press("o")
            await wait_for_text(pilot, "C-ZERO", timeout=10)
            await pilot.press(*"c-fixed", "enter")
            await wait_for_text(pilot, "importer course-level -> C-FIXED")
            app.open_file(second)
            text = await wait_for_text(pilot, "ethics.csv · UTF-8")
            assert "C-FIXED" not in text  # not the course picked for card.csv
            await pilot.press("s")
            await wait_for_text(pilot, "Submit ethics.csv")
            await wait_for(pilot, lambda: "C-ZERO" in screen_text(app), what="the courses listed")
            await pilot.press("ctrl+s")
            await wait_for_text(pilot, "Pick the course the records go to.")
            await pilot.press("escape")
            app.open_file(first)  # card.csv keeps its own course
            await wait_for_text(pilot, "card.csv · UTF-8")
            await wait_for_text(pilot, "-> C-FIXED")
        assert server.db().execute("SELECT count(*) FROM imports").fetchone()[0] == 0


async def test_a_valid_file_opened_after_an_unreadable_one_shows_no_old_error(tmp_path):
    workbook = tmp_path / "export.csv"
    workbook.write_bytes(b"PK\x03\x04" + b"\x00" * 200)  # an .xlsx renamed .csv
    good = _write(tmp_path / "good.csv", b"u1,1,2026-01-01,,")
    app = ImportConsoleApp(workdir=tmp_path, open_path=workbook, theme_dirs=[], live=False,
                           state_folder=tmp_path / "state-here")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for_text(pilot, "cannot be read as an import file")
        await wait_for(pilot, lambda: "then try again" in flat_text(app), what="the refusal in full")
        assert "Excel" in flat_text(app) and "byte offset 0" not in flat_text(app)
        app.open_file(good)
        await wait_for_text(pilot, "good.csv · UTF-8 · comma · 1 row ·")
        await pilot.pause(0.3)
        assert "Excel" not in screen_text(app) and "cannot be read" not in screen_text(app)


async def test_x_with_nothing_to_fix_says_so_and_writes_nothing_not_even_fixed_fixed(tmp_path):
    clean = _write(tmp_path / "clean.csv", b"u1,1,2026-01-01,,")
    app = ImportConsoleApp(workdir=tmp_path, open_path=clean, start_mode="findings", theme_dirs=[], live=False,
                           state_folder=tmp_path.parent / f"{tmp_path.name}-state")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.screen.report is not None, timeout=15, what="the findings")
        before = sorted(p.name for p in tmp_path.iterdir())
        await pilot.press("x")
        await wait_for(pilot, lambda: "Nothing in clean.csv that x can fix" in flat_text(app), timeout=15,
                       what="nothing to fix")
        assert "no copy written" in flat_text(app)
        assert sorted(p.name for p in tmp_path.iterdir()) == before
        # A fixed copy fixed again: nothing left to fix, so no clean.fixed.fixed.csv either.
        dirty = _write(tmp_path / "dirty.csv", b"u1\xe2\x80\x8b,1,2026-01-01,,")  # a zero-width space
        app.open_file(dirty)
        await pilot.press("v")
        await wait_for(pilot, lambda: app.current_mode == "findings" and app.screen.report is not None
                       and Path(app.screen.report.path) == dirty, timeout=15, what="the findings of dirty.csv")
        await pilot.press("x")
        fixed = tmp_path / "dirty.fixed.csv"
        await wait_for(pilot, lambda: app.open_path == fixed, timeout=15, what="the fixed copy")
        note = next(n.message for n in app._notifications if "Fixed copy written" in n.message)
        assert "(1 change)" in note
        await pilot.press("v")
        await wait_for(pilot, lambda: app.current_mode == "findings" and app.screen.report is not None
                       and Path(app.screen.report.path) == fixed, timeout=15, what="the findings of the copy")
        await pilot.press("x")
        await wait_for(pilot, lambda: "Nothing in dirty.fixed.csv that x can fix" in flat_text(app), timeout=15,
                       what="nothing left to fix")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "clean.csv", "dirty.csv", "dirty.fixed.csv", "dirty.fixed.csv.manifest.csv"]


def test_a_fixed_copy_of_a_fixed_copy_is_numbered_never_fixed_fixed(tmp_path):
    from importconsole.tui.screens.findings import _fixed_name

    (tmp_path / "a.fixed.csv").write_bytes(b"x")
    assert _fixed_name(tmp_path / "a.fixed.csv").name == "a.fixed-2.csv"
    assert _fixed_name(tmp_path / "a.csv").name == "a.fixed-2.csv"


# -- 4. every sentence true when it is read ---------------------------------------------------

async def test_ctrl_c_says_how_to_quit_in_plain_words_without_markup(tmp_path):
    app = ImportConsoleApp(workdir=tmp_path, start_mode="files", theme_dirs=[], live=False,
                           state_folder=tmp_path / "state-here")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("ctrl+c")
        await wait_for(pilot, lambda: app._notifications, what="the quit hint")
        text = " ".join(n.message for n in app._notifications)
        assert "Ctrl+C does not quit here: press q or ^q to quit" in text
        assert "[b]" not in text and "[/b]" not in text
        assert app.return_code is None  # still running


async def test_the_command_palette_finds_submit_from_the_monitor(tmp_path):
    path = _write(tmp_path / "a.csv", b"u1,1,2026-01-01,,")
    session = LmsSession(profile="prod", base_url="https://lms.example.org", token="not-a-real-token")
    app = ImportConsoleApp(workdir=tmp_path, session=session, start_mode="monitor", theme_dirs=[], live=False,
                           state_folder=tmp_path / "state-here")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("ctrl+p")
        await pilot.press(*"submit")
        await wait_for(pilot, lambda: "Submit the open file" in screen_text(app), what="submit in the palette")
        await pilot.press("enter")
        await wait_for(pilot, lambda: any("Open a file first" in n.message for n in app._notifications),
                       what="the palette ran submit")
        app.open_file(path)
        await wait_for(pilot, lambda: app.current_mode == "preview", what="the preview")
        await pilot.press("m", "ctrl+p")
        await pilot.press(*"submit")
        await wait_for(pilot, lambda: "Submit the open file" in screen_text(app), what="submit in the palette")
        await pilot.press("enter")
        await wait_for_text(pilot, "Submit a.csv")


async def test_counts_read_as_words_one_row_one_error(tmp_path):
    path = _write(tmp_path / "one.csv", b"u1\xe2\x80\x8b,1,,,")  # one error, one warning
    app = ImportConsoleApp(workdir=tmp_path, open_path=path, start_mode="findings", theme_dirs=[], live=False,
                           state_folder=tmp_path / "state-here")
    async with app.run_test(size=(100, 24)) as pilot:
        await wait_for(pilot, lambda: app.screen.report is not None, timeout=15, what="the findings")
        text = await wait_for_text(pilot, "1 row · 1 error · 1 warning")
        assert "1 rows" not in text and "1 errors" not in text and "1 warnings" not in text


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
async def test_the_global_importers_pars_caveat_is_read_whole_beside_a_long_file_name(tmp_path, size):
    path = _write(tmp_path / "2026-spring-board-review-cardiology-completions-final-v3.csv", b"u1,1,2026-01-01,,")
    app = ImportConsoleApp(workdir=tmp_path, open_path=path, theme_dirs=[], live=False,
                           state_folder=tmp_path / "state-here")
    async with app.run_test(size=size) as pilot:
        await wait_for_text(pilot, "1 row ·")
        await pilot.press("i")
        await wait_for(pilot, lambda: "importer global (legacy, not in PARS)" in flat_text(app), what="the caveat whole")
        assert "2026-spring-board-review-cardiology-completions-final-v3.csv" in flat_text(app)


async def test_a_long_file_name_in_the_monitor_ends_in_an_ellipsis_and_is_whole_in_the_detail_pane(tmp_path):
    from importconsole.operations.watch import ImportView

    name = "2026-spring-board-review-cardiology-completions-final-v3.csv"
    session = LmsSession(profile="prod", base_url="https://lms.example.org", token="not-a-real-token")
    app = ImportConsoleApp(workdir=tmp_path, session=session, start_mode="monitor", theme_dirs=[], live=False,
                           state_folder=tmp_path / "state-here")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        app.screen.show_views([ImportView(import_id=12, importer="course", state="running", rows_processed=3,
                                          rows_total=6, file_name=name, created_by="administrator-jane")], {}, "live")
        await pilot.pause()
        row = next(line for line in screen_text(app).splitlines() if line.startswith("12 "))
        assert row.rstrip().endswith("…") and "administrator-jane" not in row  # cut, with the mark
        assert name in flat_text(app) and "by administrator-jane" in flat_text(app)  # whole below


async def test_help_names_a_broken_theme_file_whole_however_long_its_folder(tmp_path):
    folder = tmp_path / ("a-very-long-folder-name-for-themes-" * 3) / "sub"
    folder.mkdir(parents=True)
    (folder / "my-broken-theme.toml").write_text("primary = 3\n")
    app = ImportConsoleApp(workdir=tmp_path, start_mode="files", theme_dirs=[folder], live=False,
                           state_folder=tmp_path / "state-here")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("question_mark")
        await wait_for_text(pilot, "Themes not loaded")
        lines = screen_text(app).splitlines()
        assert any("my-broken-theme.toml" in line for line in lines), "\n".join(lines)  # on one line, not folded


async def test_the_demos_colleague_import_is_hung_from_the_first_frame_and_the_demo_keeps_its_state_at_home(tmp_path):
    import asyncio

    from importconsole.tui.launch import demo_app, start_demo_server

    folder = tmp_path / "demo"
    folder.mkdir()
    server = await asyncio.to_thread(start_demo_server, folder)
    try:
        # hung_after 2 s: the console's own clock could not call it hung in the first 1.5 s
        app = await asyncio.to_thread(demo_app, server, hung_after=2.0)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: "HUNG: import 1 (m, then u)" in screen_text(app).splitlines()[0],
                           timeout=1.5, what="the title line saying HUNG at once")
            await pilot.press("m")
            await wait_for(pilot, lambda: app.current_mode == "monitor" and app.screen.views, what="the monitor")
            text = screen_text(app)
            assert "1 hung" in text and "running" not in text.splitlines()[3]  # the import's row says HUNG
            app.open_file(server.folder / "import-files" / "card-101-completions.csv")
            await pilot.press("c")
            await wait_for_text(pilot, "completion-only rows proposed", timeout=15)
            rows = [line for line in screen_text(app).splitlines() if " CARD-101 " in line and "complete " in line]
            # 1.5 moc_abim never shows as "moc_abim 1." at the edge: the cut is marked
            assert rows and all("moc_abim …" in line for line in rows), "\n".join(rows)
            await pilot.press("s")
            await wait_for(pilot, lambda: "Esc: change nothing" in flat_text(app), what="the confirmation")
            await pilot.press("t", "enter")
            await wait_for(pilot, lambda: "locked by import 1" in flat_text(app), timeout=20, what="the hung lock")
        state = folder / "state"
        assert "card-101-completions.csv" in (state / "state.toml").read_text()
        assert list(state.glob("credit-fix-*/credit-fix-report.csv"))
        mine = tmp_path / "state"  # the admin's own state dir (IMPORTCONSOLE_STATE_DIR): untouched
        assert not (mine / "state.toml").exists() and not list(mine.glob("credit-fix-*"))
    finally:
        server.stop()


async def test_a_finding_too_long_for_80_columns_ends_in_an_ellipsis_and_is_whole_in_the_detail_pane(tmp_path):
    path = _write(tmp_path / "nodate.csv", b"u1,1,,,")  # completion-date-missing: a long sentence
    app = ImportConsoleApp(workdir=tmp_path, open_path=path, start_mode="findings", theme_dirs=[], live=False,
                           state_folder=tmp_path / "state-here")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.screen.report is not None, timeout=15, what="the findings")
        await wait_for(pilot, lambda: any(line.startswith("└ row 1, date_completed") and line.rstrip().endswith("…")
                                          for line in screen_text(app).splitlines()), what="the cut line, marked")
        tree = app.screen.query_one("#findings-tree")
        leaf = next(n for rule in tree.root.children for n in rule.children if n.data and n.data[0] == "finding")
        tree.move_cursor(leaf)
        await wait_for(pilot, lambda: "next login date is used" in flat_text(app), what="the whole finding below")


async def test_X_without_a_course_asks_for_it_and_writes_nothing(tmp_path):
    path = _write(tmp_path / "partial.csv", b"u1,1,2026-01-01,ama,0.5")
    with start_sandbox(dataset()) as server:
        app = ImportConsoleApp(session=_session(server, tmp_path), workdir=tmp_path, open_path=path,
                               start_mode="findings", theme_dirs=[], state_folder=tmp_path.parent / "x-state")
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: app.screen.report is not None, timeout=15, what="the findings")
            await pilot.press("X")
            await wait_for(pilot, lambda: "X needs the course this file goes to" in flat_text(app), what="the course asked")
            assert "--course" not in flat_text(app)  # the console's key, not the CLI's option
    assert not list(tmp_path.glob("partial.fixed*"))


async def test_a_startup_sentence_ends_with_one_full_stop_never_try_again_dot_dot(tmp_path):
    app = ImportConsoleApp(workdir=tmp_path, theme_dirs=[], config_path=tmp_path / "config.toml", live=False,
                           startup_problem="Could not reach the LMS at lms.example.org: check the network, then try again.",
                           state_folder=tmp_path / "state-here")
    async with app.run_test(size=(100, 24)) as pilot:
        await wait_for(pilot, lambda: "then try again" in flat_text(app), what="why the console is not connected")
        assert "try again.." not in flat_text(app) and "then try again." in flat_text(app)


async def test_the_title_line_ends_in_an_ellipsis_when_the_address_does_not_fit(tmp_path):
    url = "https://continuing-education-lms.example-university.org"
    session = LmsSession(profile="production", base_url=url, token="not-a-real-token")
    app = ImportConsoleApp(workdir=tmp_path, session=session, start_mode="monitor", theme_dirs=[], live=False,
                           state_folder=tmp_path / "state-here")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        first = screen_text(app).splitlines()[0].rstrip()
        assert url not in first and first.endswith("…"), first
    async with ImportConsoleApp(workdir=tmp_path, session=session, start_mode="monitor", theme_dirs=[], live=False,
                                state_folder=tmp_path / "state-here").run_test(size=(120, 24)) as pilot:
        await pilot.pause()
        assert url in screen_text(pilot.app).splitlines()[0]


async def test_the_demo_welcome_says_the_colleagues_import_is_hung_only_while_it_is(tmp_path):
    import asyncio

    from importconsole.tui.launch import demo_app, start_demo_server

    folder = tmp_path / "demo"
    folder.mkdir()
    server = await asyncio.to_thread(start_demo_server, folder)
    try:
        app = await asyncio.to_thread(demo_app, server, hung_after=2.0)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: "A colleague's import 1 is hung: m (Monitor), then u." in flat_text(app),
                           what="the welcome naming the hung import")
            await pilot.press("m")
            await wait_for(pilot, lambda: app.current_mode == "monitor" and app.screen.selected_view() is not None
                           and app.screen.selected_view().is_hung, timeout=15, what="the hung import selected")
            await pilot.press("u")
            await wait_for(pilot, lambda: "Enter: unlock import 1" in flat_text(app), timeout=15, what="the plan")
            await pilot.press("enter")
            await wait_for(pilot, lambda: "Enter: back to the monitor" in flat_text(app), timeout=20, what="recovered")
            await pilot.press("enter")
            await wait_for(pilot, lambda: 1 not in app.hung_ids, timeout=15, what="import 1 no longer hung")
            await pilot.press("f")
            await wait_for(pilot, lambda: "A colleague's import 1 hung; it is unlocked now" in flat_text(app),
                           what="the welcome saying what became of it")
            text = flat_text(app)
            assert "is hung" not in text and "already hung" not in text
        assert server_import_state(server, 1) == "unlocked"
    finally:
        server.stop()


def server_import_state(server, import_id: int) -> str:
    import sqlite3

    with sqlite3.connect(server.folder / "lms.sqlite3") as db:
        return db.execute("SELECT state FROM imports WHERE id = ?", (import_id,)).fetchone()[0]
