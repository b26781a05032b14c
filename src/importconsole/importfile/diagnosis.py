"""Why a hung import stopped, read from the file alone: the row after the last one the LMS
processed (and the header), with the row, column and character that hang the import
(page: "Unlocking imports"). Pure file analysis; operations.hung asks the LMS which file and row.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .reader import FilePath, ImportFileError, open_import_file
from .safe_text import SPECIAL_RE
from .safe_text import describe as describe_character

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

    def to_json(self) -> dict[str, object]:
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


def diagnose_file(import_id: int, path: FilePath, *, rows_processed: int, rows_total: int = 0,
                  file_source: str = "") -> Diagnosis:
    """Look at the row after the last processed one (and the header) of the submitted file.

    Only what is in the file is stated; when nothing there explains the stop, the cause is
    "unknown" and the diagnosis says so instead of guessing.
    """
    row = rows_processed + 1

    def said(line: int | None, cause: str, *, characters: tuple[SuspectCharacter, ...] = (),
             header_problems: tuple[str, ...] = (), note: str = "") -> Diagnosis:
        return Diagnosis(import_id=import_id, row=row, line=line, cause=cause, characters=characters,
                         header_problems=header_problems, file_source=file_source,
                         rows_processed=rows_processed, rows_total=rows_total, note=note)

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
        return said(None, CAUSE_UNKNOWN, note=f"the submitted file could not be read: {error}")
    if rows_processed == 0:
        # The header is read before row 1: it can only be why an import stopped before any row.
        if problems:
            return said(line, CAUSE_HEADER_WHITESPACE, header_problems=problems, characters=tuple(header_chars + found))
        if found or header_chars:
            return said(line, CAUSE_SPECIAL_CHARACTERS, characters=tuple(header_chars + found))
    elif found:
        return said(line, CAUSE_SPECIAL_CHARACTERS, characters=tuple(found))
    if line is None:
        note = f"the file has no row {row}"
    elif problems or header_chars:
        what = (f"extra spaces ({'; '.join(problems)})" if problems else
                f"special characters ({'; '.join(c.describe() for c in header_chars)})")
        note = (f"row {row} holds no special characters; the header has {what}, but "
                f"{rows_processed} rows after it were processed, so the header is not why it stopped")
    else:
        note = ""
    return said(line, CAUSE_UNKNOWN, note=note)
