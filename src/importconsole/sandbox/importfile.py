"""How the reference LMS reads a submitted import file (its own, simple reader, like the real LMS's).

Records are split on the raw bytes (quote, comma and line breaks are ASCII, so UTF-8 never hides
them), which keeps exact byte offsets for `/imports/{id}/remaining`. The file is read in chunks
from a seekable binary file and one record at a time is kept: memory stays flat in file size
(a 100 MB upload never becomes 100 MB of objects). A record longer than MAX_RECORD_BYTES is not
kept at all: it is scanned for the hang trigger set on the way and then fails as a row.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from dataclasses import dataclass, field
from typing import BinaryIO
from collections.abc import Iterator

KNOWN_COLUMNS = {
    "external_user_id", "external_email", "first_name", "last_name", "external_course_id", "title",
    "enrollment_start", "enrollment_end", "participant_category", "complete", "date_completed",
    "credit_type", "credits", "credit_expiration",
}

# The hang trigger set (docs/sandbox.md): C0 controls other than tab/LF/CR (NUL included),
# NBSP, zero-width space/non-joiner/joiner, U+FEFF after the start of the file, U+FFFD (which
# is also what undecodable bytes become).
HANG_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\u00a0\u200b-\u200d\ufeff\ufffd]")

CHUNK = 1 << 20
MAX_RECORD_BYTES = 4 << 20  # far above csv's 128 KiB cell limit: a longer row cannot be read anyway
_SPECIAL = re.compile(rb'["\r\n]')
_BREAK = re.compile(rb"\r\n|\r|\n")


@dataclass
class Record:
    row: int           # 1 = first data row
    line: int          # physical line the record starts on (1-based; the header is line 1)
    start: int         # byte offsets in the submitted file
    end: int
    text: str | None   # decoded, line break removed; None when longer than MAX_RECORD_BYTES
    hang_reason: str | None = None


@dataclass(frozen=True)
class Position:
    """Where a record starts: enough to read the file on from there without reading what is before."""
    offset: int
    row: int           # the row number the record there gets
    line: int


@dataclass
class ParsedFile:
    """What the LMS knows of a file before it imports it: its header, never its records."""
    error: str | None = None              # unreadable: the import fails with this
    header: list[str] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)   # header cells, normalised
    header_end: int = 0
    header_hang: str | None = None        # the header itself stops the importer
    delimiter: str = ","
    first_line: int = 2                   # the physical line the first record can start on
    rows_total: int = 0                   # counted by inspect(); 0 from read_header()

    @property
    def first(self) -> Position:
        return Position(self.header_end, 1, self.first_line)

    def cells(self, record: Record) -> list[str]:
        """The record's cells; CellTooLong when one is over csv's field limit (the row fails, the file goes on)."""
        if record.text is None:
            raise CellTooLong(f"the row is longer than {MAX_RECORD_BYTES >> 20} MiB, more than the LMS reads")
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


# ---- the raw record scanner ----

@dataclass
class _Raw:
    start: int
    end: int
    breaks: int
    data: bytes | None          # the record's bytes, line break included; None when too long
    hang: str | None = None     # too long only: the first trigger, found while scanning
    blank: bool = False         # too long only: nothing but spaces and delimiters


class _LongRecord:
    """Scans a record too long to keep, piece by piece: its line breaks, first hang trigger, blankness."""

    def __init__(self, blank_chars: str):
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.chars = 0
        self.breaks = 0
        self.hang: str | None = None
        self.blank = True
        self.blank_chars = blank_chars + "\r\n"

    def feed(self, piece: bytes, final: bool = False) -> None:
        self.breaks += len(_BREAK.findall(piece))
        text = self.decoder.decode(piece, final)
        if self.hang is None:
            hit = HANG_CHARS.search(text)
            if hit:
                self.hang = f"{describe(hit.group())} at character {self.chars + hit.start() + 1} of the row"
        if self.blank and text.strip(self.blank_chars):
            self.blank = False
        self.chars += len(text)


def _raw_records(fh: BinaryIO, offset: int, blank_chars: str) -> Iterator[_Raw]:
    """Records of `fh` from `offset` (a record boundary), split on unquoted line breaks; a quote
    left open runs to the end of the file. Reads CHUNK bytes at a time; keeps one record."""
    fh.seek(offset)
    buf, base, pos, eof = b"", offset, 0, False
    while True:
        if pos >= len(buf):
            if eof:
                return
            base, buf, pos = base + pos, fh.read(CHUNK), 0
            if not buf:
                return
        rec_start, keep, i, in_quote, long = base + pos, pos, pos, False, None
        while True:
            if in_quote:
                k = buf.find(b'"', i)
                if k >= 0:
                    in_quote, i = False, k + 1
                    continue
                i = len(buf)
            else:
                m = _SPECIAL.search(buf, i)
                if m is not None:
                    j = m.start()
                    if buf[j] == 0x22:  # a quote: line breaks up to the next one are data
                        in_quote, i = True, j + 1
                        continue
                    if buf[j] == 0x0A or j + 1 < len(buf) or eof:  # \n, or a \r whose next byte is known
                        end = j + 2 if buf[j] == 0x0D and buf[j + 1:j + 2] == b"\n" else j + 1
                        break
                    i = j  # a \r at the end of what was read: it may be \r\n
                else:
                    i = len(buf)
            if eof:
                end = len(buf)
                break
            if long is None and base + i - rec_start > MAX_RECORD_BYTES:
                long = _LongRecord(blank_chars)
            if long is not None:  # scan what was read, keep none of it (but a last \r: it may be \r\n)
                cut = i - 1 if i > keep and buf[i - 1] == 0x0D else i
                long.feed(buf[keep:cut])
                keep = cut
            base, buf, i, keep = base + keep, buf[keep:], i - keep, 0
            chunk = fh.read(CHUNK)
            eof = not chunk
            buf += chunk
        pos = end
        if long is None and base + end - rec_start > MAX_RECORD_BYTES:  # the same rule, however it was read
            long = _LongRecord(blank_chars)
        if long is not None:
            long.feed(buf[keep:end], final=True)
            yield _Raw(rec_start, base + end, long.breaks, None, long.hang, long.blank)
        elif end > keep:
            data = buf[keep:end]
            yield _Raw(rec_start, base + end, len(_BREAK.findall(data)), data)


# ---- reading a file ----

def _sniff(fh: BinaryIO) -> tuple[str | None, int]:
    """(why the file cannot be read at all, or None; where its header starts)."""
    fh.seek(0)
    head = fh.read(400)
    if not head.strip():
        while chunk := fh.read(CHUNK):  # whitespace only, however long?
            if chunk.strip():
                break
        else:
            return "the file is empty", 0
    if head.startswith(b"PK\x03\x04") or head.startswith(b"\xd0\xcf\x11\xe0"):
        return "this is an Excel workbook, not a CSV file; export it as CSV UTF-8", 0
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or (len(head) > 3 and head[1::2].count(0) > len(head) // 4):
        return "the file is UTF-16; save it as CSV UTF-8", 0
    return None, 3 if head.startswith(b"\xef\xbb\xbf") else 0


def read_header(fh: BinaryIO) -> ParsedFile:
    """The file's header (or why it cannot be read), reading no further than the header row."""
    error, bom = _sniff(fh)
    parsed = ParsedFile(error=error)
    if error:
        return parsed
    raw = next(_raw_records(fh, bom, " ,"), None)
    if raw is None:  # only a BOM and whitespace
        parsed.error = "the file is empty"
        return parsed
    parsed.header_end, parsed.first_line = raw.end, 1 + raw.breaks
    if raw.data is None:
        parsed.error = f"the header row cannot be read: it is longer than {MAX_RECORD_BYTES >> 20} MiB"
        return parsed
    _read_header(parsed, _text(raw.data))
    return parsed


