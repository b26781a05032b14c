"""Text from an import file or the LMS goes through the core's `safe_text.visible` before it
reaches the terminal: a CSV cell must never move the cursor or flip the text direction."""

from __future__ import annotations

from rich.cells import cell_len, set_cell_size

from importconsole.importfile.safe_text import visible
from importconsole.importfile.wording import plural, sentence  # noqa: F401 (sentence: one full stop, for screens)


def shown(text: object) -> str:
    return visible("" if text is None else str(text))


def shown_header(name: str) -> str:
    """A header cell with its spaces made visible too: leading, trailing and doubled spaces
    are exactly what hangs the LMS importer."""
    text = shown(name)
    stripped = text.strip(" ")
    lead = len(text) - len(text.lstrip(" "))
    trail = len(text) - len(text.rstrip(" "))
    middle = stripped
    while "  " in middle:
        middle = middle.replace("  ", "·" * 2)
    return "·" * lead + middle + "·" * trail


def clip(text: str, width: int) -> str:
    """Exactly `width` terminal cells (wide letters such as 王 count two)."""
    if width <= 0:
        return ""
    if cell_len(text) <= width:
        return set_cell_size(text, width)
    return set_cell_size(text, width - 1) + "…"


def said(text: object) -> str:
    """A sentence from the core (an error, a plan): its own line breaks kept, everything else
    made visible. `shown` alone turned them into `<U+000A>` in the middle of the sentence."""
    return "\n".join(shown(line) for line in ("" if text is None else str(text)).split("\n"))


def count(n: int, thing: str, many: str | None = None) -> str:
    """`1 row`, `2 rows`, `1,204 rows` (the core's plural, with the thousands a screen shows)."""
    return f"{n:,} " + plural(n, thing, many).split(" ", 1)[1]


def fit(text: str, width: int) -> str:
    """importfile.wording.clip counted in terminal cells (王 takes two): at most `width` cells; a
    longer value ends in "…" (a cut id reads as another id, LEGACY-2019 as LEGACY-201). Show the
    whole value elsewhere on the screen."""
    return text if cell_len(text) <= width else set_cell_size(text, max(0, width - 1)) + "…"
