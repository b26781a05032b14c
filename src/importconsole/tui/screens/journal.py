"""Journal: what this console did to the LMS, newest first (read from the local audit journal)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from importconsole.tui.screens.base import ConsoleScreen
from importconsole.tui.text import count, shown, said

if TYPE_CHECKING:
    from importconsole.journal import JournalEntry


def entry_details(entry: JournalEntry) -> str:
    """The whole entry, wrapped below the table (at 80 columns its last column is cut): what, on
    which file, importer and course, the LMS's sentence, and the file's folder."""
    head = [shown(entry.time)[:19].replace("T", " "), shown(entry.action), shown(entry.outcome)]
    if entry.import_id is not None:
        head.append(f"import {entry.import_id}")
    if entry.lms_user:
        head.append(f"by {shown(entry.lms_user)}")
    what = []
    if entry.file_path:
        rows = f" ({count(entry.row_count, 'row')})" if entry.row_count is not None else ""
        what.append(shown(Path(entry.file_path).name) + rows)
    if entry.importer:
        what.append(f"importer {shown(entry.importer)}")
    if entry.course_external_id:
        what.append(f"course {shown(entry.course_external_id)}")
    lines = [" · ".join(head)] + ([" · ".join(what)] if what else [])
    if entry.message:
        lines.append(shown(entry.message))
    if entry.file_path:
        lines.append(f"Folder: {shown(Path(entry.file_path).parent)}")
    return "\n".join(lines)


class JournalScreen(ConsoleScreen):
    TITLE_TEXT = "Journal"
    BINDINGS = [Binding("r", "reload", "Reload")]

    def __init__(self) -> None:
        super().__init__()
        self.entries: list[JournalEntry] = []  # as shown: newest first

    def compose(self) -> ComposeResult:
        yield from self.compose_title()
        yield Static("", id="journal-where", classes="hint", markup=False)
        yield DataTable(id="journal", cursor_type="row", zebra_stripes=True)
        yield Static("", id="journal-detail", markup=False)
        yield from self.compose_footer()

    def on_mount(self) -> None:
        table = self.query_one("#journal", DataTable)
        table.add_columns("when", "action", "outcome", "import", "file / details")

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        self.action_reload()

    def action_reload(self) -> None:
        session = self.app.session
        path = session.journal_path if session else None
        where = self.query_one("#journal-where", Static)
        where.update(f"Journal {path}" if path else "Journal: not connected yet")
        where.set_class(False, "problem")
        if path is not None:
            self._load(path)

    @work(thread=True, exclusive=True, group="journal")
    def _load(self, path) -> None:
        from importconsole.journal import Journal

        try:
            entries = list(Journal(path).entries()) if path.exists() else []
            problem = None
        except Exception as error:  # a damaged journal is reported, the console stays up
            entries, problem = [], f"the journal {path} cannot be read: {error}"
        self.app.call_from_thread(self._show, entries, problem)

    def _show(self, entries: list[JournalEntry], problem: str | None) -> None:
        table = self.query_one("#journal", DataTable)
        table.clear()
        self.entries = list(reversed(entries))
        if problem:
            self.notify(problem, severity="error")
        for entry in self.entries:
            file = entry.file_path
            what = Path(file).name if file else (entry.message or entry.course_external_id or "")
            table.add_row(*(Text(c) for c in (  # Text: a file name is never read as markup
                shown(entry.time)[:19].replace("T", " "),
                shown(entry.action),
                shown(entry.outcome),
                shown(entry.import_id or ""),
                shown(what),
            )))
        if problem:  # on the screen, not only in a passing toast; and never "nothing yet"
            where = self.query_one("#journal-where", Static)
            where.update(said(problem))
            where.set_class(True, "problem")
            table.add_row("", "unreadable", "", "", "see the line above")
        elif not entries:
            table.add_row("", "nothing yet", "", "", "submits, unlocks and re-imports are recorded here")
        self._show_detail()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_detail()

    def _show_detail(self) -> None:
        row = self.query_one("#journal", DataTable).cursor_row
        detail = self.query_one("#journal-detail", Static)
        detail.update(entry_details(self.entries[row]) if 0 <= row < len(self.entries) else "")
        detail.display = bool(self.entries)
