"""Small wording helpers every screen and command uses, so no sentence says "1 errors"."""

from __future__ import annotations


def plural(count: int, word: str, many: str | None = None) -> str:
    """`plural(1, "error")` -> "1 error"; `plural(2, "row")` -> "2 rows"; `plural(0, "entry", "entries")`."""
    if count == 1:
        return f"1 {word}"
    return f"{count} {many or word + 's'}"


def sentence(text: str) -> str:
    """One full stop at the end, never "try again.." (text that already ends a sentence is kept)."""
    text = text.rstrip()
    return text if not text or text[-1] in ".!?:" else text + "."


def clip(text: str, width: int) -> str:
    """At most `width` characters; when cut, the last one is "…": an identifier is never cut
    silently (`LEGACY-2019` clipped to 10 is `LEGACY-20…`, not the plausible other id `LEGACY-201`)."""
    return text if len(text) <= width else text[:max(width - 1, 0)] + "…"


__all__ = ["clip", "plural", "sentence"]
