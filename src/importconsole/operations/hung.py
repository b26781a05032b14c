"""Hung imports: detect them (pure, injected clock) and diagnose why they stopped (the file's part:
importfile.diagnosis).

The LMS never says an import is hung (page: "Unlocking imports"): it stays `running`, keeps the
importer locked and stops moving. So hung is something the console concludes: the importer is
locked by an import whose `rows_processed` has not changed for `hung_after` seconds.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING
from collections.abc import Callable

# Why it stopped is read from the file alone (importfile.diagnosis); the names stay importable from here.
from importconsole.importfile.diagnosis import CAUSE_HEADER_WHITESPACE as CAUSE_HEADER_WHITESPACE
from importconsole.importfile.diagnosis import CAUSE_SPECIAL_CHARACTERS as CAUSE_SPECIAL_CHARACTERS
from importconsole.importfile.diagnosis import CAUSE_UNKNOWN as CAUSE_UNKNOWN
from importconsole.importfile.diagnosis import Diagnosis as Diagnosis
from importconsole.importfile.diagnosis import SuspectCharacter as SuspectCharacter
from importconsole.importfile.diagnosis import diagnose_file as diagnose_file
from importconsole.importfile.diagnosis import header_whitespace as header_whitespace
from importconsole.importfile.diagnosis import is_special_character as is_special_character
from importconsole.importfile.diagnosis import special_characters as special_characters
from importconsole.lms.models import ACTIVE_STATES, ImportState
from importconsole.private_files import write_private

if TYPE_CHECKING:
    from pathlib import Path

    from importconsole.journal import Journal
    from importconsole.lms.models import Import
    from importconsole.lms.port import LmsBackend

Clock = Callable[[], float]


@dataclass(frozen=True)
class HungImport:
    """An import the console has concluded is hung."""

    import_id: int
    importer: str
    rows_processed: int
    rows_total: int
    stalled_for: float  # seconds without progress (ages from the server's clock, counted on the console's)

    @property
    def stopped_at_row(self) -> int:
        # rows_processed counts committed rows, so the row it is stuck on is the next one.
        return self.rows_processed + 1


@dataclass
class _Progress:
    rows_processed: int
    changed_at: float
    importer: str = ""
    rows_total: int = 0
    seen_at: float = 0.0  # when this value was last observed (console's clock)


def moved_ago(*, server_time: str | None, last_progress_at: str | None, started_at: str | None,
              rows_processed: int) -> float | None:
    """Seconds since the import last moved, by the SERVER's clock: `server_time` (when the server
    read the import) minus `last_progress_at`, or `started_at` before the first row. Both stamps
    come from one machine, so the console's wall clock never enters. None when the server did not
    say (no `server_time`, a queued import, unreadable stamps): the caller falls back to "first
    seen". Never negative."""
    from importconsole.lms.models import parse_time

    since = last_progress_at if rows_processed > 0 else (last_progress_at or started_at)
    now, then = parse_time(server_time), parse_time(since)
    if now is None or then is None:
        return None
    return max(0.0, (now - then).total_seconds())


@dataclass(frozen=True)
class StallVerdict:
    """How long a running import has not moved (by the LMS's clock) and whether that is hung."""

    moved_ago: float | None  # None: the LMS did not say
    hung: bool
    sentence: str


def stall_verdict(item: Import, *, server_time: str | None, lock_holder: int | None, hung_after: float) -> StallVerdict:
    """For `diagnose`: the same rule as the watcher (no progress for `hung_after` seconds while
    the import holds its importer's lock), said in one sentence with the figures."""
    from importconsole.operations.watch import format_duration

    if item.state == ImportState.QUEUED:
        return StallVerdict(None, False, "It is queued: it waits for the importer, so it is not hung.")
    age = moved_ago(server_time=server_time, last_progress_at=item.last_progress_at,
                    started_at=item.started_at, rows_processed=item.rows_processed)
    threshold = f"hung after {format_duration(hung_after)} without progress while holding the lock"
    if age is None:
        return StallVerdict(None, False, "The LMS did not say when it last moved, so the console cannot tell "
                                         f"whether it is hung ({threshold}); watch it with "
                                         f"`importconsole watch {item.id}`.")
    moved = f"It has not moved for {format_duration(age)} (by the LMS's clock)"
    if lock_holder != item.id:
        return StallVerdict(age, False, f"{moved}, but it does not hold the {item.importer} importer's lock, so it is "
                                        "not hung: it waits its turn.")
    if age >= hung_after:
        return StallVerdict(age, True, f"{moved} and holds the {item.importer} importer's lock: that counts as hung "
                                       f"({threshold}).")
    return StallVerdict(age, False, f"{moved}: not hung yet ({threshold}); it may still move.")


