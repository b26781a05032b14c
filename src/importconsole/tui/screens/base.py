"""What every console screen shares: a title line saying where the admin is, and the footer;
`self.app` typed as the console (ConsoleScreen, ConsoleModal)."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from textual import events, on
from textual.app import ComposeResult
from textual.content import Content
from textual.css.query import NoMatches
from textual.containers import Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Static

from importconsole.tui.widgets.navigation import NavigationBar

if TYPE_CHECKING:
    from importconsole.operations.watch import LmsUnseen
    from importconsole.tui.app import ImportConsoleApp

ResultType = TypeVar("ResultType")


class TitleLine(Static):
    """`importconsole · Preview · demo @ http://127.0.0.1:...` in one line (no clock: SSH links are slow)."""


class ConsoleModal(ModalScreen[ResultType]):
    """A dialog of the console."""

    if TYPE_CHECKING:  # for the type checker only (`override`: Textual types it App[object], ours is App[int])
        @property
        def app(self) -> ImportConsoleApp: ...  # type: ignore[override]


class ConsoleScreen(Screen[None]):
    """A main screen (one per mode). Its title line follows the app's session, hung imports and
    whether the LMS is seen: Textual calls the watchers on every change, shown or not."""

    TITLE_TEXT = ""

    if TYPE_CHECKING:
        @property
        def app(self) -> ImportConsoleApp: ...  # type: ignore[override]

    @on(events.Mount)
    def _follow_the_app(self) -> None:
        for shared in ("session", "hung_ids", "lms_unseen"):
            self.watch(self.app, shared, self.refresh_title, init=False)

    def compose_title(self) -> ComposeResult:
        yield TitleLine(self.title_text(), id="title-line")

    def compose_footer(self) -> ComposeResult:
        # Two lines at the bottom: the screens (and q), then this screen's keys, `?` and Ctrl+P.
        with Vertical(id="footer-area"):
            yield NavigationBar(id="navigation")
            yield Footer(compact=True)

    def title_text(self) -> Content:
        session = self.app.session
        where = f"{session.profile} @ {session.base_url}" if session else "not connected"
        colour = self.app.theme_variables.get("import-hung", "")
        unseen = self.app.lms_unseen
        if unseen is not None and session is not None:
            # Said before anything else, for as long as it lasts: no figure the console shows is known.
            return Content.assemble(f"importconsole · {self.TITLE_TEXT} · ",
                                    (f"LMS NOT SEEN since {unseen.since_text()}: {unseen_reason(self.app)} (m)",
                                     f"bold reverse {colour}".strip()), f" · {where}")
        hung = sorted(self.app.hung_ids)
        if not hung:
            return Content(f"importconsole · {self.TITLE_TEXT} · {where}")
        # Said here on every screen, before the address (which may be clipped at 80 columns).
        ids = ", ".join(str(i) for i in hung[:3]) + (", ..." if len(hung) > 3 else "")
        what = f"HUNG: import {ids}" if len(hung) == 1 else f"{len(hung)} HUNG: imports {ids}"
        # Textual's Content, not a Rich Text span: the 16-colour theme's `ansi_*` colours parse here.
        return Content.assemble(f"importconsole · {self.TITLE_TEXT} · ",
                                (f"{what} (m, then u)", f"bold reverse {colour}".strip()), f" · {where}")

    def refresh_title(self) -> None:
        try:
            self.query_one("#title-line", TitleLine).update(self.title_text())
        except NoMatches:  # not composed yet (anything else is a bug to see, not to hide)
            pass

    def on_screen_resume(self) -> None:
        self.refresh_title()


def unseen_reason(app: ImportConsoleApp) -> str:
    """A few words for the title line; the monitor has the LMS's whole sentence."""
    from importconsole.lms.errors import Forbidden, Unauthorized

    fatal = app.watcher.fatal if app.watcher is not None else None
    if isinstance(fatal, Unauthorized):
        return "token refused"
    if isinstance(fatal, Forbidden):
        return "access refused"
    return "requests fail"


def unseen_sentence(app: ImportConsoleApp, unseen: LmsUnseen) -> str:
    """Why, since when and what to do, in the console's keys (the core's advice names the CLI
    for a refused token; here Connect takes a new one)."""
    import time

    from importconsole.lms.errors import Forbidden, Unauthorized
    from importconsole.operations.watch import format_duration
    from importconsole.tui.text import said, sentence

    fatal = app.watcher.fatal if app.watcher is not None else None
    if isinstance(fatal, (Unauthorized, Forbidden)):
        what = "Here: n (Connect) takes another token; r asks the LMS again."
    else:
        what = f"{unseen.what_to_do} Here: r asks the LMS again now."
    age = format_duration(max(0.0, time.time() - unseen.since))
    return f"The LMS has not been seen for {age} (since {unseen.since_text()}): {sentence(said(unseen.why))} {what}"
