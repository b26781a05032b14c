"""The fast reading path validation runs on: the file in text chunks of about 256 KiB, each cut at
a line end outside quotes, parsed as a whole.

A chunk with no quote, no special character and valid text is split with str.split (the same
cells csv would give: no quoting to undo) and needs no per-cell character checks; only other
chunks go through the csv module with each record's raw text kept for the character rules. The
whole-chunk tests (isascii, a byte translate, a strict encode) run in C, which is what keeps
validation of a 1M-row file within twice a bare csv.reader pass.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import AnyStr, TypeAlias

from .reader import ImportFile, ImportFileError, _endings_label, line_cap

Part: TypeAlias = "tuple[str, bytes | None, bytes | None]"  # (text, its bytes if kept, its skeleton if quoted)

CHUNK_CHARS = 1 << 18  # a part, its cells and the copies the C passes make stay in the CPU's caches (1 MiB: ~10 % slower)

# Bytes worth a closer look in UTF-8 text: C0 controls, DEL, the quote, and the lead bytes of
# the special characters' ranges (C1/NBSP/soft hyphen, Arabic format marks, U+1680/U+180E,
# U+2000-U+206F, U+3000, private use and specials, astral planes).
_SUSPECT = {*range(0, 10), 11, 12, *range(14, 32), 127, ord('"'), 0xC2, 0xD8, 0xDB, 0xDC, 0xE1, 0xE2, 0xE3,
            0xEE, 0xEF, 0xF0, 0xF1, 0xF2, 0xF3, 0xF4,
            0xCC, 0xCD}  # combining marks (U+0300-U+036F): NFD text


def _delete_table(delimiter: str, quote: bool = True) -> bytes:
    keep = set(_SUSPECT)
    if not quote:
        keep.discard(ord('"'))
    if delimiter == "\t":
        keep.discard(9)
    return bytes(b for b in range(256) if b not in keep)


class Chunk:
    """The records of one part of the file. A consistent clean part keeps its cells as one flat
    list (every row has the header's width): columns are then slices, no per-row lists."""

    def __init__(self, rows: list[list[str]] | None, first_row: int, lines: list[int] | None, first_line: int,
                 raws: list[str] | None, clean: bool, text: str, blank_lines: list[int], physical_lines: int = 0,
                 *, flat: list[str] | None = None, ncols: int = 0):
        self._rows = rows  # the records' cells (blank rows removed), or None with flat
        self.first_row = first_row  # row number of the first record
        self.lines = lines  # start line of each record; None = consecutive from first_line
        self.first_line = first_line
        self.raws = raws  # each record's raw text; None for a clean chunk
        self.clean = clean  # no quote, no special or invalid character anywhere in the chunk
        self.text = text
        self.blank_lines = blank_lines
        self.physical_lines = physical_lines
        self.flat = flat
        self.ncols = ncols
        self.formula_free = False  # known: no value starts with = + - @ (then no per-column look)
        self.edge_space_free = False  # known: no value starts or ends with a space
        self.max_line = len(text)  # no value is longer than this
        self.specials_possible = True  # False: no special character or invalid byte anywhere
        self.beyond_ascii: str | None = None  # known: the text's characters beyond ASCII, in order
        self.nfc: bool | None = None  # known: the text is in NFC (True) or may not be (False)
        self.plain_values = False  # quoted values, yet none holds a special character, quote or line break, and NFC
        self.count = len(rows) if rows is not None else len(flat or ()) // ncols

    @property
    def rows(self) -> list[list[str]]:
        if self._rows is None:
            n, flat = self.ncols, self.flat or []
            self._rows = [flat[i:i + n] for i in range(0, len(flat), n)]
        return self._rows

    @property
    def uniform(self) -> bool:
        """Every record has the header's width (known without looking at each)."""
        return self.flat is not None

    @property
    def keys_trusted(self) -> bool:
        """Learner, course and credit-type values are their own keys (only emails' case may not be)."""
        return (self.clean or self.plain_values) and self.edge_space_free

    def columns(self) -> list[Sequence[str]]:
        if self.flat is not None:
            n = self.ncols
            return [self.flat[k::n] for k in range(n)]
        return list(zip(*self.rows))

    def line_of(self, i: int) -> int:
        return self.first_line + i if self.lines is None else self.lines[i]


def scan(import_file: ImportFile, *, chunk_chars: int = CHUNK_CHARS) -> Iterator[Chunk]:
    """Yield Chunks covering every line after the header, in order."""
    f = import_file
    if f.encoding.startswith("utf-16"):
        source: Iterator[Part] = _text_parts(f, chunk_chars)
    else:
        source = _byte_parts(f, chunk_chars)
    table = _delete_table(f.delimiter)
    endings = f.line_ending_counts
    row = 0
    line = f.header_end_line + 1
    try:
        for text, raw, skeleton in source:
            chunk = _parse(text, raw, f.delimiter, row + 1, line, table, f.field_size_limit, f, endings, skeleton)
            row += chunk.count
            line += chunk.physical_lines
            yield chunk
    except _LongLine as long:
        raise _reader_error(f, long.offset, row + 1, line) from None
    f.lines_read = line - 1
    f.line_endings = _endings_label(endings, f.line_endings)


class _LongLine(Exception):
    """A line with no end in sight: the reader (bounded) says what is wrong from `offset` on
    (None: from the first data line)."""

    def __init__(self, offset: int | None):
        super().__init__(offset)
        self.offset = offset


def _reader_error(f: ImportFile, offset: int | None, row: int, line: int) -> ImportFileError:
    records = f.records_from(offset, row, line) if offset is not None else \
        f.records_from(f.data_offset, 1, f.header_end_line + 1)
    try:
        for _ in records:
            pass
    except ImportFileError as exc:
        return exc
    return ImportFileError("a line is too long to read", path=f.path, row=row, line=line,
                           fix="check the file was exported as CSV with one record a line")


def _cut(buf: AnyStr, eof: bool, nl: AnyStr, cr: AnyStr, quote: AnyStr | None, limit: int, chunk: int) -> int | None:
    """Where to end this part: after the last line end outside quotes; None = read more."""
    if eof:
        return len(buf)
    # A final CR may be the first half of a CRLF: keep it for the next read.
    end = len(buf) - 1 if buf.endswith(cr) else len(buf)
    cut = max(buf.rfind(nl, 0, end), buf.rfind(cr, 0, end)) + 1
    if cut <= 0:
        return None
    if quote is not None and quote in buf and buf.count(quote, 0, cut) % 2 and len(buf) < limit * 2 + chunk:
        return None  # inside a quoted value: read on (past the field cap, the csv module reports it)
    return cut


def _byte_parts(f: ImportFile, chunk: int) -> Iterator[Part]:
    """(text, bytes, skeleton) parts of an 8-bit-compatible file: line ends are single bytes there.
    A part that starts with a quote (every value quoted, probably) comes with its skeleton (see
    _parse_all_quoted), which also tells whether it ends outside quotes."""
    strict = "strict"
    skeletons = _SKELETON_TABLES[_delete_table(f.delimiter)]
    longest = line_cap(f.field_size_limit)
    with open(f.path, "rb") as fh:
        fh.seek(f.data_offset)
        offset = f.data_offset  # of buf's start
        carry = b""
        eof = False
        while not eof:
            data = fh.read(chunk)
            eof = not data
            buf = carry + data if carry else data
            if not buf:
                break
            quoted = buf.startswith(b'"')
            cut = _cut(buf, eof, b"\n", b"\r", None if quoted else b'"', f.field_size_limit, chunk)
            if cut is None:
                if len(buf) > longest and _characters_at_least(buf) > longest:
                    raise _LongLine(offset)
                carry = buf
                continue
            part = buf if cut == len(buf) else buf[:cut]
            skeleton = part.translate(None, skeletons) if quoted else None
            if skeleton is not None and not eof and skeleton.count(b'"') % 2 and len(buf) < f.field_size_limit * 2 + chunk:
                carry = buf  # inside a quoted value (as in _cut)
                continue
            carry = b"" if cut == len(buf) else buf[cut:]
            offset += cut
            kept: bytes | None = part
            try:
                text = part.decode(f.encoding, strict)
            except UnicodeDecodeError:  # invalid bytes become lone surrogates: the chunk is not clean
                text = part.decode(f.encoding, "surrogateescape")
                kept = None
            yield text, kept, skeleton


_CONTINUATION_BYTES = bytes(range(0x80, 0xC0))


def _characters_at_least(data: bytes) -> int:
    """A lower bound of the characters these bytes decode to (UTF-8 or a one-byte code page): a
    UTF-8 continuation byte is never a character of its own, except as an invalid byte."""
    return len(data.translate(None, _CONTINUATION_BYTES))


def _text_parts(f: ImportFile, chunk: int) -> Iterator[Part]:
    with f.open_text() as fh:
        carry = ""
        eof = False
        while not eof:
            data = fh.read(chunk)
            eof = not data
            buf = carry + data
            if not buf:
                break
            cut = _cut(buf, eof, "\n", "\r", '"', f.field_size_limit, chunk)
            if cut is None:
                if len(buf) > line_cap(f.field_size_limit):
                    raise _LongLine(None)
                carry = buf
                continue
            part, carry = buf[:cut], buf[cut:]
            yield part, None, None


def _tally_endings(text: str, endings: Counter[str], lines: list[str] | None) -> int:
    """Count the part's line endings by kind; returns its physical lines."""
    lf = text.count("\n")
    cr = text.count("\r")
    if lines is not None:  # splitlines() counted the physical lines already
        n = len(lines)
        crlf = lf + cr - n + (0 if not text or text[-1] in "\r\n" else 1)
    else:
        crlf = text.count("\r\n") if cr and lf else 0
        n = lf + cr - crlf + (0 if not text or text[-1] in "\r\n" else 1)
    if crlf:
        endings["CRLF"] += crlf
    if lf - crlf:
        endings["LF"] += lf - crlf
    if cr - crlf:
        endings["CR"] += cr - crlf
    return n


def _parse(text: str, raw: bytes | None, delim: str, first_row: int, first_line: int, table: bytes, limit: int,
           f: ImportFile, endings: Counter[str], skeleton: bytes | None = None) -> Chunk:
    # Clean = valid text with no byte worth a closer look (see _SUSPECT): then no quote, no
    # special character and no line break other than CR/LF can be in it.
    if raw is None or raw.startswith(b'"'):  # a quote: not clean, no need to look further
        clean = False
    elif text.isascii():
        clean = not raw.translate(None, table)
    else:
        clean = f.encoding == "utf-8" and not raw.translate(None, table)
    # A part as long as the reader's line cap may hold a line it refuses: the reader's own code reads it.
    long = len(text) >= line_cap(limit)
    clean = clean and not long
    lines = text.splitlines() if clean else None
    max_line = max(map(len, lines), default=0) if lines is not None else len(text)
    if lines is not None and max_line > limit and _longest_field(lines, delim) > limit:
        clean = False  # let the csv module raise the field-size error with its place
        lines = None
    chunk: Chunk | None
    if clean:
        assert raw is not None and lines is not None  # clean: its bytes were kept and its lines split
        physical = _tally_endings(text, endings, lines)
        n = len(f.header)
        if lines and min(map(len, lines)) >= n and _uniform(raw, delim, n, len(lines)):
            # Every line has the header's width and none is blank: split the part in one go.
            flat = delim.join(lines).split(delim)
            chunk = Chunk(None, first_row, None, first_line, None, True, text, [], physical, flat=flat, ncols=n)
            chunk.formula_free, chunk.edge_space_free = _value_edges(raw, delim)
            chunk.max_line = max_line
            return chunk
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
        chunk = Chunk(rows, first_row, line_numbers, first_line, None, True, text, blank, physical)
        chunk.max_line = max_line
        return chunk
    forced = raw is None or (f.encoding != "utf-8" and not text.isascii())
    if raw is not None and text.startswith('"') and not long:
        chunk = _parse_all_quoted(text, raw, delim, first_row, first_line, limit, len(f.header), table, endings,
                                  skeleton)
        if chunk is not None:
            chunk.specials_possible = chunk.specials_possible or forced
            if f.encoding == "utf-8" and not text.isascii():  # UTF-8 less its ASCII bytes is UTF-8
                chunk.beyond_ascii = raw.translate(None, _ASCII_BYTES).decode("utf-8")
                chunk.nfc = _nfc_as_it_is(chunk.beyond_ascii)
            chunk.plain_values = not chunk.specials_possible and chunk.nfc is not False
            return chunk
    specials = forced or raw is None or bool(raw.translate(None, _delete_table(delim, quote=False)))
    physical = _tally_endings(text, endings, None)
    chunk = None
    if not long and _well_quoted(delim).fullmatch(text):
        chunk = _parse_quoted(text, delim, first_row, first_line, f)
    if chunk is None:
        chunk = _parse_csv(text, delim, first_row, first_line, f)
    chunk.specials_possible = specials
    chunk.physical_lines = physical
    return chunk


def _parse_all_quoted(text: str, raw: bytes, delim: str, first_row: int, first_line: int, limit: int, n: int,
                      table: bytes, endings: Counter[str], skeleton: bytes | None = None) -> Chunk | None:
    """A part where every value is quoted (some LMS exports): "a","b" on every line, no quote or
    line break inside a value, one kind of line end, every line the header's width. The csv
    module would give exactly the text between each value's quotes: the part is checked as a
    whole in C (its skeleton of quotes and line ends, one translate) and split in one go.
    None: not such a part (the general paths read it; the tally is not touched)."""
    first_break = min((i for i in (text.find("\r"), text.find("\n")) if i >= 0), default=-1)
    if first_break < 0:
        return None
    eol = "\r\n" if text.startswith("\r\n", first_break) else text[first_break]
    closed = text.endswith('"' + eol)
    if not closed and not text.endswith('"'):
        return None
    # Every line is 2n quotes and its line end once all else is deleted; kept with them first, the
    # bytes `table` keeps (special characters): usually none, so one translate says both.
    unit = b'"' * (2 * n) + eol.encode()
    tail = 0 if closed else len(eol)
    if skeleton is None:
        skeleton = raw.translate(None, _SKELETON_TABLES[table])
    rows = _lines(skeleton, unit, tail)
    specials = rows is None
    if rows is None:
        rows = _lines(raw.translate(None, _QUOTES_AND_BREAKS), unit, tail)
        if rows is None:
            return None
    sep = '"' + delim + '"'
    body = text[1:len(text) - len(eol) - 1 if closed else len(text) - 1]
    cells = body.replace('"' + eol + '"', sep).split(sep)
    # 2n quotes a line and n values: every quote is one of a value's two, so no value holds one.
    if len(cells) != rows * n:
        return None
    if len(text) > limit and _longest_run(text, '"', limit) > limit and max(map(len, cells)) > limit:
        return None  # the csv module reports the value over the field-size cap
    blank = delim.join(['""'] * n)
    if (eol + blank + eol) in (eol + text + ("" if closed else eol)):
        return None  # a row of only empty values is a blank row: the general path lists it
    ends = rows if closed else rows - 1
    if ends:
        endings[{"\r\n": "CRLF", "\n": "LF", "\r": "CR"}[eol]] += ends
    chunk = Chunk(None, first_row, None, first_line, None, False, text, [], rows, flat=cells, ncols=n)
    chunk.specials_possible = specials
    if delim != "\t":  # (a tab after a closing quote is the delimiter: the columns are looked at)
        chunk.formula_free, chunk.edge_space_free = _quoted_value_edges(raw)
    return chunk


def _nfc_as_it_is(beyond_ascii: str) -> bool:
    """Is a text whose characters beyond ASCII these (in order) in NFC? Only around them can it
    not be: a combining mark (after an ASCII letter too) is one of them."""
    return unicodedata.is_normalized("NFC", beyond_ascii) and not any(map(unicodedata.combining, set(beyond_ascii)))


def _lines(skeleton: bytes, unit: bytes, tail: int) -> int | None:
    """How many times `unit` the skeleton is (less `tail` bytes at the end); None if it is not."""
    rows, odd = divmod(len(skeleton) + tail, len(unit))
    return rows if rows and not odd and skeleton == (unit * rows)[:len(skeleton)] else None


_ASCII_BYTES = bytes(range(128))
_QUOTES_AND_BREAKS = bytes(b for b in range(256) if b not in b'"\r\n')


class _SkeletonTables(dict[bytes, bytes]):
    """For a delete table (scan's, by delimiter): the same, keeping CR and LF too."""

    def __missing__(self, table: bytes) -> bytes:
        self[table] = out = bytes(b for b in table if b not in b"\r\n")
        return out


_SKELETON_TABLES = _SkeletonTables()
_EDGE_MAP = bytes(ord("=") if b in b"=+-@\t " else b if b == ord('"') else ord("a") for b in range(256))
_FORMULA_MAP = bytes(ord("=") if b in b"=+-@\t" else b if b in b'" ' else ord("a") for b in range(256))


def _quoted_value_edges(raw: bytes) -> tuple[bool, bool]:
    """_value_edges for a part of quoted values without a quote or line break inside one: a value
    starts right after an opening quote and ends right before a closing one, and a closing quote
    is followed only by a delimiter or a line end. The usual answer (neither) in two finds."""
    mapped = raw.translate(_EDGE_MAP)  # = a formula character or a space
    if b'"=' not in mapped and b'="' not in mapped:
        return True, True
    mapped = raw.translate(_FORMULA_MAP)
    return b'"=' not in mapped, b'" ' not in mapped and b' "' not in mapped


def _longest_run(text: str, char: str, limit: int) -> int:
    """0 if every stretch of text without `char` is at most `limit` long (a few finds: each block
    of limit // 2 holds one), else more than limit (exact length not computed)."""
    step = limit // 2
    if step < 64:
        return limit + 1
    for i in range(0, len(text), step):
        if text.find(char, i, i + step) < 0:
            return limit + 1
    return 0


_QUOTED: dict[str, re.Pattern[str]] = {}


def _well_quoted(delim: str) -> re.Pattern[str]:
    """The whole part as RFC 4180 records: quoted values with "" inside, or unquoted values
    with no quote at all. Possessive, so a whole part is one pass in C."""
    pattern = _QUOTED.get(delim)
    if pattern is None:
        d = re.escape(delim)
        field = f'(?:"(?:[^"]++|"")*+"|[^"{d}\\r\\n]*+)'
        record = f"{field}(?:{d}{field})*+"
        pattern = _QUOTED[delim] = re.compile(f"(?:{record}(?:\\r\\n|\\n|\\r))*+(?:{record})?")
    return pattern


def _no_blank_row(rows: list[list[str]], n: int) -> bool:
    """No record of only empty values (list comparisons in C; per row only when widths vary)."""
    widths = set(map(len, rows))
    if widths == {n}:
        return [""] * n not in rows
    return all(map(any, rows))


def _parse_quoted(text: str, delim: str, first_row: int, first_line: int, f: ImportFile) -> Chunk | None:
    """A well-quoted part: the csv module parses it; no raw text kept (nothing to locate in it)."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delim)
    try:
        rows = list(reader)
    except csv.Error:
        return None  # e.g. a value over the field cap: the slow path says where
    if reader.line_num == len(rows) and (not rows or _no_blank_row(rows, len(f.header))):
        # One line per record and no blank one: lines are consecutive.
        return Chunk(rows, first_row, None, first_line, None, False, text, [])
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delim)
    rows = []
    lines: list[int] = []
    blank: list[int] = []
    consumed = 0
    try:
        for cells in reader:
            start = first_line + consumed
            consumed = reader.line_num
            if cells and any(cells):
                rows.append(cells)
                lines.append(start)
            else:
                blank.append(start)
    except csv.Error:
        return None  # e.g. a value over the field cap: the slow path says where
    return Chunk(rows, first_row, lines, first_line, None, False, text, blank)


_SKELETONS: dict[str, bytes] = {}


def _uniform(raw: bytes, delim: str, n: int, lines: int) -> bool:
    """Does every line hold exactly n-1 delimiters? Keep only delimiters and LFs (one C pass)
    and compare with the expected skeleton."""
    delete = _SKELETONS.get(delim)
    if delete is None:
        delete = _SKELETONS[delim] = bytes(b for b in range(256) if b not in (ord(delim), 10))
    skeleton = raw.translate(None, delete)
    unit = delim.encode() * (n - 1) + b"\n"
    if skeleton.endswith(b"\n"):
        return skeleton == unit * lines
    return skeleton == unit * (lines - 1) + unit[:-1]  # the last line has no line end


_FORMULA_MAPS: dict[str, bytes] = {}


def _value_edges(raw: bytes, delim: str) -> tuple[bool, bool]:
    """(no value starts with = + - @, no value starts or ends with a space). Values start a line
    or follow a delimiter: map those to \n, the four characters to =, then a few finds (a clean
    part holds no quote, tab or CR inside a value)."""
    table = _FORMULA_MAPS.get(delim)
    if table is None:
        out = bytearray(b"a" * 256)
        for b in (ord(delim), 10, 13):
            out[b] = 10
        for b in b"=+-@":
            out[b] = ord("=")
        out[32] = 32
        table = _FORMULA_MAPS[delim] = bytes(out)
    mapped = raw.translate(table)
    formula = mapped.startswith(b"=") or b"\n=" in mapped
    spaces = b" " in mapped and (mapped.startswith(b" ") or mapped.endswith(b" ") or b"\n " in mapped
                                 or b" \n" in mapped)
    return not formula, not spaces


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

