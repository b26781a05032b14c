"""The recover plan for a hung import (operations.recover): what will be unlocked and which rows
re-imported, named before anything changes. Enter confirms; Esc leaves everything as it is."""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from importconsole.operations.watch import ImportView
from importconsole.tui.text import shown, said


class RecoverScreen(ModalScreen[int | None]):
    """Dismisses with the re-import's id (the monitor then follows it), or None."""

    BINDINGS = [
        Binding("enter", "confirm", "Unlock + re-import", priority=True),
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(self, view: ImportView, plan=None) -> None:
        super().__init__()
        self.view = view
        self.plan = plan  # given: shown as it is (snapshots); else made on mount
        self.busy = True
        self.result_id: int | None = None

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog", id="recover-box"):
            yield Label(f"Recover import {self.view.import_id}", classes="dialog-title", markup=False)
            yield Static("Making the plan: reading the import, its lock and the rows not yet processed...",
                         id="recover-plan", markup=False)
            yield Static("", id="recover-steps", markup=False)
            yield Static("", id="recover-keys", classes="hint", markup=False)

    def on_mount(self) -> None:
        if self.plan is not None:
            self._show_plan()
        else:
            self._plan()

    @work(exclusive=True, group="recover", exit_on_error=False)
    async def _plan(self) -> None:
        from importconsole.operations.recover import plan_recovery

        try:
            self.plan = await plan_recovery(self.app.lms(), self.view.import_id, diagnosis=self.view.diagnosis,
                                            journal=self.app.journal(), workdir=self.app.state_dir())
        except Exception as error:  # RecoveryRefused, LmsError: their str() is the sentence
            self._refused(error)
            return
        self._show_plan()

    def current_view(self) -> ImportView:
        """The watcher's view of this import now: its hung verdict is the one the title line and
        the monitor show (the view given when `u` was pressed may be older); else the given one."""
        watcher = getattr(self.app, "watcher", None)
        view = watcher.views.get(self.view.import_id) if watcher is not None else None
        return view if view is not None else self.view

    def hung_changed(self) -> None:
        """The watcher's hung verdict changed (called by the app): the plan's text follows it."""
        self.view = self.current_view()
        if self.plan is not None and not self.busy and self.result_id is None:
            self._show_plan_text()

    def _show_plan_text(self) -> None:
        lines = [shown(line) for line in self.plan.describe()]
        if not self.current_view().is_hung and self.plan.needs_unlock:
            lines.insert(0, f"Not detected as hung yet (no progress for {self.app.hung_after:g}s is the sign). "
                            "Nothing is unlocked if it moves before you confirm.")
        self.query_one("#recover-plan", Static).update("\n".join(lines))

    def _show_plan(self) -> None:
        self.busy = False
        self._show_plan_text()
        self.query_one("#recover-keys", Static).update(
            f"Enter: unlock import {self.plan.import_id} and re-import rows "
            f"{self.plan.first_row_left}-{self.plan.rows_total}.  Esc: change nothing.")
        self.query_one("#recover-keys").set_class(True, "danger")

    def _refused(self, error: Exception) -> None:
        self.busy = False
        self.plan = None
        self.query_one("#recover-plan", Static).update(said(str(error)))
        self.query_one("#recover-plan").set_class(True, "problem")
        self.query_one("#recover-keys", Static).update("Esc: close.")

    def action_confirm(self) -> None:
        if self.busy:
            return
        if self.result_id is not None:
            self.dismiss(self.result_id)
            return
        if self.plan is None:
            self.dismiss(None)
            return
        self.busy = True
        self.query_one("#recover-keys", Static).update("Working... (the LMS is being changed; wait)")
        self._execute()

    @work(exclusive=True, group="recover", exit_on_error=False)
    async def _execute(self) -> None:
        from importconsole.operations.recover import execute_recovery

        steps = self.query_one("#recover-steps", Static)
        said: list[str] = []

        def say(text: str) -> None:
            said.append(shown(text))
            steps.update("\n".join(said))

        try:
            result = await execute_recovery(self.app.lms(), self.plan, journal=self.app.journal(),
                                            workdir=self.app.state_dir(), say=say)
        except Exception as error:  # AlreadyUnlocked, ImportMoved, LmsError: shown, nothing re-sent
            self._refused(error)
            return
        self.busy = False
        reimport = result.reimport
        self.result_id = reimport.id if reimport is not None else None
        done = f"Done: import {self.plan.import_id} unlocked" if result.unlocked else "Done"
        if reimport is not None:
            done += f"; re-import {reimport.id} has {reimport.rows_total} rows. The monitor follows it."
        self.query_one("#recover-keys", Static).update(done + "  Enter: back to the monitor.")
        self.query_one("#recover-keys").set_class(False, "danger")

    def action_cancel(self) -> None:
        if self.busy and self.plan is not None:
            self.notify("The LMS is being changed: wait for it to finish.", severity="warning")
            return
        self.dismiss(self.result_id)
