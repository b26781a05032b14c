"""Credit fixes: imported credit that will never reach PARS, CPE Monitor or the AMS, and the
completion-only re-imports that fix it (operations.credit_fix). `s` asks first (courses, learners,
what the LMS will award), then submits; the list then shows what was sent."""

from __future__ import annotations

import time
from collections import defaultdict

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.widgets import DataTable, Input, Label, Static

from importconsole.importfile.award import and_list
from importconsole.tui.screens.base import ConsoleModal, ConsoleScreen
from importconsole.tui.text import count, fit, shown, said
from datetime import UTC

# Widest an id column gets; a longer id ends in "…" and the detail pane below shows it whole.
LEARNER_WIDTH = (7, 24)
COURSE_WIDTH = (6, 20)


def _width(values, bounds: tuple[int, int]) -> int:
    low, high = bounds
    return max(low, min(high, max((len(v) for v in values), default=low)))


def awards_of(proposal) -> str:
    """`1 ama (awarded, reported to PARS)`: importfile.award's words, through the proposal."""
    return and_list([a.describe() for a in proposal.awards]) or "no credit (the course has no non-variable type)"


def batch_lines(proposals: list) -> list[str]:
    """What a submit sends, course by course: who, and what the LMS will award them."""
    by_course: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for p in proposals:
        by_course[p.course_external_id][awards_of(p)].append(p.learner)
    lines = []
    for course in sorted(by_course):
        for will, learners in by_course[course].items():
            lines.append(f"{shown(course)}, {count(len(learners), 'learner')} ({', '.join(map(shown, learners))}): "
                         f"marked complete; the LMS will record {shown(will)}")
    return lines


