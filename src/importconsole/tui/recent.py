"""What the console remembers between runs (recent files, newest first; the theme), kept in the
config module's state file (0600): one place for the CLI and the console."""

from __future__ import annotations

from pathlib import Path

from importconsole.config import load_state, save_state


# `state_file`: None is the admin's own state file; the demo passes one in its temporary folder.


def recent_files(state_file: Path | None = None) -> list[Path]:
    return [Path(p) for p in load_state(state_file).recent_files if Path(p).is_file()]


def remember(path: Path, state_file: Path | None = None) -> None:
    """Best effort: a read-only home must not stop the admin from opening a file."""
    state = load_state(state_file)
    state.remember_file(path)
    try:
        save_state(state, state_file)
    except OSError:
        pass


def saved_theme(state_file: Path | None = None) -> str | None:
    return load_state(state_file).theme


def remember_theme(name: str, state_file: Path | None = None) -> None:
    state = load_state(state_file)
    if state.theme == name:
        return
    state.theme = name
    try:
        save_state(state, state_file)
    except OSError:
        pass
