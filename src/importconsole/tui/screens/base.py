"""What every console screen shares: a title line saying where the admin is, and the footer."""

from __future__ import annotations

from textual.app import ComposeResult
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

    def title_text(self) -> str:
        session = getattr(self.app, "session", None)
        where = f"{session.profile} @ {session.base_url}" if session else "not connected"
        return f"importconsole · {self.TITLE_TEXT} · {where}"

    def refresh_title(self) -> None:
        try:
            self.query_one("#title-line", TitleLine).update(self.title_text())
        except Exception:  # not composed yet
            pass

    def on_screen_resume(self) -> None:
        self.refresh_title()
