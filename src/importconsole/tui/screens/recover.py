"""The recover plan for a hung import (operations.recover): what will be unlocked and which rows
re-imported, named before anything changes. Enter confirms; Esc leaves everything as it is."""

from __future__ import annotations

import time

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.timer import Timer
from textual.widgets import Label, Static

from importconsole.lms.models import ACTIVE_STATES
from importconsole.operations.watch import ImportView
from importconsole.tui.screens.base import ConsoleModal
from importconsole.tui.text import count, shown, said


WORKING = "Working... (the LMS is being changed; wait)"


class RecoverScreen(ConsoleModal[int | None]):
    """Dismisses with the re-import's id (the monitor then follows it), or None.

    The plan follows the watcher (the one verdict the title line and the monitor show): it is
    made again whenever the import moves, and Enter unlocks only an import the watcher calls hung."""

    BINDINGS = [
        Binding("enter", "confirm", "Unlock + re-import", priority=True),
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(self, view: ImportView, plan=None) -> None:
        super().__init__()
        self.view = view
        self.plan = plan  # given: shown as it is (snapshots); else made on mount
        self.planning = plan is None
        self.executing = False
        self.result_id: int | None = None
        self._refused_for: tuple[int, bool] | None = None
        self._step_began = 0.0  # when the running step began (or last said something)
        self._working: Timer | None = None

    @property
    def busy(self) -> bool:
        return self.planning or self.executing

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog", id="recover-box"):
            yield Label(f"Recover import {self.view.import_id}", classes="dialog-title", markup=False)
            yield Static("Making the plan: reading the import, its lock and the rows not yet processed...",
                         id="recover-plan", markup=False)
            yield Static("", id="recover-steps", markup=False)
            yield Static("", id="recover-keys", classes="hint", markup=False)

    def on_mount(self) -> None:
        self.app.import_changed_signal.subscribe(self, self._import_changed)
        self.watch(self.app, "lms_unseen", self.unseen_changed, init=False)
        if self.plan is not None:
            self._show_plan()
        else:
            self._plan()

    @work(exclusive=True, group="recover-plan", exit_on_error=False)
    async def _plan(self) -> None:
        from importconsole.operations.recover import plan_recovery

        self.planning = True
        view = self.current_view()
        try:
            plan = await plan_recovery(self.app.lms(), view.import_id, diagnosis=view.diagnosis,
                                       journal=self.app.journal(), workdir=self.app.state_dir())
        except Exception as error:  # RecoveryRefused, ImportMoved, LmsError: their str() is the sentence
            from importconsole.operations.recover import ImportMoved

            self.planning = False
            self._refused(error)
            if isinstance(error, ImportMoved):  # it moved under the plan: made again where it is now
                self.planning = True
                self.set_timer(0.5, self._plan)
            return
        self.plan = plan
        self.planning = False
        if self._stale():  # it moved while the plan was made: once more, for where it is now
            self._replan()
            return
        self._show_plan()

    def current_view(self) -> ImportView:
        """The watcher's view of this import now: its hung verdict is the one the title line and
        the monitor show (the view given when `u` was pressed may be older); else the given one."""
        watcher = self.app.watcher
        view = watcher.views.get(self.view.import_id) if watcher is not None else None
        return view if view is not None else self.view

    def _stale(self) -> bool:
        """The plan no longer describes the import: it moved, or ended, since it was made."""
        if self.plan is None:
            return False
        view = self.current_view()
        moved = view.rows_processed != self.plan.rows_committed
        ended = self.plan.needs_unlock and view.state not in ACTIVE_STATES
        return moved or ended

    def _import_changed(self, view: ImportView) -> None:
        if view.import_id != self.view.import_id or self.executing or self.result_id is not None:
            return
        self.view = view
        if self.planning:
            return  # the plan being made re-checks when it is done
        if self.plan is None:
            if self._refused_for is not None and self._refused_for != (view.rows_processed, view.is_hung) \
                    and not view.finished:
                self._replan()  # refused, then it moved or turned hung: the plan follows it
            return
        if self._stale():
            self._replan()
        else:
            self._show_plan()

    def _replan(self) -> None:
        view = self.current_view()
        then = f", {self.plan.rows_committed} when the plan was made" if self.plan is not None else ""
        self.query_one("#recover-keys", Static).update(
            f"Import {view.import_id} moved ({view.rows_processed} rows processed{then}): making the plan again... "
            "Esc: close.")
        self.query_one("#recover-keys").set_class(False, "danger")
        self.planning = True
        self._plan()

    def unseen_changed(self) -> None:
        """The LMS stopped answering, or answers again (the app's lms_unseen): the plan says so."""
        if self.plan is not None and not self.busy and self.result_id is None:
            self._show_plan()

    def _may_unlock(self) -> bool:
        return self.plan is not None and (not self.plan.needs_unlock or self.current_view().is_hung)

    def _show_plan(self) -> None:
        plan = self.plan
        lines = [shown(line) for line in plan.describe()]
        unseen = self.app.lms_unseen
        if unseen is not None and plan.needs_unlock:
            lines.insert(0, f"LMS NOT SEEN since {unseen.since_text()}: whether import {plan.import_id} is hung is not "
                            "known now; nothing is unlocked until the LMS answers and the import counts as hung.")
        elif not self._may_unlock():
            lines.insert(0, f"Not hung: import {plan.import_id} counts as hung after {self.app.hung_after:g} s without "
                            "progress while it holds the lock. This plan is made again each time it moves.")
        self.query_one("#recover-plan", Static).update("\n".join(lines))
        self.query_one("#recover-plan").set_class(False, "problem")
        keys = self.query_one("#recover-keys", Static)
        if self._may_unlock():
            keys.update(f"Enter: unlock import {plan.import_id} and re-import rows "
                        f"{plan.first_row_left}-{plan.rows_total}.  Esc: change nothing.")
        else:
            keys.update(f"Enter waits until import {plan.import_id} is hung.  Esc: change nothing.")
        keys.set_class(self._may_unlock(), "danger")

    def _refused(self, error: Exception) -> None:
        self.plan = None
        view = self.current_view()
        self._refused_for = (view.rows_processed, view.is_hung)  # the import as it was when refused
        self.query_one("#recover-plan", Static).update(said(str(error)))
        self.query_one("#recover-plan").set_class(True, "problem")
        self.query_one("#recover-keys", Static).update("Esc: close.")
        self.query_one("#recover-keys").set_class(False, "danger")

    def action_confirm(self) -> None:
        if self.result_id is not None:
            self.dismiss(self.result_id)
            return
        if self.busy:
            return
        if self.plan is None:
            self.dismiss(None)
            return
        if self._stale():
            self._replan()
            return
        if not self._may_unlock():
            self.notify(f"Import {self.plan.import_id} is not hung: nothing is unlocked while it may still move.",
                        severity="warning")
            return
        self.executing = True
        self.query_one("#recover-keys", Static).update(WORKING)
        self._step_began = time.monotonic()
        self._working = self.set_interval(1.0, self._show_working)
        self._execute()

    def _stop_working(self) -> None:
        if self._working is not None:
            self._working.stop()

    def _show_working(self) -> None:
        """A frozen LMS keeps a step waiting for minutes (each try waits 30 s): say so, by the second."""
        quiet = int(time.monotonic() - self._step_began)
        if self.executing and quiet >= 5:
            self.query_one("#recover-keys", Static).update(
                f"Working... the LMS has not answered for {quiet} s. The console keeps asking and never sends "
                "a change twice: wait.")

    @work(exclusive=True, group="recover", exit_on_error=False)
    async def _execute(self) -> None:
        from importconsole.operations.recover import execute_recovery

        steps = self.query_one("#recover-steps", Static)
        said_so_far: list[str] = []

        def say(text: str) -> None:
            said_so_far.append(shown(text))
            steps.update("\n".join(said_so_far))
            self._step_began = time.monotonic()
            self.query_one("#recover-keys", Static).update(WORKING)

        try:
            result = await execute_recovery(self.app.lms(), self.plan, journal=self.app.journal(),
                                            workdir=self.app.state_dir(), say=say)
        except Exception as error:  # AlreadyUnlocked, ImportMoved, LmsError: shown, nothing re-sent
            self.executing = False
            self._stop_working()
            self._refused(error)
            return
        self.executing = False
        self._stop_working()
        reimport = result.reimport
        self.result_id = reimport.id if reimport is not None else None
        done = f"Done: import {self.plan.import_id} unlocked" if result.unlocked else "Done"
        if reimport is not None:
            done += f"; re-import {reimport.id} has {count(reimport.rows_total, 'row')}. The monitor follows it."
        self.query_one("#recover-keys", Static).update(done + "  Enter: back to the monitor.")
        self.query_one("#recover-keys").set_class(False, "danger")

    def action_cancel(self) -> None:
        if self.executing:
            self.notify("The LMS is being changed: wait for it to finish.", severity="warning")
            return
        self.dismiss(self.result_id)
