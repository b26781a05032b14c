"""Files that name people or hold the console's memory (journal, plans, fixes, crash reports,
state): readable by the admin alone from the first byte, whatever the umask. Core: no Textual."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

PRIVATE_FILE = 0o600
PRIVATE_FOLDER = 0o700

How = Literal["new", "replace", "append"]
_FLAGS = {"new": os.O_EXCL, "replace": os.O_TRUNC, "append": os.O_APPEND}


def private_folder(path: str | os.PathLike[str]) -> Path:
    """Make the folder (and its parents) if missing: 0700 when this creates it."""
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True, mode=PRIVATE_FOLDER)
    return folder


def open_private(path: str | os.PathLike[str], how: How = "replace", *, follow_links: bool = True) -> int:
    """A descriptor open for writing, the file 0600.
    "new": FileExistsError if anything is there (never over a file); "replace": emptied first;
    "append": added to. A file that was already there is tightened to 0600 too (an older umask).
    follow_links=False: a symlink at `path` is refused (OSError), never written through."""
    flags = os.O_WRONLY | os.O_CREAT | _FLAGS[how]
    if not follow_links:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags, PRIVATE_FILE)
    if how != "new" and hasattr(os, "fchmod"):
        try:
            os.fchmod(fd, PRIVATE_FILE)
        except OSError:
            os.close(fd)
            raise
    return fd


def write_private(path: str | os.PathLike[str], data: bytes | str, *, atomic: bool = False, tmp_name: str | None = None) -> Path:
    """Write the whole file, 0600. atomic: written beside it under `tmp_name` (default NAME.tmp)
    and renamed over it, so a reader sees the old file or the new one, never half of either.
    Text is written as UTF-8 with its line endings as given."""
    target = Path(path)
    dest = target.with_name(tmp_name or f"{target.name}.tmp") if atomic else target
    content = data.encode("utf-8") if isinstance(data, str) else data
    with os.fdopen(open_private(dest, "replace"), "wb") as out:
        out.write(content)
    if atomic:
        os.replace(dest, target)
    return target
