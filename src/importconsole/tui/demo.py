"""`importconsole --demo`: the files a new admin meets every workflow with, in five minutes.
Written for the demo LMS's dataset (docs/sandbox.md): users U0011-U0049 have no enrollments;
U0002-U0006 carry imported credit on incomplete CARD-101 enrollments (credit to fix)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from importconsole.tui.app import ImportConsoleApp


def welcome(colleague_import: int, hung_at_start: bool) -> Callable[[ImportConsoleApp], str]:
    """The Files screen's first words, true whenever read: the colleague's import is hung only
    while the watcher says so (before its first answer: as the demo saw it at start)."""

    def text(app: ImportConsoleApp) -> str:
        view = app.watcher.views.get(colleague_import) if app.watcher is not None else None
        if colleague_import in app.hung_ids or (view is None and hung_at_start):
            now = f"A colleague's import {colleague_import} is hung: m (Monitor), then u."
        elif view is not None and view.finished:
            now = f"A colleague's import {colleague_import} hung; it is {view.shown_state} now (m: Monitor)."
        else:
            now = f"A colleague's import {colleague_import} is on the Monitor (m)."
        return f"Demo LMS; its import files are in the folder below. {now} Credit fixes: c. Keys: ?"

    return text

HEADER = "external_user_id,first_name,last_name,complete,date_completed,credit_type,credits"


def _rows(lines: list[str]) -> bytes:
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def write_demo_files(folder: Path) -> Path:
    """Three import files in `folder/import-files`; returns that folder."""
    target = folder / "import-files"
    target.mkdir(parents=True, exist_ok=True)
    completions = [HEADER]
    for n in range(11, 31):
        date = "" if n in (14, 22) else f"2026-02-{n - 10:02d}"  # completion-date-missing: warning
        completions.append(f"U{n:04d},Learner,{n},1,{date},,")
    (target / "card-101-completions.csv").write_bytes(_rows(completions))

    partial = ["external_user_id ,first_name,last_name,complete,date_completed,credit_type,credits"]  # header-whitespace
    for n in range(31, 41):
        credits = "0.5" if n % 3 == 0 else ""  # partial credit on a non-variable type
        partial.append(f"U{n:04d},Learner,{n},1,2026-03-{n - 30:02d},{'ama' if credits else ''},{credits}")
    (target / "card-101-partial-credit.csv").write_bytes(_rows(partial))

    hangs = [HEADER]
    for n in range(41, 50):
        last = f"Nguyen\u200b{n}" if n == 47 else f"Learner{n}"  # row 7: ZERO WIDTH SPACE
        hangs.append(f"U{n:04d},Demo,{last},1,2026-04-{n - 40:02d},,")
    (target / "ethics-110-hangs.csv").write_bytes(_rows(hangs))
    return target


async def submit_hanging_import(client, folder: Path):
    """What a colleague did before you arrived: sent the hanging file straight to the LMS
    (no console, no validation). The monitor shows it hung, and `u` recovers it."""
    return await client.submit_import(folder / "ethics-110-hangs.csv", importer="course",
                                      course_external_id="ETHICS-110", idempotency_key="demo-colleague-ethics-110")


async def wait_until_hung(client, import_id: int, hung_after: float, *, timeout: float = 30.0) -> bool:
    """Wait until the watcher's own rule calls the import hung (no progress for `hung_after` by
    the LMS's clock, importer locked): the demo's "already hung" import is hung on the console's
    first frame, never "running" for the first seconds. False if it did not hang in time."""
    import asyncio

    from importconsole.operations.watch import ImportWatcher

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        watcher = ImportWatcher(client, hung_after=hung_after)  # a fresh first sync, as the console's
        page = await client.list_imports(limit=20)
        for item in page.items:
            watcher.apply_import(item, server_time=page.server_time)
        for lock in await client.locks():
            watcher.apply_lock(lock)
        view = watcher.views.get(import_id)
        if view is not None and view.is_hung:
            return True
        await asyncio.sleep(0.2)
    return False
