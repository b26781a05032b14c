"""The fast reading path validation runs on: the file in text chunks of about 1 MiB, each cut at
a line end outside quotes, parsed as a whole.

A chunk with no quote, no special character and valid text is split with str.split (the same
cells csv would give: no quoting to undo) and needs no per-cell character checks; only other
chunks go through the csv module with each record's raw text kept for the character rules. The
whole-chunk tests (isascii, a byte translate, a strict encode) run in C, which is what keeps
validation of a 1M-row file within twice a bare csv.reader pass.
"""

from __future__ import annotations

import io
from collections import Counter
from dataclasses import dataclass

from .reader import ImportFile

CHUNK_CHARS = 1 << 20

# Bytes worth a closer look in UTF-8 text: C0 controls, DEL, the quote, and the lead bytes of
# the special characters' ranges (C1/NBSP/soft hyphen, Arabic format marks, U+1680/U+180E,
# U+2000-U+206F, U+3000, private use and specials, astral planes).
_SUSPECT = {*range(0, 10), 11, 12, *range(14, 32), 127, ord('"'), 0xC2, 0xD8, 0xDB, 0xDC, 0xE1, 0xE2, 0xE3,
            0xEE, 0xEF, 0xF0, 0xF1, 0xF2, 0xF3, 0xF4}


def _delete_table(delimiter: str) -> bytes:
    keep = set(_SUSPECT)
    if delimiter == "\t":
        keep.discard(9)
    return bytes(b for b in range(256) if b not in keep)


@dataclass
class Chunk:
    rows: list[list[str]]  # the records' cells (blank rows removed)
    first_row: int  # row number of rows[0]
    lines: list[int] | None  # start line of each record; None = consecutive from first_line
    first_line: int
    raws: list[str] | None  # each record's raw text; None for a clean chunk
    clean: bool  # no quote, no special or invalid character anywhere in the chunk
    text: str  # the chunk's text (for whole-chunk checks)
    blank_lines: list[int]
    physical_lines: int = 0

    def line_of(self, i: int) -> int:
        return self.first_line + i if self.lines is None else self.lines[i]


def scan(import_file: ImportFile, *, chunk_chars: int = CHUNK_CHARS):
    """Yield Chunks covering every line after the header, in order."""
    f = import_file
    delim = f.delimiter
    table = _delete_table(delim)
    limit = f.field_size_limit
    endings = f.line_ending_counts
    row = 0
    line = f.header_end_line + 1
    carry = ""
    with f.open_text() as text:
        eof = False
        while not eof or carry:
            data = text.read(chunk_chars) if not eof else ""
            if not data:
                eof = True
            buf = carry + data
            if not buf:
                break
            if eof:
                cut = len(buf)
            else:
                # A final \r may be the first half of a CRLF: keep it for the next read.
                end = len(buf) - 1 if buf.endswith("\r") else len(buf)
                cut = max(buf.rfind("\n", 0, end), buf.rfind("\r", 0, end)) + 1
                if cut <= 0:
                    carry = buf
                    continue
                if '"' in buf and buf.count('"', 0, cut) % 2:
                    # Inside a quoted value: read on, unless the value is past the field cap
                    # (the csv module then reports it).
                    if len(buf) < limit * 2 + chunk_chars:
                        carry = buf
                        continue
            part, carry = buf[:cut], buf[cut:]
            if eof and carry:
                part, carry = buf, ""
            chunk = _parse(part, delim, row + 1, line, table, limit, f, endings)
            row += len(chunk.rows)
            line += chunk.physical_lines
            yield chunk
    f.lines_read = line - 1
    from .reader import _endings_label

    f.line_endings = _endings_label(endings, f.line_endings)


def _count_lines(text: str) -> int:
    lf = text.count("\n")
    cr = text.count("\r")
    n = lf + cr - (text.count("\r\n") if cr and lf else 0)
    if text and text[-1] not in "\r\n":
        n += 1
    return n


def _tally_endings(text: str, endings: Counter) -> int:
    """Count the chunk's line endings by kind; returns its physical lines."""
    lf = text.count("\n")
    cr = text.count("\r") if not text.isascii() or "\r" in text else 0
    crlf = text.count("\r\n") if cr and lf else 0
    if crlf:
        endings["CRLF"] += crlf
    if lf - crlf:
        endings["LF"] += lf - crlf
    if cr - crlf:
        endings["CR"] += cr - crlf
    n = lf + cr - crlf
    if text and text[-1] not in "\r\n":
        n += 1
    return n


def _parse(text: str, delim: str, first_row: int, first_line: int, table: bytes, limit: int,
           f: ImportFile, endings: Counter) -> Chunk:
    physical = _tally_endings(text, endings)
    clean = True
    if text.isascii():
        if text.encode("ascii").translate(None, table):
            clean = False
    else:
        try:
            raw = text.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates: bytes invalid in the file's encoding
            clean = False
        else:
            if f.encoding != "utf-8" or raw.translate(None, table):
                clean = False
    lines = text.splitlines() if clean else []
    if clean and len(text) > limit and max(map(len, lines), default=0) > limit and _longest_field(lines, delim) > limit:
        clean = False  # let the csv module raise the field-size error with its place
    if clean:
        rows = [ln.split(delim) for ln in lines]
        blank: list[int] = []
        line_numbers = None
        if lines and min(map(len, lines)) < len(f.header):
            keep_rows, line_numbers = [], []
            for i, cells in enumerate(rows):
                if any(cells):
                    keep_rows.append(cells)
                    line_numbers.append(first_line + i)
                else:
                    blank.append(first_line + i)
            rows = keep_rows
        return Chunk(rows, first_row, line_numbers, first_line, None, True, text, blank, physical)
    chunk = _parse_csv(text, delim, first_row, first_line, f)
    chunk.physical_lines = physical
    return chunk


def _longest_field(lines: list[str], delim: str) -> int:
    return max((len(c) for ln in lines for c in ln.split(delim)), default=0)


def _parse_csv(text: str, delim: str, first_row: int, first_line: int, f: ImportFile) -> Chunk:
    # Same code as ImportFile.records(), over this chunk only.
    stream = io.StringIO(text, newline="")
    rows: list[list[str]] = []
    lines: list[int] = []
    raws: list[str] = []
    blank: list[int] = []
    saved = (f.blank_count, f.blank_lines, f.line_ending_counts, f.lines_read, f.line_endings)
    f.blank_lines = []
    f.blank_count = 0
    f.line_ending_counts = Counter()  # scan() already tallied this chunk
    try:
        for record in f._parse(stream, first_row=first_row, first_line=first_line, keep_raw=True, track=True):
            rows.append(record.cells)
            lines.append(record.line)
            raws.append(record.raw)
        blank = f.blank_lines
    finally:
        f.blank_count, f.blank_lines, f.line_ending_counts, f.lines_read, f.line_endings = (
            saved[0], saved[1], saved[2], saved[3], saved[4])
    return Chunk(rows, first_row, lines, first_line, raws, False, text, blank)

