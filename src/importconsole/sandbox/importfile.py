"""How the reference LMS reads a submitted import file (its own, simple reader, like the real LMS's).

Records are split on the raw bytes (quote, comma and line breaks are ASCII, so UTF-8 never hides
them), which keeps exact byte offsets for `/imports/{id}/remaining`.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field

KNOWN_COLUMNS = {
    "external_user_id", "external_email", "first_name", "last_name", "external_course_id", "title",
    "enrollment_start", "enrollment_end", "participant_category", "complete", "date_completed",
    "credit_type", "credits", "credit_expiration",
}

# The hang trigger set (docs/sandbox.md): C0 controls other than tab/LF/CR (NUL included),
# NBSP, zero-width space/non-joiner/joiner, U+FEFF after the start of the file, U+FFFD (which
# is also what undecodable bytes become).
HANG_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\u00a0\u200b-\u200d\ufeff\ufffd]")

# One record: quoted runs may hold line breaks; an unterminated quote runs to the end of the file.
_RECORD = re.compile(rb'(?:"[^"]*(?:"|\Z)|[^"\r\n])*(?:\r\n|\n|\r|\Z)')
_BREAK = re.compile(rb"\r\n|\r|\n")


@dataclass
class Record:
    row: int           # 1 = first data row
    line: int          # physical line the record starts on (1-based; the header is line 1)
    start: int         # byte offsets in the submitted file
    end: int
    text: str          # decoded, line break removed
    hang_reason: str | None = None


@dataclass
class ParsedFile:
    error: str | None = None              # unreadable: the import fails with this
    header: list[str] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)   # header cells, normalised
    header_end: int = 0
    header_hang: str | None = None        # the header itself stops the importer
    delimiter: str = ","
    records: list[Record] = field(default_factory=list)

    def cells(self, record: Record) -> list[str]:
        """The record's cells; CellTooLong when one is over csv's field limit (the row fails, the file goes on)."""
        try:
            rows = list(csv.reader(io.StringIO(record.text, newline=""), delimiter=self.delimiter))
        except csv.Error as exc:
            raise CellTooLong(_too_long(exc)) from None
        return [cell for row in rows for cell in row] if len(rows) > 1 else (rows[0] if rows else [])


class CellTooLong(Exception):
    """A cell longer than the LMS reads."""


def _too_long(exc: csv.Error) -> str:
    return f"a value is longer than {csv.field_size_limit():,} characters ({exc})"


def describe(ch: str) -> str:
    return f"U+{ord(ch):04X}"


def parse(data: bytes) -> ParsedFile:
    if not data.strip():
        return ParsedFile(error="the file is empty")
    if data.startswith(b"PK\x03\x04") or data.startswith(b"\xd0\xcf\x11\xe0"):
        return ParsedFile(error="this is an Excel workbook, not a CSV file; export it as CSV UTF-8")
    head = data[:400]
    if data.startswith((b"\xff\xfe", b"\xfe\xff")) or (len(head) > 3 and head[1::2].count(0) > len(head) // 4):
        return ParsedFile(error="the file is UTF-16; save it as CSV UTF-8")
    bom = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    parsed = ParsedFile()
    line = 1
    header_seen = False
    row = 0
    for match in _RECORD.finditer(data, bom):
        start, end = match.span()
        if start == end:
            continue
        chunk = match.group()
        breaks = len(_BREAK.findall(chunk))
        text = chunk.decode("utf-8", errors="replace")
        text = text[:-2] if text.endswith("\r\n") else text[:-1] if text.endswith(("\n", "\r")) else text
        this_line = line
        line += breaks
        if not header_seen:
            header_seen = True
            parsed.header_end = end
            _read_header(parsed, text)
            if parsed.error:
                return parsed
            continue
        if not text.strip(" " + parsed.delimiter) and not HANG_CHARS.search(text):
            continue  # blank rows and rows of only delimiters are not records
        row += 1
        rec = Record(row=row, line=this_line, start=start, end=end, text=text)
        hit = HANG_CHARS.search(text)
        if hit:
            rec.hang_reason = f"{describe(hit.group())} at character {hit.start() + 1} of the row"
        parsed.records.append(rec)
    return parsed


def _read_header(parsed: ParsedFile, text: str) -> None:
    try:
        _read_header_cells(parsed, text)
    except csv.Error as exc:
        parsed.error = f"the header row cannot be read: {_too_long(exc)}"


def _read_header_cells(parsed: ParsedFile, text: str) -> None:
    best, best_known = ",", -1
    for delim in (",", ";", "\t"):
        cells = next(csv.reader([text], delimiter=delim), [])
        known = sum(1 for c in cells if c.strip().lower() in KNOWN_COLUMNS)
        if known > best_known:
            best, best_known = delim, known
    parsed.delimiter = best
    parsed.header = next(csv.reader([text], delimiter=best), [])
    parsed.columns = [c.strip().lower() for c in parsed.header]
    hit = HANG_CHARS.search(text)
    spaced = [c for c in parsed.header if c != c.strip()]
    if hit:
        parsed.header_hang = f"the header holds {describe(hit.group())}"
    elif spaced:
        parsed.header_hang = f"header {spaced[0]!r} has leading or trailing spaces"
    if parsed.header_hang:
        return  # the real LMS does not fail these: it stops (behaviour 8)
    if "external_user_id" not in parsed.columns and "external_email" not in parsed.columns:
        parsed.error = (
            "the header row was not recognised: it needs an external_user_id or external_email column "
            f"(found: {', '.join(parsed.header[:8]) or 'nothing'})"
        )