class ConfirmCreditFixes(ConsoleModal[list | None]):
    """Nothing is sent before the admin has read who gets what (unlock asks too), and chosen the
    completion date once for the whole batch. Dismisses with the dated proposals, or None."""

    BINDINGS = [
        Binding("enter", "confirm", "Submit", priority=True),
        Binding("escape", "dismiss(None)", "Cancel"),
        Binding("t", "date('today')", "Today"),
        Binding("f", "date('file')", "The file's dates"),
        Binding("d", "type_date", "Type a date"),
    ]

    def __init__(self, proposals: list) -> None:
        super().__init__()
        self.proposals = proposals
        self.dated: list | None = None  # the proposals with the chosen date; None: not chosen yet
        self.has_file_dates = any(p.file_date for p in proposals)

    def compose(self) -> ComposeResult:
        from datetime import datetime

        courses = {p.course_external_id for p in self.proposals}
        today = datetime.now(UTC).date().isoformat()
        choices = [f"t today ({today})"] + (["f the file's dates"] if self.has_file_dates else []) + ["d a date you type"]
        with VerticalScroll(classes="dialog", id="credit-confirm"):
            yield Label("Submit credit fixes", classes="dialog-title", markup=False)
            # The date and the keys are docked: in view however many learners scroll above them.
            with Vertical(id="credit-confirm-foot"):
                yield Static(f"Completion date for this batch: {'  ·  '.join(choices)}", markup=False)
                yield Input(placeholder="YYYY-MM-DD, then Enter", id="typed-date", compact=True)
                yield Static("No date chosen yet.", id="chosen-date", classes="warning", markup=False)
                yield Static(f"Enter: submit to the LMS ({', '.join(map(shown, sorted(courses)))})  ·  "
                             "Esc: change nothing", id="confirm-keys", classes="danger", markup=False)
            yield Static(f"{count(len(self.proposals), 'completion-only row')} for "
                         f"{count(len({p.learner for p in self.proposals}), 'learner')} in "
                         f"{count(len(courses), 'course')}: one course-level import per course, one after the "
                         "other. Each replaces the credit the enrollment carries now.", markup=False)
            yield Static("\n".join(f"- {line}" for line in batch_lines(self.proposals)), markup=False)
            more = [(p.learner, p.beyond_current()) for p in self.proposals if p.beyond_current()]
            if more:  # never an unannounced over-award: who gets more than they hold, and how much
                yield Static(f"{count(len(more), 'learner')} will get more than they hold now: "
                             + "; ".join(f"{shown(who)} ({', '.join(what)})" for who, what in more) + ".",
                             classes="warning", markup=False)

    def on_mount(self) -> None:
        self.query_one("#typed-date").display = False

    def check_action(self, action: str, parameters) -> bool | None:
        if action == "date" and parameters == ("file",):
            return self.has_file_dates  # no "the file's dates" for proposals that come from the LMS
        return True

    def action_date(self, choice: str) -> None:
        from importconsole.operations.credit_fix import date_proposals, describe_dates

        try:
            self.dated = date_proposals(self.proposals, choice)
        except ValueError as error:  # a typed date that is not one: its sentence
            self.query_one("#chosen-date", Static).update(said(str(error)))
            return
        self.query_one("#chosen-date", Static).update(f"Chosen: {shown(describe_dates(self.dated))}.")
        self.query_one("#chosen-date").set_class(False, "warning")

    def action_type_date(self) -> None:
        field = self.query_one("#typed-date", Input)
        field.display = True
        field.focus()

    def action_confirm(self) -> None:
        field = self.query_one("#typed-date", Input)
        if self.focused is field:  # Enter in the date field takes the date; the next Enter submits
            self.action_date(field.value.strip())
            if self.dated is not None:
                self.set_focus(None)
            return
        if self.dated is None:
            self.query_one("#chosen-date", Static).update("Choose the completion date first: t, f or d.")
            return
        self.dismiss(self.dated)


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
        self.sent: dict[tuple[str, str], int] = {}  # (course, learner) -> the import that carried its fix

    def compose(self) -> ComposeResult:
        yield from self.compose_title()
        yield Static("", id="credit-status", classes="status-line", markup=False)
        yield DataTable(id="proposals", cursor_type="row")
        yield Static("", id="proposal-detail", markup=False)
        yield from self.compose_footer()

    def on_mount(self) -> None:
        self.watch(self.app, "session", self.action_reload, init=False)  # another LMS: look again
        self.action_reload()

    def action_reload(self) -> None:
        if self.busy:
            self.notify("Credit fixes are being submitted: wait for them to finish.", severity="warning")
            return
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
        self.sent.clear()  # what the LMS says now is the truth: a fix that took is no longer proposed
        self.show_proposals(proposals)

    def show_proposals(self, proposals: list) -> None:
        self.proposals = proposals
        self._fill()

    def _fill(self) -> None:
        table = self.query_one("#proposals", DataTable)
        table.clear(columns=True)
        learner_w = _width([shown(p.learner) for p in self.proposals], LEARNER_WIDTH)
        course_w = _width([shown(p.course_external_id) for p in self.proposals], COURSE_WIDTH)
        table.add_column("learner", key="learner", width=learner_w)
        table.add_column("course", key="course", width=course_w)
        table.add_column("credit now", key="now", width=14)
        fixes = [self._fix_cell(p) for p in self.proposals]
        fix_w = _width(fixes, (3, 20))
        table.add_column("fix", key="fix", width=fix_w)
        # The last column takes what is left of the screen; longer text ends in "…" (an amount cut
        # at the edge, "moc_abim 1." for 1.5, would read as another amount): the detail pane has it whole.
        will_w = max(12, (self.size.width or self.app.size.width) - (learner_w + course_w + 14 + fix_w) - 2 * 5 - 2)
        table.add_column("will award / why not", key="will", width=will_w)
        for index, p in enumerate(self.proposals):
            now = "; ".join(f"{t} {a:g}" for t, a, _ in p.current_credit) or "none"
            if p.proposed:
                will = "; ".join(f"{a.credit_type} {a.amount:g} -> {', '.join(a.reports_to) or 'no one'}"
                                 for a in p.awards) or "completion only"
            else:
                will = p.reason
            cells = (fit(shown(p.learner), learner_w), fit(shown(p.course_external_id), course_w), fit(shown(now), 14),
                     fixes[index], fit(shown(will), will_w))
            table.add_row(*(Text(c) for c in cells), key=str(index))  # Text: never read as markup
        self._say_counts()
        self._show_detail()

    def _fix_cell(self, proposal) -> str:
        sent = self.sent.get((proposal.course_external_id, proposal.learner))
        return f"sent: import {sent}" if sent is not None else ("complete" if proposal.proposed else "by hand")

    def on_resize(self) -> None:
        if self.proposals:
            self._fill()  # the last column is fitted to the width

    def _say_counts(self) -> None:
        proposed = [p for p in self.proposals if p.proposed]
        left = [p for p in proposed if (p.course_external_id, p.learner) not in self.sent]
        if not self.proposals:
            self._status("No imported credit left unreported: nothing to fix.")
        elif self.sent:
            self._status(f"Sent as {self._imports_sent()}; {count(len(left), 'proposal')} not sent. "
                         "r looks at the LMS again.")
        else:
            self._status(f"{count(len(proposed), 'completion-only row')} proposed, "
                         f"{len(self.proposals) - len(proposed)} to do by hand." + ("  s: submit them." if proposed else ""))

    def _imports_sent(self) -> str:
        ids = sorted(set(self.sent.values()))
        return ("import " if len(ids) == 1 else "imports ") + ", ".join(map(str, ids))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_detail()

    def _show_detail(self) -> None:
        table = self.query_one("#proposals", DataTable)
        detail = self.query_one("#proposal-detail", Static)
        if not self.proposals or table.row_count == 0:
            detail.update("")
            return
        proposal = self.proposals[min(table.cursor_row, len(self.proposals) - 1)]
        detail.update(shown(proposal.describe()))  # every id whole, however narrow the columns

    def action_submit(self) -> None:
        if self.busy:
            return
        proposed = [p for p in self.proposals if p.proposed]
        if not proposed:
            self.notify("Nothing to submit.", severity="warning")
            return
        left = [p for p in proposed if (p.course_external_id, p.learner) not in self.sent]
        if not left:
            text = f"Already submitted as {self._imports_sent()}: nothing sent again. r looks at the LMS again."
            self._status(text)
            self.notify(text, severity="warning")
            return

        def confirmed(dated: list | None) -> None:
            if dated and not self.busy:
                self.busy = True
                self._status("Submitting the completion-only files...")
                self._submit(dated)

        self.app.push_screen(ConfirmCreditFixes(left), confirmed)

    @work(exclusive=True, group="credit-submit", exit_on_error=False)
    async def _submit(self, proposals: list) -> None:
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
            files = await asyncio.to_thread(credit_fix.write_proposal_file, proposals, folder)
            done = await credit_fix.submit_proposals(
                self.app.lms(), files, journal=self.app.journal(),
                journal_fields={"profile": self.app.session.profile if self.app.session else None}, on_progress=on_progress,
                on_warning=lambda c, warning: self.notify(shown(f"{c}: {warning}"), severity="warning"))
        except credit_fix.CreditFixStopped as error:  # locked by another import...: what was and was not sent
            self._mark_sent(proposals, error.submitted)
            self._status(said(str(error)))
            self.notify(said(str(error.cause)), severity="error")
            return
        except Exception as error:  # writing the files failed: the sentence
            self._status(said(str(error)))
            self.notify(said(str(error)), severity="error")
            return
        finally:
            self.busy = False
        self._mark_sent(proposals, done)
        states = ", ".join(f"import {i.id} {i.state.replace('_', ' ')}" for i in self.submitted)
        self._status(f"Submitted as {self._imports_sent()} ({states}). The list shows what was sent; "
                     f"r looks at the LMS again. Files: {folder.name}")
        self.notify(f"Credit fixes submitted: {self._imports_sent()}")

    def _mark_sent(self, proposals: list, imports: dict) -> None:
        self.submitted = list(imports.values())
        for p in proposals:
            item = imports.get(p.course_external_id)
            if item is not None:
                self.sent[(p.course_external_id, p.learner)] = item.id
        self._fill()
