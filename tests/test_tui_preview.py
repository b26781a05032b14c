"""Preview and findings, as the admin meets them: any file opens at once, invisible characters
are shown, findings are grouped by rule and Enter lands on the cell."""

from __future__ import annotations

import time
from pathlib import Path

from importconsole.tui.app import ImportConsoleApp
from importconsole.tui.widgets.rowview import RowView
from helpers.tui import private_state, screen_text, wait_for, wait_for_text  # noqa: F401 (autouse fixture)

HEADER = b"external_user_id,first_name,last_name,complete,date_completed,credit_type,credits\r\n"


def write(path: Path, rows: list[str], header: bytes = HEADER) -> Path:
    path.write_bytes(header + "".join(r + "\r\n" for r in rows).encode("utf-8"))
    return path


def console(tmp_path: Path, path: Path, **kwargs) -> ImportConsoleApp:
    return ImportConsoleApp(workdir=tmp_path, open_path=path, theme_dirs=[], **kwargs)


async def test_preview_shows_the_file_facts_and_makes_header_spaces_and_invisible_characters_visible(tmp_path):
    header = "external_user_id ,first\u00a0name,last_name,complete\r\n".encode("utf-8")
    path = write(tmp_path / "spaces.csv", ["u1,Ana,Lee\u200b,1", "u2,José,王芳,0"], header=header)
    app = console(tmp_path, path)
    async with app.run_test(size=(80, 24)) as pilot:
        text = await wait_for_text(pilot, "2 rows ·")
        assert "spaces.csv · UTF-8 · comma · 2 rows · importer course-level" in text
        assert "external_user_id·" in text  # the trailing space that hangs the LMS importer
        assert "first<U+00A0>name" in text
        assert "Lee<U+200B>" in text
        assert "José" in text and "王芳" in text  # ordinary letters stay as they are


async def test_a_file_that_is_not_an_import_file_gets_a_sentence_not_a_traceback(tmp_path):
    path = tmp_path / "export.csv"
    path.write_bytes(b"PK\x03\x04" + b"\x00" * 200)
    app = console(tmp_path, path)
    async with app.run_test(size=(80, 24)) as pilot:
        text = await wait_for_text(pilot, "cannot be read as an import file")
        assert "Excel" in text or "workbook" in text
        assert "Traceback" not in text


async def test_a_large_file_shows_its_first_rows_at_once_and_jumps_to_the_last(tmp_path):
    path = tmp_path / "big.csv"
    rows = "".join(f"u{n},First{n},Last{n},1,2026-01-01,,\r\n" for n in range(1, 50_001))
    path.write_bytes(HEADER + rows.encode())
    app = console(tmp_path, path)
    async with app.run_test(size=(80, 24)) as pilot:
        started = time.perf_counter()
        await wait_for_text(pilot, "First1 ")
        assert time.perf_counter() - started < 2.0
        await wait_for_text(pilot, "50,000 rows", timeout=20)
        await pilot.press("end")
        text = await wait_for_text(pilot, "u50000 ")
        assert "row 50000 (line 50001)" in text
        await pilot.press("g")
        await pilot.press(*"12345", "enter")
        text = await wait_for_text(pilot, "row 12345 (line 12346) · external_user_id: u12345")
        assert "u12346 " in text


async def test_findings_are_grouped_by_rule_filtered_and_enter_shows_the_cell(tmp_path):
    rows = [f"u{n},First{n},Last{n},1,2026-01-0{n},," for n in range(1, 8)]
    rows[3] = "u4,First4,Last4,1,,,"  # completion-date-missing (warning)
    rows[5] = "u6,First6,La\u200bst6,1,2026-01-06,,"  # special-characters (error) at row 6, last_name
    path = write(tmp_path / "mixed.csv", rows)
    app = console(tmp_path, path, start_mode="findings")
    async with app.run_test(size=(100, 30)) as pilot:
        text = await wait_for_text(pilot, "errors", timeout=15)
        assert "7 rows" in text
        assert "special-characters ×1" in text and "completion-date-missing ×1" in text
        await pilot.press("e")
        text = await wait_for_text(pilot, "showing errors")
        assert "special-characters" in text and "completion-date-missing" not in text
        await pilot.press("a")
        await wait_for_text(pilot, "showing all")
        tree = app.screen.query_one("#findings-tree")
        leaf = next(node for rule in tree.root.children for node in rule.children
                    if node.data and node.data[0] == "finding" and node.data[1].rule == "special-characters")
        tree.move_cursor(leaf)
        await pilot.pause()
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.current_mode == "preview", what="the preview")
        grid = app.screen.query_one(RowView)
        await wait_for(pilot, lambda: (grid.cursor_row, grid.cursor_col) == (6, 2), what="the cursor on row 6, last_name")
        text = await wait_for_text(pilot, "row 6 (line 7) · last_name: La<U+200B>st6")


async def test_an_excel_unicode_text_file_previews_with_its_encoding_and_delimiter_named(tmp_path):
    path = tmp_path / "excel.txt"
    text = "external_user_id\tcomplete\tdate_completed\r\nu1\t1\t2026-01-01\r\nu2\t1\t2026-01-02\r\n"
    path.write_bytes(b"\xff\xfe" + text.encode("utf-16-le"))
    app = console(tmp_path, path)
    async with app.run_test(size=(80, 24)) as pilot:
        text = await wait_for_text(pilot, "2 rows ·")
        assert "UTF-16 LE with BOM · tab · 2 rows" in text
        assert "u2" in text and "2026-01-02" in text


async def test_the_findings_verdict_is_read_in_full_at_80_columns(tmp_path):
    rows = [f"u{n},First{n},Last{n},1,2026-01-0{n},," for n in range(1, 4)]
    rows[1] = "u2,First2,La\u200bst2,1,2026-01-02,,"  # an error
    app = console(tmp_path, write(tmp_path / "one-error.csv", rows), start_mode="findings")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for_text(pilot, "errors", timeout=15)
        # the wrapped status line is laid out a frame after its text is set: poll, then read
        await wait_for(pilot, lambda: "fix the errors before submitting (x writes a fixed copy)"
                       in " ".join(screen_text(app).split()), timeout=3, what="the verdict in full")


async def test_the_row_count_is_final_when_the_index_ends_while_the_status_line_is_written(tmp_path, monkeypatch):
    """The flaky shell test: the index thread ended between the status line ("1 row (counting...)")
    and the timer's "is it done?", and the timer stopped with "counting..." on screen for good.
    Here the index is held until the status line is written, then built to its end at that moment."""
    import threading

    from importconsole.tui.preview_source import PreviewSource

    release, built = threading.Event(), threading.Event()
    real_build = PreviewSource.build

    def held_build(source):
        release.wait(10)
        real_build(source)
        built.set()

    monkeypatch.setattr(PreviewSource, "build", held_build)
    path = write(tmp_path / "one.csv", ["u1,Ana,Lee,1,2026-01-01,,"])
    app = console(tmp_path, path, live=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for_text(pilot, "1 row (counting...)")
        screen = app.screen
        show_status = screen._show_status

        def status_then_index_ends():
            show_status()
            screen._show_status = show_status  # once
            release.set()
            built.wait(10)  # the index thread ends right after the status line was written

        screen._show_status = status_then_index_ends
        await wait_for(pilot, lambda: built.is_set(), what="the index built")
        text = await wait_for_text(pilot, "one.csv · UTF-8 · comma · 1 row · importer", timeout=5)
        assert "counting" not in text