def records(fh: BinaryIO, parsed: ParsedFile, start: Position | None = None) -> Iterator[Record]:
    """The file's records from `start` (default: the first after the header), one at a time."""
    at = start or parsed.first
    row, line = at.row, at.line
    blank_chars = " " + parsed.delimiter
    for raw in _raw_records(fh, at.offset, blank_chars):
        this_line, line = line, line + raw.breaks
        if raw.data is None:
            if raw.blank and raw.hang is None:
                continue
            yield Record(row=row, line=this_line, start=raw.start, end=raw.end, text=None, hang_reason=raw.hang)
            row += 1
            continue
        text = _text(raw.data)
        hit = HANG_CHARS.search(text)
        if not hit and not text.strip(blank_chars):
            continue  # blank rows and rows of only delimiters are not records
        reason = f"{describe(hit.group())} at character {hit.start() + 1} of the row" if hit else None
        yield Record(row=row, line=this_line, start=raw.start, end=raw.end, text=text, hang_reason=reason)
        row += 1


def find_row(fh: BinaryIO, parsed: ParsedFile, row: int, hint: Position | None = None) -> Record | None:
    """The record of `row`, reading on from `hint` when it is at or before it; None past the end."""
    start = hint if hint is not None and hint.row <= row else None
    for record in records(fh, parsed, start):
        if record.row == row:
            return record
    return None


def inspect(fh: BinaryIO) -> ParsedFile:
    """The header and the number of records (rows_total), in one pass of flat memory. Counting needs
    no decoding: a row is blank when its bytes are only spaces, delimiters and its line break (any
    other byte, an undecodable one or a trigger included, makes it a record, as in records())."""
    parsed = read_header(fh)
    if parsed.error is None:
        blank_chars = " " + parsed.delimiter
        blank = (blank_chars + "\r\n").encode()
        parsed.rows_total = sum(1 for raw in _raw_records(fh, parsed.header_end, blank_chars)
                                if (raw.data.strip(blank) if raw.data is not None else not raw.blank or raw.hang))
    return parsed


def parse(data: bytes) -> ParsedFile:
    return inspect(io.BytesIO(data))


def _text(data: bytes) -> str:
    text = data.decode("utf-8", errors="replace")
    return text[:-2] if text.endswith("\r\n") else text[:-1] if text.endswith(("\n", "\r")) else text


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
