"""The footer's navigation line: the keys that go to every screen, on every screen.

Textual's Footer is one line; at 80 columns a screen's own keys and the seven screens do not fit
in it together, so the screens get a line of their own just above it (house rule: every action
in the palette AND the footer)."""

from __future__ import annotations

import re

from rich.text import Text
from textual.widget import Widget

# (key, action, label): the footer's words; `?` help and the palette use the bindings' own.
NAVIGATION = [
    ("f", "show('files')", "Files"),
    ("p", "show('preview')", "Preview"),
    ("v", "show('findings')", "Findings"),
    ("m", "show('monitor')", "Monitor"),
    ("c", "show('credit')", "Credit"),
    ("j", "show('journal')", "Journal"),
    ("n", "show('connect')", "Connect"),
    ("q", "quit", "Quit"),
]
_MODE = re.compile(r"show\('(\w+)'\)")


class NavigationBar(Widget):
    """`f Files p Preview v Findings ...`: the screen you are on stands out; a key the screen
    uses for its own action (preview's `v` validates) is left to the line below; a key a text
    field takes while you type is shown dimmed."""

    DEFAULT_CSS = """
    NavigationBar {
        height: 1;
        background: $footer-background;
        color: $footer-foreground;
    }
    """
    COMPONENT_CLASSES = {"navigation-bar--key", "navigation-bar--label", "navigation-bar--here"}

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._spans: list[tuple[int, int, str]] = []

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _bindings_changed(self, screen) -> None:
        self.refresh()

    def entries(self) -> list[tuple[str, str, str]]:
        """(key shown, label, "on" | "here" | "off") in order, as drawn."""
        active = self.screen.active_bindings
        here = self.app.current_mode
        out = []
        for key, action, label in NAVIGATION:
            now = active.get(key)
            if now is None:
                state = "off"  # a focused text field takes the key
            elif now.binding.action != action:
                continue  # the screen's own key: it is in the Footer line
            else:
                match = _MODE.fullmatch(action)
                state = "here" if match and match.group(1) == here else "on"
            out.append((key, label, state))
        return out

    def render(self) -> Text:
        key_style = self.get_component_rich_style("navigation-bar--key")
        label_style = self.get_component_rich_style("navigation-bar--label")
        here_style = self.get_component_rich_style("navigation-bar--here")
        text = Text(no_wrap=True, overflow="crop")
        self._spans = []
        for key, label, state in self.entries():
            start = text.cell_len
            text.append(key, here_style if state == "here" else key_style)
            text.append(" " + label, here_style if state == "here" else label_style)
            if state == "off":
                text.stylize("dim", start)
            else:
                self._spans.append((start, text.cell_len, key))
            text.append(" ")
        return text

    def on_click(self, event) -> None:
        for start, end, key in self._spans:
            if start <= event.x < end:
                self.app.simulate_key(key)
                return
