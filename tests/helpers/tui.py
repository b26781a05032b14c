"""Helpers for the console's Pilot tests: what the admin would read on screen, and polling waits."""

from __future__ import annotations

from helpers.wait import until


def lms_session(server, tmp_path):
    """The console's session on this reference LMS: its site admin's token, the journal in tmp_path."""
    from importconsole.tui.session import LmsSession

    return LmsSession(profile="test", base_url=server.base_url, token=server.admin_token,
                      journal_path=tmp_path / "journal.jsonl")


def screen_text(app) -> str:
    """The whole terminal as plain text, one line per row (modals included)."""
    strips = app.screen._compositor.render_strips()
    return "\n".join("".join(segment.text for segment in strip) for strip in strips)


async def wait_for(pilot, condition, *, timeout: float = 10.0, interval: float = 0.05, what: str = "condition"):
    """Poll `condition()` until truthy (helpers.wait.until, paced by `pilot.pause`); fail with what was awaited and the screen."""
    return await until(condition, timeout, interval, what, show=lambda: screen_text(pilot.app), pause=pilot.pause)


async def wait_for_text(pilot, text: str, *, timeout: float = 10.0) -> str:
    await wait_for(pilot, lambda: text in screen_text(pilot.app), timeout=timeout, what=repr(text))
    return screen_text(pilot.app)


BORDERS = "█▀▄▌▐▏▕▎▊│─┃━╭╮╰╯┌┐└┘▔▁"


def flat_text(app) -> str:
    """The screen as one line of words: dialog borders gone and wrapped lines joined, so a
    sentence reads the same at 80 and 120 columns."""
    text = screen_text(app)
    for ch in BORDERS:
        text = text.replace(ch, " ")
    return " ".join(text.split())
