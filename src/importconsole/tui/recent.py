"""Recently opened import files, newest first, so the file browser can list them at the top."""

from __future__ import annotations

import json
import os
from pathlib import Path

MAX_RECENT = 20


def recent_path() -> Path:
    override = os.environ.get("IMPORTCONSOLE_STATE_DIR")
    if override:
        return Path(override) / "recent.json"
    from platformdirs import user_state_dir

    return Path(user_state_dir("importconsole")) / "recent.json"


def recent_files() -> list[Path]:
    try:
        items = json.loads(recent_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [Path(p) for p in items if isinstance(p, str) and Path(p).is_file()]


def remember(path: Path) -> None:
    """Best effort: a read-only home must not stop the admin from opening a file."""
    path = Path(path).resolve()
    items = [path] + [p for p in recent_files() if p != path]
    target = recent_path()
    try:
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump([str(p) for p in items[:MAX_RECENT]], out)
    except OSError:
        pass
