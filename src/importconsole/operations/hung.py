"""Hung imports: detect them (pure, injected clock) and diagnose why they stopped.

The LMS never says an import is hung (page: "Unlocking imports"): it stays `running`, keeps the
importer locked and stops moving. So hung is something the console concludes: the importer is
locked by an import whose `rows_processed` has not changed for `hung_after` seconds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING
from collections.abc import Callable, Iterable

from importconsole.importfile.safe_text import SPECIAL_RE
from importconsole.importfile.safe_text import describe as describe_character
from importconsole.lms.models import ACTIVE_STATES, ImportState
from importconsole.private_files import write_private

if TYPE_CHECKING:
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


def stall_verdict(item, *, server_time: str | None, lock_holder: int | None, hung_after: float) -> StallVerdict:
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


# ---------------------------------------------------------------------------------------------
# Diagnosis: why did it stop?

CAUSE_SPECIAL_CHARACTERS = "special-characters"
CAUSE_HEADER_WHITESPACE = "header-whitespace"
CAUSE_UNKNOWN = "unknown"


@dataclass(frozen=True)
class SuspectCharacter:
    """One character in the stuck row (or the header) that the page says hangs an import."""

    row: int | None  # None: in the header
    column: str
    position: int  # 0-based index within the cell
    code_point: str  # "U+200B"
    name: str

    def describe(self) -> str:
        where = "the header" if self.row is None else f"row {self.row}"
        return f"{self.code_point} ({self.name}) in {where}, column {self.column!r}, at character {self.position + 1}"


@dataclass(frozen=True)
class Diagnosis:
    """Why an import stopped, stated only as far as the file shows it."""

    import_id: int
    row: int  # the row after the last processed one
    line: int | None  # physical line of that row in the submitted file
    cause: str  # CAUSE_SPECIAL_CHARACTERS, CAUSE_HEADER_WHITESPACE or CAUSE_UNKNOWN
    characters: tuple[SuspectCharacter, ...] = ()
    header_problems: tuple[str, ...] = ()
    file_source: str = ""  # "server" or the local path whose sha256 matched
    rows_processed: int = 0  # what the diagnosis saw; unlock compares against it
    rows_total: int = 0
    note: str = ""

    @property
    def known(self) -> bool:
        return self.cause != CAUSE_UNKNOWN

    def summary(self) -> str:
        if self.cause == CAUSE_HEADER_WHITESPACE:
            return "the header has extra spaces: " + "; ".join(self.header_problems)
        if self.cause == CAUSE_SPECIAL_CHARACTERS:
            return "special characters: " + "; ".join(c.describe() for c in self.characters)
        if self.note:
            return f"cause unknown: {self.note}"
        return f"cause unknown: row {self.row} holds no special characters and the header is clean"

    def to_json(self) -> dict:
        return {
            "import_id": self.import_id,
            "row": self.row,
            "line": self.line,
            "cause": self.cause,
            "characters": [
                {"row": c.row, "column": c.column, "position": c.position + 1,
                 "code_point": c.code_point, "name": c.name}
                for c in self.characters
            ],
            "header_problems": list(self.header_problems),
            "file_source": self.file_source,
            "rows_processed": self.rows_processed,
            "rows_total": self.rows_total,
            "summary": self.summary(),
        }


# The import-file engine's definition of "special characters" (importfile.safe_text), so the
# diagnosis names what `validate` flags (a tab is data in a cell, not a hang). The reference
# server hangs on a documented subset.
_UNUSUAL_SPACES = {"\u00a0", "\u1680", "\u202f", "\u205f", "\u3000"} | {chr(c) for c in range(0x2000, 0x200B)}
_INVISIBLES = {"\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u180e"}


def is_special_character(ch: str) -> bool:
    return ch not in ("\t", "\r", "\n") and SPECIAL_RE.fullmatch(ch) is not None


def _char_name(ch: str) -> str:
    text = describe_character(ch)  # "U+200B ZERO WIDTH SPACE" or "invalid byte 0x96"
    return text.split(" ", 1)[1] if text.startswith("U+") and " " in text else text


def special_characters(cells: Iterable[str], columns: list[str], row: int | None) -> list[SuspectCharacter]:
    found = []
    for index, cell in enumerate(cells):
        column = columns[index] if index < len(columns) else f"column {index + 1}"
        for pos, ch in enumerate(cell):
            if is_special_character(ch):
                found.append(SuspectCharacter(row, column, pos, f"U+{ord(ch):04X}", _char_name(ch)))
    return found


def _not_utf8(cells: Iterable[str], columns: list[str], row: int | None) -> list[SuspectCharacter]:
    """Letters of a Windows-1252 file (bytes that are not UTF-8), as importfile.validate flags them."""
    found = []
    for index, cell in enumerate(cells):
        column = columns[index] if index < len(columns) else f"column {index + 1}"
        for pos, ch in enumerate(cell):
            if ord(ch) > 127 and not 0xD800 <= ord(ch) <= 0xDFFF and not is_special_character(ch):
                found.append(SuspectCharacter(row, column, pos, f"byte 0x{ch.encode('cp1252')[0]:02X}",
                                              f"{ch} in Windows-1252, not UTF-8"))
    return found


def header_whitespace(header: list[str]) -> list[str]:
    """Header cells with leading, trailing, doubled or non-breaking spaces, described."""
    problems = []
    for cell in header:
        shown = repr(cell)
        if cell != cell.strip():  # any Unicode whitespace, NBSP included
            problems.append(f"{shown} has leading or trailing spaces")
        elif "  " in cell:
            problems.append(f"{shown} has doubled spaces")
        elif any(ch in _UNUSUAL_SPACES or ch in _INVISIBLES for ch in cell):
            problems.append(f"{shown} has a non-breaking or invisible space")
    return problems


def diagnose_file(import_id: int, path, *, rows_processed: int, rows_total: int = 0,
                  file_source: str = "") -> Diagnosis:
    """Look at the row after the last processed one (and the header) of the submitted file.

    Only what is in the file is stated; when nothing there explains the stop, the cause is
    "unknown" and the diagnosis says so instead of guessing.
    """
    from importconsole.importfile.reader import ImportFileError, open_import_file

    row = rows_processed + 1
    base = dict(import_id=import_id, row=row, file_source=file_source,
                rows_processed=rows_processed, rows_total=rows_total)
    try:
        opened = open_import_file(path)
        header = list(opened.header)
        problems = tuple(header_whitespace(header))
        header_chars = special_characters(header, header, row=None)
        line = None
        found: list[SuspectCharacter] = []
        for record in opened.records():
            if record.row == row:
                line = record.line
                found = special_characters(record.cells, [h.strip() for h in header], row=row)
                if opened.encoding == "cp1252":  # the LMS reads UTF-8: these letters become U+FFFD there
                    found += _not_utf8(record.cells, [h.strip() for h in header], row=row)
                break
            if record.row > row:
                break
    except ImportFileError as error:
        return Diagnosis(**base, line=None, cause=CAUSE_UNKNOWN,
                         note=f"the submitted file could not be read: {error}")
    if rows_processed == 0:
        # The header is read before row 1: it can only be why an import stopped before any row.
        if problems:
            return Diagnosis(**base, line=line, cause=CAUSE_HEADER_WHITESPACE,
                             header_problems=problems, characters=tuple(header_chars + found))
        if found or header_chars:
            return Diagnosis(**base, line=line, cause=CAUSE_SPECIAL_CHARACTERS, characters=tuple(header_chars + found))
    elif found:
        return Diagnosis(**base, line=line, cause=CAUSE_SPECIAL_CHARACTERS, characters=tuple(found))
    if line is None:
        note = f"the file has no row {row}"
    elif problems or header_chars:
        what = (f"extra spaces ({'; '.join(problems)})" if problems else
                f"special characters ({'; '.join(c.describe() for c in header_chars)})")
        note = (f"row {row} holds no special characters; the header has {what}, but "
                f"{rows_processed} rows after it were processed, so the header is not why it stopped")
    else:
        note = ""
    return Diagnosis(**base, line=line, cause=CAUSE_UNKNOWN, note=note)


async def diagnose_import(client: LmsBackend, import_id: int, *, journal=None, workdir=None) -> Diagnosis:
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


def _local_copy(journal, item):
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
        data = entry if isinstance(entry, dict) else getattr(entry, "__dict__", {})
        if data.get("import_id") != item.id or not data.get("file_path"):
            continue
        if data.get("sha256") not in (None, item.file_sha256):
            continue
        path = Path(data["file_path"])
        try:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError:
            continue
        if digest == item.file_sha256:
            return path
    return None


# The name docs/architecture.md gives the seam.
diagnose = diagnose_import
