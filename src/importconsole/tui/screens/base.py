"""What every console screen shares: a title line saying where the admin is, and the footer."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.content import Content
from textual.css.query import NoMatches
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Footer, Static

from importconsole.tui.widgets.navigation import NavigationBar


class TitleLine(Static):
    """`importconsole · Preview · demo @ http://127.0.0.1:...` in one line (no clock: SSH links are slow)."""


class ConsoleScreen(Screen):
    TITLE_TEXT = ""

    def compose_title(self) -> ComposeResult:
        yield TitleLine(self.title_text(), id="title-line")

    def compose_footer(self) -> ComposeResult:
        # Two lines at the bottom: the screens (and q), then this screen's keys, `?` and Ctrl+P.
        with Vertical(id="footer-area"):
            yield NavigationBar(id="navigation")
            yield Footer(compact=True)

    def title_text(self) -> Content:
        session = getattr(self.app, "session", None)
        where = f"{session.profile} @ {session.base_url}" if session else "not connected"
        hung = sorted(getattr(self.app, "hung_ids", ()))
        if not hung:
            return Content(f"importconsole · {self.TITLE_TEXT} · {where}")
        # Said here on every screen, before the address (which may be clipped at 80 columns).
        ids = ", ".join(str(i) for i in hung[:3]) + (", ..." if len(hung) > 3 else "")
        what = f"HUNG: import {ids}" if len(hung) == 1 else f"{len(hung)} HUNG: imports {ids}"
        # Textual's Content, not a Rich Text span: the 16-colour theme's `ansi_*` colours parse here.
        colour = self.app.theme_variables.get("import-hung", "")
        return Content.assemble(f"importconsole · {self.TITLE_TEXT} · ",
                                (f"{what} (m, then u)", f"bold reverse {colour}".strip()), f" · {where}")

    def refresh_title(self) -> None:
        try:
            self.query_one("#title-line", TitleLine).update(self.title_text())
        except NoMatches:  # not composed yet (anything else is a bug to see, not to hide)
            pass

    def on_screen_resume(self) -> None:
        self.refresh_title()
