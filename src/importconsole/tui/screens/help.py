"""`?`: every key of the screen behind, and every place to go."""

from __future__ import annotations

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Static

from importconsole.tui.screens.base import ConsoleModal


class HelpScreen(ConsoleModal[None]):
    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close")]

    def __init__(self, behind) -> None:
        super().__init__()
        self._rows = keys_of(behind)

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Static("Keys  (Esc closes; Ctrl+P searches every action)", id="help-title", markup=False)
            problems = self.app.theme_problems
            if problems:  # said at start in a toast that passes: kept here too
                from importconsole.tui.text import said

                yield Static(said("Themes not loaded:\n" + "\n".join(str(p) for p in problems)),
                             id="help-theme-problems", classes="problem", markup=False)
            yield Static(self._table(), id="help-keys", markup=False)

    def _table(self) -> Table:
        table = Table(box=None, show_header=False, pad_edge=False, expand=True)
        table.add_column("key", style="bold", no_wrap=True)
        table.add_column("what")
        for key, what in self._rows:
            table.add_row(key, what)
        return table


def keys_of(screen) -> list[tuple[str, str]]:
    """(key, description) for every described binding active on a screen, app keys included."""
    own: list[tuple[str, str]] = []
    widget: list[tuple[str, str]] = []
    for _key, active in screen.active_bindings.items():
        if active.binding.description and not active.binding.system:
            # A screen's short footer word (x "Fix") is explained by its tooltip.
            what = (active.binding.tooltip if active.node is screen else "") or active.binding.description
            row = (screen.app.get_key_display(active.binding), what)
            # The console's own keys first; the focused widget's movement keys after.
            (own if active.node is screen or active.node is screen.app else widget).append(row)
    return own + widget
