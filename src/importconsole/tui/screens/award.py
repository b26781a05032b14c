"""X (completion-only fix): rows where the LMS would record other credit than the file says.
Each is shown with both ("the file says 0.50 ama; the LMS will record 1.5 ama and 1.5 moc_abim")
and left as it is unless the admin accepts it, row by row (importfile.fixes `accept_award`)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Label, OptionList, Static
from textual.widgets.option_list import Option

from importconsole.tui.screens.base import ConsoleModal
from importconsole.tui.text import count, shown


class AwardChoices(ConsoleModal[list[int] | None]):
    """Dismisses with the rows accepted (maybe none: every row left as it is), or None: no copy."""

    BINDINGS = [
        Binding("space", "toggle", "Accept / leave the row"),
        Binding("enter", "write", "Write the copy", priority=True),
        Binding("escape", "dismiss(None)", "Write nothing"),
    ]

    def __init__(self, differs: list) -> None:
        super().__init__()
        self.differs = differs  # importfile.fixes.AwardDiffers, one per row
        self.accepted: set[int] = set()

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="award-box"):
            yield Label("Completion-only would change the credit", classes="dialog-title", markup=False)
            yield Static(f"For {count(len(self.differs), 'row')} the LMS would record other credit than the file "
                         "says. Each is left as it is (not fixed) unless you accept what the LMS will record. "
                         "The other fixes are written either way.", markup=False)
            yield OptionList(id="award-rows")
            yield Static("", id="award-count", markup=False)
            yield Static("Space: accept / leave the row  ·  Enter: write the copy  ·  Esc: write nothing",
                         classes="hint", markup=False)

    def on_mount(self) -> None:
        rows = self.query_one("#award-rows", OptionList)
        rows.styles.max_height = 10
        self._fill()
        rows.highlighted = 0
        rows.focus()

    def _fill(self) -> None:
        rows = self.query_one("#award-rows", OptionList)
        keep = rows.highlighted
        rows.clear_options()
        for d in self.differs:
            # The choice in words, not only in colour (16 colours, colour-blind admins).
            mark = "ACCEPT" if d.row in self.accepted else "leave "
            rows.add_option(Option(Text(f"[{mark}] row {d.row} ({shown(d.learner)} in {shown(d.course)}): "
                                        f"{shown(d.describe())}"), id=str(d.row)))
        rows.highlighted = keep
        left = len(self.differs) - len(self.accepted)
        self.query_one("#award-count", Static).update(
            f"{count(len(self.accepted), 'row')} accepted, {count(left, 'row')} left as {'it is' if left == 1 else 'they are'}.")

    def action_toggle(self) -> None:
        rows = self.query_one("#award-rows", OptionList)
        if rows.highlighted is None:
            return
        row = self.differs[rows.highlighted].row
        self.accepted.symmetric_difference_update({row})
        self._fill()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.action_toggle()  # a click on a row toggles it too

    def action_write(self) -> None:
        self.dismiss(sorted(self.accepted))
