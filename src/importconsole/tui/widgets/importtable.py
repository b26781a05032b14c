"""The monitor's list of imports: one line per import, drawn with render_line and cached per
import, so fifty imports moving several times a second cost a few lines of drawing, not a
DataTable re-render of every cell (that took seconds per key at 50 imports)."""

from __future__ import annotations

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from importconsole.operations.watch import ImportView, format_duration
from importconsole.tui.text import clip, shown

BAR_WIDTH = 8
# (title, width); the file name takes what is left.
COLUMNS = [("id", 5), ("state", 10), ("progress", 14), ("rows", 12), ("rows/s", 7), ("ETA", 6), ("who", 8),
           ("lock", 5)]
STATE_CLASSES = {
    "hung": "importtable--hung", "running": "importtable--running", "queued": "importtable--queued",
    "completed": "importtable--done", "completed_with_errors": "importtable--failed",
    "failed": "importtable--failed", "unlocked": "importtable--queued",
}


def progress_bar(view: ImportView) -> str:
    done = int(BAR_WIDTH * view.rows_processed / view.rows_total) if view.rows_total else 0
    return "█" * done + "░" * (BAR_WIDTH - done) + f" {view.percent:3.0f}%"


def cells(view: ImportView) -> list[str]:
    rate = "" if view.finished or view.rate is None else f"{view.rate:.1f}"
    eta = "" if view.finished or view.is_hung or view.eta_seconds is None else format_duration(view.eta_seconds)
    state = "HUNG" if view.is_hung else view.state.replace("completed_with_errors", "errors")
    return [str(view.import_id), state, progress_bar(view), f"{view.rows_processed}/{view.rows_total}", rate, eta,
            shown(view.created_by), "held" if view.holds_lock else "", shown(view.file_name)]


class ImportTable(ScrollView, can_focus=True):
    COMPONENT_CLASSES = {"importtable--header", "importtable--cursor", *STATE_CLASSES.values()}
    BINDINGS = [
        Binding("up", "move(-1)", "Up", show=False),
        Binding("down", "move(1)", "Down", show=False),
        Binding("pageup", "move(-10)", "Page up", show=False),
        Binding("pagedown", "move(10)", "Page down", show=False),
        Binding("home", "move(-100000)", "First", show=False),
        Binding("end", "move(100000)", "Last", show=False),
    ]

    cursor: reactive[int] = reactive(0, always_update=True)

    class Highlighted(Message):
        def __init__(self, view: ImportView | None) -> None:
            super().__init__()
            self.view = view

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.views: list[ImportView] = []
        self._lines: dict[int, tuple[ImportView, bool, int, Strip]] = {}  # id -> (view, cursor, width, strip)

    # -- data --------------------------------------------------------------------------------
    def set_views(self, views: list[ImportView], keep: int | None = None) -> None:
        """Show these imports; the cursor stays on `keep` (an import id) if given and present."""
        current = keep if keep is not None else self.selected_id
        self.views = views
        self.virtual_size = Size(self.size.width, len(views) + 1)
        ids = [v.import_id for v in views]
        if current in ids:
            self.cursor = ids.index(current)
        else:
            self.cursor = min(self.cursor, max(0, len(views) - 1))
        self.refresh()

    @property
    def selected_id(self) -> int | None:
        return self.views[self.cursor].import_id if 0 <= self.cursor < len(self.views) else None

    @property
    def selected(self) -> ImportView | None:
        return self.views[self.cursor] if 0 <= self.cursor < len(self.views) else None

    def move_cursor(self, row: int) -> None:
        self.cursor = max(0, min(row, len(self.views) - 1))

    def watch_cursor(self, old: int, new: int) -> None:
        top = int(self.scroll_y)
        visible = max(1, self.scrollable_content_region.height - 1)
        if new < top:
            self.scroll_to(y=new, animate=False)
        elif new >= top + visible:
            self.scroll_to(y=new - visible + 1, animate=False)
        self.refresh()
        self.post_message(self.Highlighted(self.selected))

    def action_move(self, rows: int) -> None:
        self.move_cursor(self.cursor + rows)

    def on_click(self, event) -> None:
        row = int(self.scroll_y) + event.y - 1  # line 0 is the header
        if 0 <= row < len(self.views):
            self.move_cursor(row)

    # -- drawing -----------------------------------------------------------------------------
    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        if y == 0:
            return self._row([title for title, _ in COLUMNS] + ["file"], self.get_component_rich_style("importtable--header"), width)
        index = int(self.scroll_y) + y - 1
        if index >= len(self.views):
            return Strip.blank(width, self.rich_style)
        view = self.views[index]
        is_cursor = index == self.cursor
        cached = self._lines.get(view.import_id)
        if cached and cached[0] == view and cached[1] == is_cursor and cached[2] == width:
            return cached[3]
        state = "hung" if view.is_hung else view.state
        style = self.get_component_rich_style(STATE_CLASSES.get(state, "importtable--queued"))
        if is_cursor:
            style = style + self.get_component_rich_style("importtable--cursor")
        strip = self._row(cells(view), style, width)
        self._lines[view.import_id] = (view, is_cursor, width, strip)
        return strip

    def _row(self, values: list[str], style: Style, width: int) -> Strip:
        parts = [clip(value, size - 1) + " " for value, (_, size) in zip(values, COLUMNS)]
        used = sum(size for _, size in COLUMNS)
        parts.append(clip(values[-1], max(0, width - used)))
        return Strip([Segment("".join(parts), style)]).extend_cell_length(width, style).crop(0, width)
