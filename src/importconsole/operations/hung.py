"""Hung imports: detect them (pure, injected clock) and diagnose why they stopped.

The LMS never says an import is hung (page: "Unlocking imports"): it stays `running`, keeps the
importer locked and stops moving. So hung is something the console concludes: the importer is
locked by an import whose `rows_processed` has not changed for `hung_after` seconds.
"""

from __future__ import annotations

import time
import unicodedata
from dataclasses import dataclass, field
from typing import Callable, Iterable

Clock = Callable[[], float]


@dataclass(frozen=True)
class HungImport:
    """An import the console has concluded is hung."""

    import_id: int
    importer: str
    rows_processed: int
    rows_total: int
    stalled_for: float  # seconds without progress, by the console's clock

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


class HungDetector:
    """Watches progress samples and says which imports are hung.

    Feed it every sample you see (`observe`), and call `check` on each poll tick. The stall clock
    starts when the console first sees a value (it cannot know how long it held before), so
    detection latency is at most `hung_after` plus one poll interval.
    """

    def __init__(self, hung_after: float, clock: Clock = time.monotonic) -> None:
        if hung_after <= 0:
            raise ValueError("hung_after must be a positive number of seconds")
        self.hung_after = float(hung_after)
        self._clock = clock
        self._progress: dict[int, _Progress] = {}
        self._lock_holders: dict[str, int | None] = {}

    def observe(self, import_id: int, rows_processed: int, *, state: str = "running",
                importer: str = "", rows_total: int = 0) -> None:
        """Record a sample of an import's progress. Imports that ended are forgotten."""
        if state not in ("queued", "running"):
            self._progress.pop(import_id, None)
            return
        now = self._clock()
        seen = self._progress.get(import_id)
        if seen is None or seen.rows_processed != rows_processed:
            self._progress[import_id] = _Progress(rows_processed, now, importer, rows_total)
        else:
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
        text = f"cause unknown: row {self.row} holds no special characters and the header is clean"
        return text + (f" ({self.note})" if self.note else "")

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


# Characters the page's "special characters" covers. The reference server hangs on a documented
# subset; the console names anything in this wider set, so a real LMS is covered too.
_ALLOWED_CONTROLS = {"\t", "\r", "\n"}
_UNUSUAL_SPACES = {"\u00a0", "\u1680", "\u202f", "\u205f", "\u3000"} | {chr(c) for c in range(0x2000, 0x200B)}
_INVISIBLES = {"\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u180e"}
_BIDI = {chr(c) for c in range(0x202A, 0x202F)} | {chr(c) for c in range(0x2066, 0x206A)} | {"\u200e", "\u200f", "\u061c"}


def is_special_character(ch: str) -> bool:
    if ch in _ALLOWED_CONTROLS:
        return False
    cp = ord(ch)
    if cp < 0x20 or 0x7F <= cp <= 0x9F:
        return True
    if ch in _UNUSUAL_SPACES or ch in _INVISIBLES or ch in _BIDI or ch == "\ufffd":
        return True
    return unicodedata.category(ch) in ("Co", "Cs", "Cn")


def _char_name(ch: str) -> str:
    names = {"\x00": "NUL", "\t": "TAB", "\u200b": "ZERO WIDTH SPACE", "\ufeff": "ZERO WIDTH NO-BREAK SPACE"}
    return names.get(ch) or unicodedata.name(ch, "control character" if unicodedata.category(ch) == "Cc" else "unassigned")


def special_characters(cells: Iterable[str], columns: list[str], row: int | None) -> list[SuspectCharacter]:
    found = []
    for index, cell in enumerate(cells):
        column = columns[index] if index < len(columns) else f"column {index + 1}"
        for pos, ch in enumerate(cell):
            if is_special_character(ch):
                found.append(SuspectCharacter(row, column, pos, f"U+{ord(ch):04X}", _char_name(ch)))
    return found


def header_whitespace(header: list[str]) -> list[str]:
    """Header cells with leading, trailing, doubled or non-breaking spaces, described."""
    problems = []
    for cell in header:
        shown = repr(cell)
        if cell != cell.strip(" \t"):
            problems.append(f"{shown} has leading or trailing spaces")
        elif "  " in cell:
            problems.append(f"{shown} has doubled spaces")
        elif any(ch in _UNUSUAL_SPACES or ch in _INVISIBLES for ch in cell):
            problems.append(f"{shown} has a non-breaking or invisible space")
    return problems


@dataclass
class _Header:
    names: list[str] = field(default_factory=list)
