"""Submit: importer (course-level by default; the global one warns about PARS), a course picked
from the LMS, then a confirmation naming file, rows, importer and course, then the upload with
progress. The work is operations.submit: prepare_submit, then send_plan."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.reactive import var
from textual.widgets import Input, Label, OptionList, ProgressBar, RadioSet, Static
from textual.widgets.option_list import Option

from importconsole.lms.models import Importer
from importconsole.tui.screens.base import ConsoleModal
from importconsole.tui.screens.ethosce_submit import EthosceSubmit
from importconsole.tui.text import count, shown, said
from importconsole.tui.widgets.toggles import MarkedRadioButton

GLOBAL_WARNING = ("The global importer is for legacy data only: its records are NOT included in PARS reports. "
                  "To count in PARS, use the course-level importer.")


class SubmitScreen(EthosceSubmit, ConsoleModal[int | None]):
    """Dismisses with the new import's id (the app then shows the monitor), or None."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "next", "Check / submit", priority=True),
    ]
    stage: var[str] = var("choose", init=False)  # choose -> checking -> confirm -> sending -> done

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = Path(path)
        self.courses: list = []
        self.course: str | None = None  # preselected below from the app's choice
        self.plan = None
        self.import_id: int | None = None

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="submit-box"):
            yield Label(f"Submit {shown(self.path.name)}", classes="dialog-title", markup=False)
            with RadioSet(id="importer"):
                yield MarkedRadioButton("course-level importer (counts in PARS)", value=self.app.importer == Importer.COURSE, id="course")
                yield MarkedRadioButton("global importer (legacy, many courses)", value=self.app.importer == Importer.GLOBAL, id="global")
            yield Static("", id="importer-warning", classes="warning", markup=False)
            yield Input(placeholder="search courses by id or title", id="course-search", compact=True)
            yield OptionList(id="courses")
            yield Static("", id="submit-summary", markup=False)
            yield ProgressBar(total=100, id="submit-progress", show_eta=False)
            yield Static("Ctrl+S: check the file  ·  Esc: cancel", id="submit-keys", classes="hint", markup=False)

    def on_mount(self) -> None:
        self.query_one("#submit-progress").display = False
        self.query_one("#courses", OptionList).styles.height = 5
        self._importer_changed()
        self._load_courses()
        self.query_one("#course-search").focus()

    # -- choosing ----------------------------------------------------------------------------
    @work(exclusive=True, group="submit-courses", exit_on_error=False)
    async def _load_courses(self) -> None:
        from importconsole.tui.screens.course import load_courses

        try:
            found = await load_courses(self.app.lms())
        except Exception as error:  # a sentence from LmsError
            self.query_one("#submit-summary", Static).update(said(str(error)))
            return
        self.courses = found
        self._filter_courses()

    @on(Input.Changed, "#course-search")
    def _filter_courses(self) -> None:
        from importconsole.tui.screens.course import matching

        options = self.query_one("#courses", OptionList)
        options.clear_options()
        typed = self.query_one("#course-search", Input).value
        found = matching(self.courses, typed)
        for course in found:
            options.add_option(Option(Text(f"{shown(course.external_id)}  {shown(course.title)}"), id=course.external_id))
        ids = [c.external_id for c in found]
        # The course chosen for THIS file, or the first match of what was typed; never a course
        # picked for another file, nor the list's first line unasked.
        wanted = self.course or self.app.course_external_id
        if wanted in ids:
            options.highlighted = ids.index(wanted)
        elif ids and typed.strip():
            options.highlighted = 0
        else:
            self.course = None

    @on(Input.Submitted, "#course-search")
    def _search_done(self) -> None:
        self.query_one("#courses").focus()

    @on(OptionList.OptionHighlighted, "#courses")
    def _course_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        self.course = event.option.id

    @on(OptionList.OptionSelected, "#courses")
    def _course_selected(self, event: OptionList.OptionSelected) -> None:
        self.course = event.option.id
        self.action_next()

    @on(RadioSet.Changed, "#importer")
    def _importer_changed(self) -> None:
        pressed = self.query_one("#importer", RadioSet).pressed_button
        importer = pressed.id if pressed is not None else "course"
        self.app.importer = importer
        self.query_one("#importer-warning", Static).update(GLOBAL_WARNING if importer == Importer.GLOBAL else "")
        for widget in ("#course-search", "#courses"):
            self.query_one(widget).display = importer == Importer.COURSE and not self.ethosce  # EthosCE: rows name it

    # -- checking, confirming, sending ---------------------------------------------------------
    def watch_stage(self, stage: str) -> None:
        # The keys line is red from the confirmation until the LMS has answered: Enter sends.
        self.query_one("#submit-keys").set_class(stage in ("confirm", "sending"), "danger")

    def action_next(self) -> None:
        if self.stage == "choose":
            if self.app.importer == Importer.COURSE and not self.course and not self.ethosce:
                self.query_one("#submit-summary", Static).update("Pick the course the records go to.")
                return
            self.stage = "checking"
            self.query_one("#submit-keys", Static).update("Checking the file against the LMS...")
            self._check()
        elif self.stage == "confirm":
            self.stage = "sending"
            self.query_one("#submit-keys", Static).update("Uploading...")
            self._send()
        elif self.stage == "done":
            self.dismiss(self.import_id)

    def key_enter(self) -> None:
        # Enter confirms once a plan is shown (the inputs use Enter themselves before that).
        if self.stage in ("confirm", "done"):
            self.action_next()

    @work(exclusive=True, group="submit", exit_on_error=False)
    async def _check(self) -> None:
        from importconsole.operations.submit import prepare_submit, reconcile_pending

        summary = self.query_one("#submit-summary", Static)
        client = self.app.lms()
        journal = self.app.journal()
        course = self.course if self.app.importer == Importer.COURSE and not self.ethosce else None
        try:
            if journal is not None:
                for item in await reconcile_pending(journal, client):
                    self.notify(said(item.sentence), title="Earlier submit reconciled")
            self.plan = await prepare_submit(client, self.path, importer=self.app.importer, course_external_id=course,
                                             rows_name_course=self.ethosce)
            if self.ethosce:
                confirmation = self.ethosce_confirmation(self.plan)  # names the importer (or says it is missing)
        except Exception as error:  # SubmitRefused or LmsError: say why; nothing was sent
            self.stage = "choose"
            summary.update(said(str(error)))
            summary.set_class(True, "problem")
            self.query_one("#submit-keys", Static).update("Ctrl+S: check again  ·  Esc: cancel")
            return
        summary.set_class(False, "problem")
        self.app.course_external_id = course  # the preview and findings now name it too
        for widget in ("#importer", "#course-search", "#courses"):
            self.query_one(widget).display = False  # the confirmation gets the room
        plan = self.plan
        rows = count(plan.row_count, "row") if plan.row_count is not None else "rows: unknown"
        importer = "course-level" if plan.importer == Importer.COURSE else "global"
        lines = [f"File: {shown(plan.path.name)}",
                 f"{rows} · {importer} importer" + (f" · course {shown(plan.course_external_id)}"
                                                     if plan.course_external_id else "")]
        if plan.report is not None:  # importfile.award: the one answer, as the CLI shows it before sending
            lines += [f"{shown(line)}" for line in plan.report.award_lines(limit=3)]
        lines += [f"! {shown(w)}" for w in plan.warnings[:6]]
        if len(plan.warnings) > 6:
            lines.append(f"... and {count(len(plan.warnings) - 6, 'more warning')} (see Findings)")
        if self.ethosce:
            lines = confirmation[0]
        summary.update("\n".join(lines))
        self.stage = "confirm"
        self.query_one("#submit-keys", Static).update(
            f"Enter: submit {rows} to the {importer} importer  ·  Esc: cancel")
        if self.ethosce:
            self.query_one("#submit-keys", Static).update(confirmation[1])
        self.set_focus(None)  # Enter now belongs to the confirmation, not the search box

    @work(exclusive=True, group="submit", exit_on_error=False)
    async def _send(self) -> None:
        from importconsole.operations.submit import send_plan

        if self.ethosce:
            await self.send_to_importer()
            return
        bar = self.query_one("#submit-progress", ProgressBar)
        bar.display = True

        def progress(sent: int, total: int) -> None:
            bar.update(total=max(total, 1), progress=sent)

        session = self.app.session
        try:
            outcome = await send_plan(self.plan, client=self.app.lms(), journal=self.app.journal(),
                                      profile=session.profile if session else None, progress=progress)
        except Exception as error:
            from importconsole.lms.errors import ImporterLocked

            self.stage = "done"
            bar.display = False  # a full bar over a refusal reads as "sent"
            text = said(str(error))
            holder = error.lock.import_id if isinstance(error, ImporterLocked) and error.lock is not None else None
            if holder is not None:  # the core's sentence names the CLI; say the console's keys too
                text += f"\nHere: Esc, then m (Monitor); if import {holder} is hung, select it and press u."
            summary = self.query_one("#submit-summary", Static)
            summary.update(text)
            summary.set_class(True, "problem")
            self.query_one("#submit-keys", Static).update("Enter or Esc: close")
            return
        self.import_id = outcome.import_.id
        self.stage = "done"
        text = said(outcome.sentence)
        if outcome.notes:
            text += "\n" + "\n".join(shown(n) for n in outcome.notes)
        self.query_one("#submit-summary", Static).update(text)
        self.query_one("#submit-keys", Static).update("Enter: watch it on the monitor  ·  Esc: close")

    def action_cancel(self) -> None:
        if self.ethosce and self.ethosce_cancel():
            return
        if self.stage == "sending":
            self.notify("The upload is under way: wait for it to finish.", severity="warning")
            return
        self.dismiss(self.import_id)

    async def on_unmount(self) -> None:
        if self.ethosce:
            await self.ethosce_unmount()
