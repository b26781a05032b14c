"""What the console remembers between runs (recent files, newest first; the theme), kept in the
config module's state file (0600): one place for the CLI and the console."""

from __future__ import annotations

from pathlib import Path

from importconsole.config import load_state, save_state


def recent_files() -> list[Path]:
    return [Path(p) for p in load_state().recent_files if Path(p).is_file()]


def remember(path: Path) -> None:
    """Best effort: a read-only home must not stop the admin from opening a file."""
    state = load_state()
    state.remember_file(path)
    try:
        save_state(state)
    except OSError:
        pass


def saved_theme() -> str | None:
    return load_state().theme


def remember_theme(name: str) -> None:
    state = load_state()
    if state.theme == name:
        return
    state.theme = name
    try:
        save_state(state)
    except OSError:
        pass
