"""Pick the course a course-level import goes to (search by id or title). Validation needs it:
partial credit, certificates and required objects are facts of one course."""

from __future__ import annotations

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from importconsole.tui.screens.base import ConsoleModal
from importconsole.tui.text import shown, said


async def load_courses(client, limit: int = 5000) -> list:
    """Every course of the LMS, page by page (the picker filters them locally as you type)."""
    found: list = []
    offset: int | None = 0
    while offset is not None and len(found) < limit:
        page = await client.courses(offset=offset, limit=1000)
        found.extend(page.items)
        offset = page.next_offset
    return found


def matching(courses: list, text: str) -> list:
    words = text.lower().split()
    return [c for c in courses if all(w in f"{c.external_id} {c.title}".lower() for w in words)]


class CoursePicker(ConsoleModal[str | None]):
    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, current: str | None = None) -> None:
        super().__init__()
        self.current = current
        self.courses: list = []

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="course-box"):
            yield Label("Course for the course-level importer", classes="dialog-title", markup=False)
            yield Input(placeholder="search by id or title", id="course-filter", compact=True)
            yield OptionList(id="course-list")
            yield Static("Type to search · Enter picks · Esc cancels", id="course-hint", classes="hint", markup=False)

    def on_mount(self) -> None:
        self.query_one("#course-list", OptionList).styles.height = 8
        self._load()

    @work(exclusive=True, group="courses", exit_on_error=False)
    async def _load(self) -> None:
        try:
            self.courses = await load_courses(self.app.lms())
        except Exception as error:  # LmsError: a sentence
            self.query_one("#course-hint", Static).update(said(str(error)))
            return
        self._fill()

    @on(Input.Changed, "#course-filter")
    def _fill(self) -> None:
        options = self.query_one("#course-list", OptionList)
        options.clear_options()
        shown_courses = matching(self.courses, self.query_one("#course-filter", Input).value)
        for course in shown_courses:
            options.add_option(Option(Text(f"{shown(course.external_id)}  {shown(course.title)}"), id=course.external_id))
        ids = [c.external_id for c in shown_courses]
        if ids:
            options.highlighted = ids.index(self.current) if self.current in ids else 0

    @on(Input.Submitted, "#course-filter")
    def _pick_highlighted(self) -> None:
        options = self.query_one("#course-list", OptionList)
        if options.highlighted is not None:
            self.dismiss(options.get_option_at_index(options.highlighted).id)

    @on(OptionList.OptionSelected, "#course-list")
    def _picked(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)
