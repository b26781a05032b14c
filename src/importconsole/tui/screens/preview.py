"""Preview: the open import file, at once, whatever its size. The index grows in a thread
worker while the admin already reads the first screen."""

from __future__ import annotations

import threading
from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.timer import Timer
from textual.widgets import Input, Label, Static

from importconsole.lms.models import Importer
from importconsole.tui.screens.base import ConsoleModal, ConsoleScreen
from importconsole.tui.text import count, shown, shown_header, said
from importconsole.tui.widgets.rowview import RowView

IMPORTER_NAMES = {"course": "course-level", "global": "global (legacy, not in PARS)"}


class GoToRow(ConsoleModal[int | None]):
    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Go to row", classes="dialog-title", markup=False)
            yield Input(placeholder="row number (1 = first data row)", id="row", type="integer")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        try:
            self.dismiss(int(event.value))
        except ValueError:
            self.dismiss(None)


class PreviewScreen(ConsoleScreen):
    TITLE_TEXT = "Preview"
    BINDINGS = [
        Binding("v", "validate", "Validate"),
        Binding("s", "submit", "Submit"),
        Binding("g", "go_to", "Go to row"),
        Binding("i", "toggle_importer", "Importer"),
        Binding("o", "app.pick_course", "Course"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.path: Path | None = None
        self.source = None
        self._timer: Timer | None = None  # made on mount
        self._pending_jump: tuple[int, int | None] | None = None

    def compose(self) -> ComposeResult:
        yield from self.compose_title()
        yield Static("", id="preview-status", classes="status-line", markup=False)
        yield RowView(id="rows")
        yield Static("", id="cell-detail", classes="hint", markup=False)
        yield from self.compose_footer()

    def on_mount(self) -> None:
        self._timer = self.set_interval(0.2, self._tick, pause=True)
        self.watch(self.app, "choice", self._choice_changed, init=False)

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        self.sync()

    def on_unmount(self) -> None:
        if self.source is not None:
            self.source.cancel.set()  # quitting must not wait for a 1 GB index

    def sync(self) -> None:
        """Show the app's open file (if it changed) and jump where the findings asked."""
        if self.app.open_path is None:
            self._status("No file open. Press f for Files.")
            return
        if self.path != self.app.open_path:
            self.load(self.app.open_path)
        else:
            self._show_status()
        target = self.app.jump_to
        if target and self.source is not None:
            self.app.jump_to = None
            self.go_to_cell(*target)

    # -- loading -----------------------------------------------------------------------------
    def load(self, path: Path) -> None:
        if self.source is not None:
            self.source.cancel.set()
        self.path = Path(path)
        self.source = None
        self.query_one(RowView).set_source(None)
        detail = self.query_one("#cell-detail", Static)
        detail.update("")  # the previous file's refusal is not this file's
        detail.set_class(False, "problem")
        self._status(f"Opening {shown(self.path.name)} ...")
        self._open(self.path)

    @work(thread=True, exclusive=True, group="preview-open")
    def _open(self, path: Path) -> None:
        from importconsole.importfile.reader import ImportFileError
        from importconsole.tui.preview_source import PreviewSource

        try:
            source = PreviewSource(path)
        except ImportFileError as error:
            self.app.call_from_thread(self._refused, path, error)
            return
        except OSError as error:
            self.app.call_from_thread(self._refused, path, f"cannot open {path}: {error.strerror}")
            return
        drawn = threading.Event()
        self.app.call_from_thread(self._opened, path, source, drawn)
        drawn.wait(2.0)  # index after the first frame is on screen: it would slow that frame down
        source.build()

    def _refused(self, path: Path, error) -> None:
        if path != self.path:
            return
        self._status(f"{shown(path.name)} cannot be read as an import file")
        self.query_one("#cell-detail", Static).update(said(str(error)))
        self.query_one("#cell-detail").set_class(True, "problem")

    def _opened(self, path: Path, source, drawn: threading.Event) -> None:
        if path != self.path:
            source.cancel.set()
            drawn.set()
            return
        self.call_after_refresh(drawn.set)
        self.source = source
        self.query_one("#cell-detail").set_class(False, "problem")
        grid = self.query_one(RowView)
        grid.set_source(source)
        grid.focus()
        if self._timer is not None:
            self._timer.resume()
        self._show_status()
        self.sync()

    def _tick(self) -> None:
        source = self.source
        if source is None:
            return
        # Read once, before the status line: the index thread may end during this tick. Read again
        # after it, the timer stopped with "(counting...)" on screen for good (1 run in 6 under load).
        finished = source.done or source.error is not None
        self.query_one(RowView).rows_changed()
        self._show_status()
        if self._pending_jump is not None:
            self.go_to_cell(*self._pending_jump)
        if finished and self._timer is not None:
            self._timer.pause()
            if source.error:
                self.query_one("#cell-detail", Static).update(shown(source.error))
                self.query_one("#cell-detail").set_class(True, "problem")

    # -- status ------------------------------------------------------------------------------
    def _status(self, text: str) -> None:
        self.query_one("#preview-status", Static).update(text)

    def _show_status(self) -> None:
        source = self.source
        if source is None:
            return
        file = source.file
        rows = count(source.row_count(), "row") + ("" if source.done else " (counting...)")
        importer = IMPORTER_NAMES.get(self.app.importer, self.app.importer)
        course = f" -> {shown(self.app.course_external_id)}" if self.app.course_external_id else ""
        self._status(f"{shown(file.path.name)} · {file.encoding_label} · {file.delimiter_name} · {rows} · "
                     f"importer {importer}{course}")

    def on_row_view_cursor_moved(self, event: RowView.CursorMoved) -> None:
        if self.source is None or self.source.row_count() == 0:
            return
        header = self.source.header
        name = shown_header(header[event.column]) if event.column < len(header) else f"column {event.column + 1}"
        try:
            record = self.source.record(event.row)
            value = record.cells[event.column] if event.column < len(record.cells) else ""
            where = f"row {event.row} (line {record.line})"
        except Exception as error:
            value, where = f"cannot be shown: {error}", f"row {event.row}"
        self.query_one("#cell-detail", Static).update(f"{where} · {name}: {shown(value)}")

    # -- actions -----------------------------------------------------------------------------
    def go_to_cell(self, row: int, column: int | None = None) -> None:
        source = self.source
        if source is not None and row > source.row_count() and not (source.done or source.error):
            self._pending_jump = (row, column)  # not indexed yet: jump when the index gets there
            return
        self._pending_jump = None
        self.query_one(RowView).go_to(row, column)
        self.query_one(RowView).focus()

    def action_go_to(self) -> None:
        def jump(row: int | None) -> None:
            if row is not None:
                self.go_to_cell(row)

        self.app.push_screen(GoToRow(), jump)

    def action_validate(self) -> None:
        if self.path is not None:
            self.app.switch_mode("findings")

    def action_submit(self) -> None:
        if self.path is not None:
            self.app.action_submit()

    def _choice_changed(self) -> None:
        if self.is_active:  # a dialog's choice is shown when the admin is back here (on resume)
            self._show_status()

    def action_toggle_importer(self) -> None:
        self.app.report = None  # findings depend on the importer
        self.app.importer = "global" if self.app.importer == Importer.COURSE else "course"  # the status line follows
        if self.app.importer == Importer.GLOBAL:
            self.notify("The global importer is for legacy data: its records are NOT included in PARS reports.",
                        title="Global importer", severity="warning")
