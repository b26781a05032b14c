"""The preview grid: renders only the rows on screen (ScrollView.render_line), reading each one
through the import-file engine's row index. A 1 GB file opens as fast as a 100-row one; a
DataTable would load every row first (seconds at 10k rows)."""

from __future__ import annotations

from typing import Protocol

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding
from textual.cache import LRUCache
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from importconsole.tui.text import clip, shown, shown_header

MAX_COLUMN_WIDTH = 28
WIDTH_SAMPLE_ROWS = 50
CACHED_ROWS = 2000  # parsed rows kept: scrolling back and forth reads no row twice


class RowSource(Protocol):
    """What the grid needs from an opened file (importconsole.tui.preview_source.PreviewSource)."""

    header: list[str]

    def row_count(self) -> int: ...  # rows found so far (grows while indexing)

    def cells(self, row: int) -> list[str]: ...  # row 1 = first data row


class RowView(ScrollView, can_focus=True):
    COMPONENT_CLASSES = {"rowview--header", "rowview--gutter", "rowview--cursor", "rowview--cursor-row"}
    BINDINGS = [
        Binding("up", "move(-1, 0)", "Up", show=False),
        Binding("down", "move(1, 0)", "Down", show=False),
        Binding("left", "move(0, -1)", "Left", show=False),
        Binding("right", "move(0, 1)", "Right", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown,space", "page(1)", "Page down", show=False),
        Binding("home", "edge(-1)", "First row", show=False),
        Binding("end", "edge(1)", "Last row", show=False),
    ]

    cursor_row: reactive[int] = reactive(1)
    cursor_col: reactive[int] = reactive(0)

    class CursorMoved(Message):
        def __init__(self, row: int, column: int) -> None:
            super().__init__()
            self.row, self.column = row, column

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.source: RowSource | None = None
        self._widths: list[int] = []
        self._rows: LRUCache[int, list[str]] = LRUCache(CACHED_ROWS)
        self._gutter = 7
        self._measured = 0  # rows the column widths were measured over

    # -- data --------------------------------------------------------------------------------
    def set_source(self, source: RowSource | None) -> None:
        self.source = source
        self._rows.clear()
        self._widths = []
        self._measured = 0
        self.cursor_row, self.cursor_col = 1, 0
        self.scroll_to(0, 0, animate=False)
        self.rows_changed()

    def rows_changed(self) -> None:
        """The index found more rows: grow the scroll range (cheap; called on a timer)."""
        count = self.source.row_count() if self.source else 0
        if self.source is not None and self._measured < min(count, WIDTH_SAMPLE_ROWS) or (
                self.source is not None and not self._widths):
            self._widths = self._measure()
            self._measured = min(count, WIDTH_SAMPLE_ROWS)
        self._gutter = max(5, len(f"{count:,}") + 1)
        width = self._gutter + sum(w + 1 for w in self._widths)
        self.virtual_size = Size(width, count + 1)  # +1: the header line
        self.refresh()

    def _measure(self) -> list[int]:
        source = self.source
        if source is None:
            return []
        widths = [min(MAX_COLUMN_WIDTH, max(4, len(shown_header(h)))) for h in source.header]
        for row in range(1, min(WIDTH_SAMPLE_ROWS, source.row_count()) + 1):
            for i, cell in enumerate(self._row(row)):
                if i < len(widths):
                    widths[i] = min(MAX_COLUMN_WIDTH, max(widths[i], len(shown(cell))))
                else:
                    widths.append(min(MAX_COLUMN_WIDTH, max(4, len(shown(cell)))))
        return widths

    def _row(self, row: int) -> list[str]:
        cached = self._rows.get(row)
        if cached is not None or self.source is None:
            return cached or []
        try:
            cells = self.source.cells(row)
        except Exception as error:  # a row the reader refuses is shown as such, never a crash
            cells = [f"(row {row} cannot be shown: {error})"]
        self._rows.set(row, cells)
        return cells

    # -- drawing -----------------------------------------------------------------------------
    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        if self.source is None:
            return Strip.blank(width, self.rich_style)
        if y == 0:
            return self._line("row".rjust(self._gutter - 1), [shown_header(h) for h in self.source.header],
                              self.get_component_rich_style("rowview--header"), None, scroll_x, width)
        row = scroll_y + y
        if row > self.source.row_count():
            return Strip.blank(width, self.rich_style)
        cells = [shown(c) for c in self._row(row)]
        is_cursor = row == self.cursor_row
        base = self.get_component_rich_style("rowview--cursor-row") if is_cursor else self.rich_style
        return self._line(f"{row:>{self._gutter - 1}}", cells, base, self.cursor_col if is_cursor else None,
                          scroll_x, width)

    def _line(self, gutter: str, cells: list[str], style: Style, cursor: int | None, scroll_x: int, width: int) -> Strip:
        segments = [Segment(gutter + " ", self.get_component_rich_style("rowview--gutter"))]
        body: list[Segment] = []
        for i, width_i in enumerate(self._widths or [MAX_COLUMN_WIDTH]):
            text = clip(cells[i] if i < len(cells) else "", width_i)
            cell_style = self.get_component_rich_style("rowview--cursor") if i == cursor else style
            body.append(Segment(text, cell_style))
            body.append(Segment(" ", style))
        extra = cells[len(self._widths):] if self._widths else []
        if extra:  # a ragged row: show what spills over, the findings name it
            body.append(Segment(" | ".join(extra), style))
        strip = Strip(body).crop(scroll_x, scroll_x + width - len(gutter) - 1)
        return Strip(segments + list(strip), None).extend_cell_length(width, style).crop(0, width)

    # -- moving ------------------------------------------------------------------------------
    def _visible_rows(self) -> int:
        return max(1, self.scrollable_content_region.height - 1)

    def go_to(self, row: int, column: int | None = None) -> None:
        count = self.source.row_count() if self.source else 0
        self.cursor_row = max(1, min(row, max(1, count)))
        if column is not None:
            self.cursor_col = max(0, min(column, max(0, len(self._widths) - 1)))
        self._follow_cursor()

    def _follow_cursor(self) -> None:
        top = int(self.scroll_y)
        visible = self._visible_rows()
        if self.cursor_row <= top:
            self.scroll_to(y=self.cursor_row - 1, animate=False)
        elif self.cursor_row > top + visible:
            self.scroll_to(y=self.cursor_row - visible, animate=False)
        left = self._gutter + sum(w + 1 for w in self._widths[: self.cursor_col])
        right = left + (self._widths[self.cursor_col] if self._widths else 0)
        view = self.scrollable_content_region.width
        if left - self._gutter < self.scroll_x:
            self.scroll_to(x=left - self._gutter, animate=False)
        elif right > self.scroll_x + view:
            self.scroll_to(x=right - view + 1, animate=False)
        self.refresh()
        self.post_message(self.CursorMoved(self.cursor_row, self.cursor_col))

    def on_click(self, event) -> None:
        if self.source is None or event.y == 0:
            return
        x = int(self.scroll_x) + event.x - self._gutter
        column, left = 0, 0
        for index, width in enumerate(self._widths):
            if left <= x < left + width + 1:
                column = index
                break
            left += width + 1
        self.go_to(int(self.scroll_y) + event.y, column)

    def action_move(self, rows: int, cols: int) -> None:
        self.go_to(self.cursor_row + rows, self.cursor_col + cols)

    def action_page(self, direction: int) -> None:
        self.go_to(self.cursor_row + direction * self._visible_rows())

    def action_edge(self, direction: int) -> None:
        self.go_to(1 if direction < 0 else (self.source.row_count() if self.source else 1))
