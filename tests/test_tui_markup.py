"""Square brackets in a file name or a cell are text: Textual read a plain string as markup, so
`[red]` vanished and `[/b]` or `[link=a:b]` crashed the console (MarkupError) in the status lines,
toasts, tables and the recover plan."""

from __future__ import annotations

import pytest

from importconsole.tui.app import ImportConsoleApp
from helpers.sandbox import dataset, start_sandbox
from helpers.tui import lms_session, wait_for, wait_for_text

pytestmark = pytest.mark.usefixtures("private_state")  # tests/conftest.py: state and config in tmp_path

HEADER = "external_user_id,complete,date_completed\r\n"


async def test_a_file_named_with_brackets_opens_validates_and_is_fixed_without_a_crash(tmp_path):
    folder = tmp_path / "[link=a:b]files"  # as markup: a MarkupError
    folder.mkdir()
    path = folder / "cme[red]v2.csv"  # as markup: "cmev2.csv", red
    path.write_bytes((HEADER + "u1,1,2026-01-01\r\nu2\u200b[/bold],1,2026-01-02\r\n").encode())
    (folder / "evil\x1b[31mred\u202e.csv").write_bytes(HEADER.encode())  # a name is outside text too
    app = ImportConsoleApp(workdir=folder, start_mode="files", theme_dirs=[], live=False)
    async with app.run_test(size=(80, 24)) as pilot:
        text = await wait_for_text(pilot, "cme[red]v2.csv")
        assert "[link=a:b]files" in text
        assert "evil<U+001B>[31mred<U+202E>.csv" in text and "\x1b" not in text and "\u202e" not in text
        app.open_file(path)
        await wait_for(pilot, lambda: app.current_mode == "preview", what="the preview")
        text = await wait_for_text(pilot, "2 rows")
        assert "cme[red]v2.csv · UTF-8" in text and "[/bold]" in text
        await pilot.press("v")
        await wait_for(pilot, lambda: app.current_mode == "findings" and app.screen.report is not None,
                       timeout=15, what="the findings")
        await wait_for_text(pilot, "special-characters")
        await pilot.press("x")  # a fixed copy; its toast names the new file, brackets and all
        await wait_for(pilot, lambda: any("cme[red]v2" in n.message for n in app._notifications), timeout=15,
                       what="the toast naming the fixed copy")
        await wait_for(pilot, lambda: app.current_mode == "preview" and app.open_path != path, what="the fixed copy open")
        assert app.return_code is None  # still running: no crash screen


async def test_the_recover_plan_shows_a_cell_with_brackets_as_text(tmp_path):
    rows = ["u1,1,2026-01-01", "u2[/b]\u200b,1,2026-01-02", "u3,1,2026-01-03"]
    with start_sandbox(dataset(), rows_per_second=50) as server:
        session = lms_session(server, tmp_path)
        app = ImportConsoleApp(session=session, workdir=tmp_path, start_mode="monitor", theme_dirs=[], hung_after=1.0)
        async with app.run_test(size=(120, 40)) as pilot:
            hung = server.submit((HEADER + "".join(r + "\r\n" for r in rows)).encode(), course="C-FIXED",
                                 file_name="[red]x[bold].csv").json()  # no "/": the LMS keeps a name's last path part
            await wait_for_text(pilot, "Press u to unlock", timeout=15)
            await pilot.press("u")
            text = await wait_for_text(pilot, f"Enter: unlock import {hung['id']}", timeout=15)
            assert "[red]x[bold].csv" in text and "u2[/b]<U+200B>" in text
            await pilot.press("escape")
