"""Credit fixes: imported credit that will never reach PARS, CPE Monitor or the AMS, and the
completion-only re-imports that fix it (operations.credit_fix). One key submits them all."""

from __future__ import annotations

import time

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from importconsole.tui.screens.base import ConsoleScreen
from importconsole.tui.text import shown, said


class CreditFixScreen(ConsoleScreen):
    TITLE_TEXT = "Credit fixes"
    BINDINGS = [
        Binding("s", "submit", "Submit proposals"),
        Binding("r", "reload", "Look again"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.proposals: list = []
        self.busy = False
        self.submitted: list = []  # imports made by the last submit

    def compose(self) -> ComposeResult:
        yield from self.compose_title()
        yield Static("", id="credit-status", classes="status-line", markup=False)
        yield DataTable(id="proposals", cursor_type="row")
        yield Static("", id="proposal-detail", markup=False)
        yield from self.compose_footer()

    def on_mount(self) -> None:
        table = self.query_one("#proposals", DataTable)
        table.add_column("learner", key="learner", width=16)
        table.add_column("course", key="course", width=10)
        table.add_column("credit now", key="now", width=14)
        table.add_column("fix", key="fix", width=9)
        table.add_column("will award / why not", key="will")
        self.action_reload()

    def session_changed(self) -> None:
        self.action_reload()

    def action_reload(self) -> None:
        if self.app.session is None:
            self._status("Not connected: press n for Connect.")
            return
        self._status("Looking for credit that will never be reported...")
        if self.app.live:
            self._load()

    def _status(self, text: str) -> None:
        self.query_one("#credit-status", Static).update(text)

    @work(exclusive=True, group="credit", exit_on_error=False)
    async def _load(self) -> None:
        from importconsole.operations.credit_fix import propose_credit_fixes

        try:
            proposals = await propose_credit_fixes(self.app.lms())
        except Exception as error:  # LmsError's str() is the sentence
            self._status(said(str(error)))
            return
        self.show_proposals(proposals)

    def show_proposals(self, proposals: list) -> None:
        self.proposals = proposals
        self._fill()

    def _fill(self) -> None:
        table = self.query_one("#proposals", DataTable)
        table.clear()
        for index, p in enumerate(self.proposals):
            now = "; ".join(f"{t} {a:g}" for t, a, _ in p.current_credit) or "none"
            if p.proposed:
                will = "; ".join(f"{a.credit_type} {a.amount:g} -> {', '.join(a.reports_to) or 'no one'}"
                                 for a in p.awards) or "completion only"
            else:
                will = p.reason
            cells = (p.learner, p.course_external_id, now, "complete" if p.proposed else "by hand", will)
            table.add_row(*(Text(shown(c)) for c in cells), key=str(index))  # Text: never read as markup
        proposed = sum(1 for p in self.proposals if p.proposed)
        if not self.proposals:
            self._status("No imported credit left unreported: nothing to fix.")
        else:
            self._status(f"{proposed} completion-only row(s) proposed, {len(self.proposals) - proposed} to do by hand."
                         + ("  s: submit them." if proposed else ""))
        self._show_detail()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_detail()

    def _show_detail(self) -> None:
        table = self.query_one("#proposals", DataTable)
        detail = self.query_one("#proposal-detail", Static)
        if not self.proposals or table.row_count == 0:
            detail.update("")
            return
        proposal = self.proposals[min(table.cursor_row, len(self.proposals) - 1)]
        detail.update(shown(proposal.describe()))

    def action_submit(self) -> None:
        if self.busy:
            return
        if not any(p.proposed for p in self.proposals):
            self.notify("Nothing to submit.", severity="warning")
            return
        self.busy = True
        self._status("Submitting the completion-only files...")
        self._submit()

    @work(exclusive=True, group="credit-submit", exit_on_error=False)
    async def _submit(self) -> None:
        import asyncio

        from importconsole.operations import credit_fix

        folder = (self.app.state_dir() or self.app.workdir) / time.strftime("credit-fix-%Y%m%d-%H%M%S")
        followed: set[int] = set()

        def on_progress(step: credit_fix.FixProgress) -> None:
            # The core sends course after course and waits for each import; the screen only shows it.
            self._status(said(step.sentence))
            if step.import_ is not None and step.import_.id not in followed:
                followed.add(step.import_.id)
                self.app.follow_import(step.import_.id)

        try:
            files = await asyncio.to_thread(credit_fix.write_proposal_file, self.proposals, folder)
            done = await credit_fix.submit_proposals(
                self.app.lms(), files, journal=self.app.journal(),
                journal_fields={"profile": self.app.session.profile}, on_progress=on_progress,
                on_warning=lambda c, warning: self.notify(shown(f"{c}: {warning}"), severity="warning"))
        except credit_fix.CreditFixStopped as error:  # locked by another import...: what was and was not sent
            self.submitted = list(error.submitted.values())
            self._status(said(str(error)))
            self.notify(said(str(error.cause)), severity="error")
            return
        except Exception as error:  # writing the files failed: the sentence
            self._status(said(str(error)))
            self.notify(said(str(error)), severity="error")
            return
        finally:
            self.busy = False
        self.submitted = list(done.values())
        ids = ", ".join(str(i.id) for i in self.submitted)
        self._status(f"Submitted as import(s) {ids}: the LMS awards and reports the credit. Files: {folder.name}")
        self.notify(f"Credit fixes submitted: import(s) {ids}")