class HungDetector:
    """Watches progress samples and says which imports are hung.

    Feed it every sample you see (`observe`), and call `check` on each poll tick. Without
    `moved_ago` the stall clock starts when the console first sees a value. With it (the server's
    own measure of how long the value has held, see `moved_ago()`), the stall clock is set back
    by that much, so an import stuck since last night is hung on first sight. Only differences of
    the injected clock are used: its offset from any wall clock does not matter.
    """

    def __init__(self, hung_after: float, clock: Clock = time.monotonic) -> None:
        if hung_after <= 0:
            raise ValueError("hung_after must be a positive number of seconds")
        self.hung_after = float(hung_after)
        self._clock = clock
        self._progress: dict[int, _Progress] = {}
        self._lock_holders: dict[str, int | None] = {}

    def observe(self, import_id: int, rows_processed: int, *, state: str = "running",
                importer: str = "", rows_total: int = 0, moved_ago: float | None = None) -> None:
        """Record a sample of an import's progress. Imports that ended are forgotten.

        `moved_ago`: seconds since this value was reached, by the server's clock (None: unknown).
        """
        if state not in ACTIVE_STATES:
            self._progress.pop(import_id, None)
            return
        now = self._clock()
        # Both "now" and "now - moved_ago" are no earlier than the real moment of the change
        # (the age is measured before we receive it), so the earlier of them is still safe.
        since = now if moved_ago is None else now - max(0.0, moved_ago)
        seen = self._progress.get(import_id)
        if seen is None:
            self._progress[import_id] = _Progress(rows_processed, since, importer, rows_total, now)
        elif seen.rows_processed != rows_processed:
            # It changed after we last saw the old value: never date the change before that.
            self._progress[import_id] = _Progress(rows_processed, max(since, seen.seen_at), importer or seen.importer,
                                                  rows_total or seen.rows_total, now)
        else:
            seen.changed_at = min(seen.changed_at, since)
            seen.seen_at = now
            seen.importer = importer or seen.importer
            seen.rows_total = rows_total or seen.rows_total

    def observe_lock(self, importer: str, import_id: int | None) -> None:
        """Record who holds an importer's lock (None: free)."""
        self._lock_holders[importer] = import_id

    def forget(self, import_id: int) -> None:
        self._progress.pop(import_id, None)

    def stalled_for(self, import_id: int) -> float | None:
        seen = self._progress.get(import_id)
        return None if seen is None else self._clock() - seen.changed_at

    def is_locked_by(self, import_id: int) -> bool:
        return import_id in self._lock_holders.values()

    def hung(self, import_id: int) -> HungImport | None:
        """The import as hung, or None (moving, ended, or not holding its importer's lock)."""
        seen = self._progress.get(import_id)
        if seen is None or not self.is_locked_by(import_id):
            return None
        stalled = self._clock() - seen.changed_at
        if stalled < self.hung_after:
            return None
        importer = seen.importer or next(
            (name for name, holder in self._lock_holders.items() if holder == import_id), "")
        return HungImport(import_id, importer, seen.rows_processed, seen.rows_total, stalled)

    def check(self) -> list[HungImport]:
        """Every import that is hung right now."""
        found = [self.hung(import_id) for import_id in list(self._progress)]
        return [h for h in found if h is not None]


async def diagnose_import(client: LmsBackend, import_id: int, *, journal: Journal | None = None,
                          workdir: str | os.PathLike[str] | None = None) -> Diagnosis:
    """Diagnose an import from its submitted file: the local copy when the journal names one
    whose sha256 still matches, else the copy the LMS keeps (GET /imports/{id}/file)."""
    import asyncio
    import hashlib
    import tempfile
    from pathlib import Path

    item = await client.get_import(import_id)
    local = _local_copy(journal, item)
    if local is not None:
        return await asyncio.to_thread(diagnose_file, item.id, local, rows_processed=item.rows_processed,
                                       rows_total=item.rows_total, file_source=str(local))
    from importconsole.lms.port import require

    require(client, "submitted_file", f"read the file of import {import_id} to name the row it stopped at",
            "give the file that was uploaded with --file")
    content = await client.import_file(import_id)
    if item.file_sha256 and hashlib.sha256(content).hexdigest() != item.file_sha256:
        return Diagnosis(import_id=item.id, row=item.rows_processed + 1, line=None, cause=CAUSE_UNKNOWN,
                         file_source="server", rows_processed=item.rows_processed, rows_total=item.rows_total,
                         note="the file the LMS sent back does not match the sha256 it recorded")
    with tempfile.TemporaryDirectory(dir=workdir, prefix="importconsole-diagnose-") as tmp:
        # The LMS's file name is data chosen by the uploader (`..`, `x/../..`, 300 bytes): never a path.
        path = Path(tmp) / f"import-{item.id}.csv"
        write_private(path, content)  # the file names people
        return await asyncio.to_thread(diagnose_file, item.id, path, rows_processed=item.rows_processed,
                                       rows_total=item.rows_total, file_source="server")


def _local_copy(journal: Journal | None, item: Import) -> Path | None:
    """The path the journal recorded for this import, if the file there is still the same bytes."""
    import hashlib
    from pathlib import Path

    if journal is None or not item.file_sha256:
        return None
    try:
        entries = list(journal.entries())
    except Exception:  # an unreadable journal only means we download the file instead
        return None
    for entry in reversed(entries):
        if entry.import_id != item.id or not entry.file_path:
            continue
        if entry.sha256 not in (None, item.file_sha256):
            continue
        path = Path(entry.file_path)
        try:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError:
            continue
        if digest == item.file_sha256:
            return path
    return None


# The name docs/architecture.md gives the seam.
diagnose = diagnose_import
