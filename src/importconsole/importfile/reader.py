"""Open any file an admin is handed and stream its records, never holding the whole file.

`open_import_file(path)` sniffs the first 64 KiB (workbook or binary, BOM, UTF-16, UTF-8 or the
cp1252 fallback, delimiter, line endings), reads the header and returns an `ImportFile`;
`ImportFile.records()` streams `Record`s with their row (1 = first data row) and the physical
line they start on, right across quoted line breaks. A file that cannot be read as an import
file raises `ImportFileError` (CLI exit 2) with where and what to do.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import stat
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple, TypeAlias
from collections.abc import Iterator

DEFAULT_FIELD_SIZE_LIMIT = 64 * 1024
LINE_CAP_FIELDS = 16  # a physical line may hold this many values at the field-size cap before it is refused
SNIFF_BYTES = 64 * 1024
DELIMITERS = (",", ";", "\t", "|")
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}

FilePath: TypeAlias = "str | os.PathLike[str]"  # what the admin gives: a str or a Path

SAVE_AS_CSV = "Open it in Excel and use File > Save As > CSV UTF-8 (Comma delimited), then try again."


class ImportFileError(Exception):
    """The file cannot be read as an import file. `str()` is the sentence for the admin."""

    def __init__(self, message: str, *, path: FilePath | None = None, row: int | None = None, line: int | None = None,
                 column: int | None = None, offset: int | None = None, fix: str = ""):
        super().__init__(message)
        self.message = message
        self.path = str(path) if path is not None else None
        self.row = row
        self.line = line
        self.column = column
        self.offset = offset
        self.fix = fix

    def __str__(self) -> str:
        where = []
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column {self.column}")
        if self.offset and self.line is None:  # offset 0 is the file's start: it says nothing to an admin
            where.append(f"byte offset {self.offset}")
        text = self.message
        if where:
            text += f" ({', '.join(where)})"
        if self.fix:
            text += f" -- {self.fix}"
        return text

    def as_dict(self) -> dict[str, str | int | None]:
        return {
            "message": self.message, "path": self.path, "row": self.row, "line": self.line,
            "column": self.column, "offset": self.offset, "fix": self.fix,
        }


class Record(NamedTuple):
    row: int  # 1 = first data row; blank rows are not records
    line: int  # physical line the record starts on (1 = the file's first line)
    cells: list[str]
    raw_line_span: tuple[int, int]  # first and last physical line of the record
    raw: str = ""  # the record's text as read (line breaks included)


@dataclass
class ImportFile:
    path: Path
    encoding: str  # codec used: utf-8, utf-16-le, utf-16-be, cp1252
    bom: bool
    delimiter: str
    line_endings: str  # CRLF, LF, CR, mixed or none (from the first 64 KiB; records() updates it)
    header: list[str]
    header_line: int
    notes: list[str] = field(default_factory=list)
    size: int = 0
    field_size_limit: int = DEFAULT_FIELD_SIZE_LIMIT
    data_offset: int = 0  # byte offset of the first line after the header
    header_end_line: int = 1  # last physical line of the header
    # Filled while records() runs: the whole file's line endings and the blank rows seen.
    line_ending_counts: Counter[str] = field(default_factory=Counter)
    blank_lines: list[int] = field(default_factory=list)
    blank_count: int = 0
    lines_read: int = 0

    @property
    def encoding_label(self) -> str:
        label = {"utf-8": "UTF-8", "utf-16-le": "UTF-16 LE", "utf-16-be": "UTF-16 BE", "cp1252": "Windows-1252"}.get(
            self.encoding, self.encoding
        )
        return label + (" with BOM" if self.bom else "")

    @property
    def delimiter_name(self) -> str:
        return DELIMITER_NAMES.get(self.delimiter, repr(self.delimiter))

    def open_text(self, offset: int | None = None) -> io.TextIOWrapper:
        """The file as text from a byte offset (default: the first data line)."""
        raw = open_regular(self.path)
        raw.seek(self.data_offset if offset is None else offset)
        return io.TextIOWrapper(raw, encoding=self.encoding, errors=decode_errors(self.encoding), newline="")

    def records(self, *, keep_raw: bool = True) -> Iterator[Record]:
        """Every record after the header, streamed."""
        with self.open_text() as text:
            yield from self._parse(text, first_row=1, first_line=self.header_end_line + 1, keep_raw=keep_raw,
                                   track=True)

    def records_from(self, offset: int, first_row: int, first_line: int) -> Iterator[Record]:
        """Records from a byte offset where a record starts (RowIndex uses it)."""
        with self.open_text(offset) as text:
            yield from self._parse(text, first_row=first_row, first_line=first_line, keep_raw=True, track=False)

    def head(self, count: int) -> list[Record]:
        """The first screen of rows, without reading further."""
        out = []
        for record in self.records():
            out.append(record)
            if len(out) >= count:
                break
        return out

    def _parse(self, text: io.TextIOBase, *, first_row: int, first_line: int, keep_raw: bool, track: bool) -> Iterator[Record]:
        buf: list[str] = []
        endings: Counter[str] = self.line_ending_counts if track else Counter()

        def lines() -> Iterator[str]:
            # The csv reader pulls lines only as a record needs them, so buf holds exactly the
            # current record's physical lines. Lines are read with a cap: a huge one is never held.
            for line in bounded_lines(text, line_cap(self.field_size_limit)):
                if isinstance(line, LongLine):
                    raise self.long_line_error(line, row + 1, line_base + len(buf) + 1)
                buf.append(line)
                yield line

        csv.field_size_limit(max(self.field_size_limit, 1))
        reader = csv.reader(lines(), delimiter=self.delimiter)
        row = first_row - 1
        line_base = first_line - 1  # physical line of the last line consumed
        last_end = ""
        try:
            for cells in reader:
                start = line_base + 1
                line_base = first_line - 1 + reader.line_num
                if len(buf) == 1:
                    raw = buf[0]
                else:
                    raw = "".join(buf)
                buf.clear()
                # Line endings: one cheap look at each record's last line.
                last_end = raw[-2:]
                if last_end == "\r\n":
                    endings["CRLF"] += 1
                elif last_end[-1:] == "\n":
                    endings["LF"] += 1
                elif last_end[-1:] == "\r":
                    endings["CR"] += 1
                if line_base > start:  # quoted line breaks: count their endings too
                    inner = raw[:-1]
                    crlf = inner.count("\r\n")
                    if crlf:
                        endings["CRLF"] += crlf
                    lf = inner.count("\n") - crlf
                    cr = inner.count("\r") - crlf
                    if lf:
                        endings["LF"] += lf
                    if cr:
                        endings["CR"] += cr
                if not cells or not any(cells):
                    if track:
                        self.blank_count += 1
                        if len(self.blank_lines) < 10000:
                            self.blank_lines.append(start)
                    continue
                row += 1
                yield Record(row, start, cells, (start, line_base), raw if keep_raw else "")
        except csv.Error as exc:
            raise self._csv_error(exc, row + 1, line_base + 1, buf) from None
        finally:
            if track:
                self.lines_read = line_base
                self.line_endings = _endings_label(endings, self.line_endings)

    def long_line_error(self, long: LongLine, row: int | None, line: int) -> ImportFileError:
        """The sentence for a physical line over the line cap (read only as far as needed)."""
        return long_line_error(long, self.delimiter, self.field_size_limit, self.path, row, line)

    def _csv_error(self, exc: csv.Error, row: int, line: int, buf: list[str]) -> ImportFileError:
        text = str(exc)
        if "field larger than field limit" in text:
            raw = "".join(buf)
            column = None
            quoted_from = None
            cells = _split_outside_quotes(raw, self.delimiter)
            if cells:
                column = len(cells)
                if cells[-1].lstrip().startswith('"'):
                    quoted_from = line
            if quoted_from is not None and raw.count("\n") + raw.count("\r") > 1:
                return ImportFileError(
                    f"a quote opened at line {line} never closes: everything after it was read as one value "
                    f"larger than the {self.field_size_limit // 1024} KiB field-size cap",
                    path=self.path, row=row, line=line, column=column,
                    fix="close the quote (or double quotes inside values: \"\") and validate again",
                )
            return ImportFileError(
                f"a value is larger than the field-size cap of {self.field_size_limit // 1024} KiB",
                path=self.path, row=row, line=line, column=column,
                fix="shorten the value (import files hold short values), or raise the cap if it is genuine",
            )
        return ImportFileError(f"the CSV cannot be parsed: {text}", path=self.path, row=row, line=line,
                               fix="check quoting around this line")


class LongLine(NamedTuple):
    """A physical line that reached the cap: its start and the stream to read on from."""
    start: str
    text: io.TextIOBase


def line_cap(field_size_limit: int) -> int:
    return max(field_size_limit, 1024) * LINE_CAP_FIELDS


def bounded_lines(text: io.TextIOBase, cap: int) -> Iterator[str | LongLine]:
    """The stream's physical lines (ends kept), each shorter than cap characters: a line that
    reaches the cap without its LF comes as a LongLine, after which nothing more is read."""
    readline = text.readline
    while line := readline(cap):
        if len(line) < cap or line[-1] == "\n":
            yield line
        else:
            yield LongLine(line, text)
            return


def long_line_error(long: LongLine, delimiter: str, field_size_limit: int, path: FilePath, row: int | None,
                    line: int) -> ImportFileError:
    """Read on just far enough to tell a value over the field cap (and its column) from a line of
    many short values; never holds more than the cap and one field's worth."""
    column, in_quotes, length = 1, False, 0
    piece = long.start
    read_after = 0
    while piece:
        for ch in piece:
            if ch == '"':
                in_quotes = not in_quotes
            elif not in_quotes and ch == delimiter:
                column += 1
                length = 0
                continue
            elif not in_quotes and ch in "\r\n":
                piece = ""
                break
            length += 1
            if length > field_size_limit:
                return ImportFileError(
                    f"a value is larger than the field-size cap of {field_size_limit // 1024} KiB",
                    path=path, row=row, line=line, column=column,
                    fix="shorten the value (import files hold short values), or raise the cap if it is genuine",
                )
        if not piece or read_after > field_size_limit:
            break
        piece = long.text.read(min(1 << 14, field_size_limit + 1 - read_after))
        read_after += len(piece)
    cap_kib = line_cap(field_size_limit) // 1024
    return ImportFileError(
        f"the line is {cap_kib} KiB long or more: no import record is this long (it was not read further)",
        path=path, row=row, line=line,
        fix="check the file was exported as CSV with one record a line; split or shorten this line",
    )


def _not_regular(mode: int) -> str | None:
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def _refuse_kind(kind: str, path: FilePath) -> ImportFileError:
    if kind == "a folder":
        return ImportFileError("this is a folder, not a file", path=path, fix="give the path of the CSV file")
    return ImportFileError(f"this is {kind}, not a regular file: it was not opened (reading it could wait forever)",
                           path=path, fix="give the path of the CSV file itself (save or copy the records to a file first)")


def check_regular_file(path: FilePath) -> None:
    """Refuse a FIFO, device, socket or folder BEFORE opening it: opening a FIFO waits for a writer."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise ImportFileError("no such file", path=path, fix="check the path") from None
    except PermissionError:
        raise ImportFileError("the file cannot be read (permission denied)", path=path,
                              fix="check the file's permissions") from None
    except (OSError, ValueError) as exc:
        raise ImportFileError(f"the file cannot be read ({getattr(exc, 'strerror', None) or exc})", path=path,
                              fix="check the path") from None
    kind = _not_regular(mode)
    if kind:
        raise _refuse_kind(kind, path)


def open_regular(path: FilePath) -> io.BufferedReader:
    """open(path, "rb") that never blocks on, nor reads, anything but a regular file (it may have
    been swapped for a FIFO since it was checked)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        kind = _not_regular(os.fstat(fd).st_mode)
        if kind:
            raise _refuse_kind(kind, path)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def decode_errors(encoding: str) -> str:
    """How undecodable bytes are read: UTF-8 and cp1252 keep them (surrogateescape: shown as
    `invalid byte 0xE9`, written back as they were); UTF-16 cannot (a cut character or a lone
    surrogate holds bytes below 0x80), so they become U+FFFD, a special character."""
    return "replace" if encoding.startswith("utf-16") else "surrogateescape"


def _endings_label(counts: Counter[str], fallback: str) -> str:
    kinds = [k for k in ("CRLF", "LF", "CR") if counts.get(k)]
    if len(kinds) > 1:
        return "mixed"
    if kinds:
        return kinds[0]
    return fallback if fallback != "none" else "none"


def _split_outside_quotes(text: str, delimiter: str) -> list[str]:
    """Cells of a record's text by delimiters outside quotes (for error locations only)."""
    cells: list[str] = []
    current: list[str] = []
    in_quotes = False
    for ch in text:
        if ch == '"':
            in_quotes = not in_quotes
        if ch == delimiter and not in_quotes:
            cells.append("".join(current))
            current = []
        else:
            current.append(ch)
    cells.append("".join(current))
    return cells


def _binary_kind(head: bytes) -> str | None:
    if head.startswith(b"PK\x03\x04"):
        return "an Excel workbook (.xlsx) or another ZIP archive"
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return "an Excel 97-2003 workbook (.xls)"
    if head.startswith(b"%PDF"):
        return "a PDF document"
    if head.startswith(b"\x1f\x8b"):
        return "a gzip archive"
    if head.startswith((b"\x89PNG", b"\xff\xd8\xff", b"GIF8")):
        return "an image"
    return None


def _looks_utf16_without_bom(head: bytes) -> str | None:
    sample = head[:4096]
    if len(sample) < 4:
        return None
    even = sample[0::2].count(0)
    odd = sample[1::2].count(0)
    half = len(sample) // 2
    if odd > half * 0.6 and even < half * 0.1:
        return "utf-16-le"
    if even > half * 0.6 and odd < half * 0.1:
        return "utf-16-be"
    return None


def _looks_binary(head: bytes) -> bool:
    sample = head[:8192]
    if not sample:
        return False
    controls = sum(sample.count(bytes([b])) for b in (*range(0, 9), 11, 12, *range(14, 32)))
    if controls > len(sample) * 0.3:
        return True
    # Valid UTF-8 with a few control bytes is text with special characters (a finding, not a
    # refusal); invalid UTF-8 full of them is binary.
    return controls > len(sample) * 0.1 and _first_invalid_utf8(sample, complete=False) is not None


def _first_invalid_utf8(head: bytes, complete: bool) -> int | None:
    """Offset of the first byte that is not UTF-8 in head (a sequence cut by the sniff window is fine)."""
    try:
        head.decode("utf-8")
        return None
    except UnicodeDecodeError as exc:
        if not complete and exc.reason == "unexpected end of data" and exc.start >= len(head) - 3:
            return None
        return exc.start


def first_invalid_byte(path: FilePath, encoding: str = "utf-8", start: int = 0) -> int | None:
    """Byte offset of the first byte invalid in the encoding, scanning the whole file.

    The decoder keeps the start of a character cut by a read boundary and decodes it with the
    next read: positions in an error are counted from those kept bytes, not from the read."""
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    offset = start  # file offset of the next read
    with open_regular(path) as fh:
        fh.seek(start)
        while chunk := fh.read(1 << 20):
            pending = _pending(decoder)
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                return offset - pending + exc.start
            offset += len(chunk)
    pending = _pending(decoder)
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        # A character cut short by the end of the file: it starts where the kept bytes do.
        return offset - pending + exc.start
    return None


def _pending(decoder: codecs.IncrementalDecoder) -> int:
    """Bytes the incremental decoder holds back (the start of a character cut by a read)."""
    return len(decoder.getstate()[0])


def _detect_delimiter(header_text: str) -> str:
    counts = {d: len(_split_outside_quotes(header_text, d)) - 1 for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: (counts[d], d == ","))
    return best if counts[best] > 0 else ","


def _head_endings(text: str) -> str:
    crlf = text.count("\r\n")
    lf = text.count("\n") - crlf
    cr = text.count("\r") - crlf
    counts = Counter({"CRLF": crlf, "LF": lf, "CR": cr})
    return _endings_label(counts, "none")


def open_import_file(path: FilePath, *, field_size_limit: int = DEFAULT_FIELD_SIZE_LIMIT, delimiter: str | None = None) -> ImportFile:
    """Sniff the file and read its header. Raises ImportFileError when it is no import file."""
    path = Path(path)
    size, head = _read_head(path)
    encoding, bom, skip, notes = _sniff_encoding(path, head, size)

    head_text = head[skip:].decode(encoding, errors=decode_errors(encoding)) if encoding != "utf-8" else _decode_head(head[skip:])
    if encoding.startswith("utf-16") and len(head) % 2:
        head_text = head_text[:-1]
    if not head_text.strip():
        raise ImportFileError("the file has no header row (only blank lines or spaces)", path=path,
                              fix="export the records again, with a header row")

    header_raw, header_line, consumed, delim = _header_text(path, encoding, skip, field_size_limit, delimiter)
    try:
        csv.field_size_limit(max(field_size_limit, 1))
        header = next(csv.reader([header_raw], delimiter=delim), [])
    except csv.Error as exc:
        raise ImportFileError(f"the header row cannot be parsed: {exc}", path=path, line=header_line,
                              fix="check the quotes in the header row") from None
    header_end_line = header_line + _physical_lines(header_raw) - 1
    data_offset = skip + len(head_text[:consumed].encode(encoding, errors="surrogateescape")) \
        if consumed <= len(head_text) else skip + _encoded_len(path, skip, encoding, consumed)
    if header_line > 1:
        notes.append(f"{header_line - 1} blank line(s) above the header skipped")
    if not any(h.strip() for h in header):
        raise ImportFileError("the header row is empty (only delimiters)", path=path, line=header_line,
                              fix="export the records again, with a header row")

    return ImportFile(
        path=path, encoding=encoding, bom=bom, delimiter=delim, line_endings=_head_endings(head_text),
        header=header, header_line=header_line, notes=notes, size=size, field_size_limit=field_size_limit,
        data_offset=data_offset, header_end_line=header_end_line,
    )


def _read_head(path: Path) -> tuple[int, bytes]:
    """The file's size and its first SNIFF_BYTES bytes; an empty file or a workbook refused."""
    check_regular_file(path)
    try:
        with open_regular(path) as fh:
            size = os.fstat(fh.fileno()).st_size
            head = fh.read(SNIFF_BYTES)
    except IsADirectoryError:
        raise ImportFileError("this is a folder, not a file", path=path, fix="give the path of the CSV file") from None
    except FileNotFoundError:
        raise ImportFileError("no such file", path=path, fix="check the path") from None
    except PermissionError:
        raise ImportFileError("the file cannot be read (permission denied)", path=path,
                              fix="check the file's permissions") from None
    except OSError as exc:
        raise ImportFileError(f"the file cannot be read ({exc.strerror or exc})", path=path, fix="check the path") from None

    if size == 0:
        raise ImportFileError("the file is empty", path=path, fix="export the records again, with a header row")
    kind = _binary_kind(head)
    if kind:
        raise ImportFileError(
            f"this is {kind}, not a CSV file" if "Excel" not in kind else f"this is {kind}, not a CSV file: export as CSV UTF-8",
            path=path, offset=0, fix=SAVE_AS_CSV,
        )
    return size, head


def _sniff_encoding(path: Path, head: bytes, size: int) -> tuple[str, bool, int, list[str]]:
    """(codec, BOM or not, bytes to skip, notes for the admin) from the file's first bytes; UTF-16
    without a BOM and binary files refused."""
    notes: list[str] = []
    bom = False
    skip = 0
    if head.startswith(codecs.BOM_UTF8):
        encoding, bom, skip = "utf-8", True, 3
        notes.append("UTF-8 byte order mark found and stripped")
    elif head.startswith(codecs.BOM_UTF16_LE):
        encoding, bom, skip = "utf-16-le", True, 2
        notes.append("UTF-16 LE (Excel Unicode Text) decoded; byte order mark stripped")
    elif head.startswith(codecs.BOM_UTF16_BE):
        encoding, bom, skip = "utf-16-be", True, 2
        notes.append("UTF-16 BE decoded; byte order mark stripped")
    else:
        utf16 = _looks_utf16_without_bom(head)
        if utf16:
            raise ImportFileError(
                f"this looks like UTF-16 ({'LE' if utf16.endswith('le') else 'BE'}) without a byte order mark: "
                "a NUL byte every other byte",
                path=path, offset=0, fix=SAVE_AS_CSV,
            )
        if _looks_binary(head):
            raise ImportFileError("this is a binary file, not a CSV file", path=path, offset=0, fix=SAVE_AS_CSV)
        bad = _first_invalid_utf8(head, complete=size <= len(head))
        if bad is None:
            encoding = "utf-8"
        else:
            encoding = "cp1252"
            line = head[:bad].count(b"\n") + 1
            notes.append(
                f"not valid UTF-8 (first invalid byte 0x{head[bad]:02X} at byte offset {bad}, line {line}): "
                "read as Windows-1252"
            )
    return encoding, bom, skip, notes


def _header_text(path: Path, encoding: str, skip: int, field_size_limit: int,
                 delimiter: str | None) -> tuple[str, int, int, str]:
    """(the header's text, its line, characters up to its end, the delimiter). The header is the
    first non-blank line, read through the csv module so a quoted header with line breaks is still
    one record."""
    with open_regular(path) as raw:
        raw.seek(skip)
        text = io.TextIOWrapper(raw, encoding=encoding, errors=decode_errors(encoding), newline="")
        header_line = 1
        consumed = 0  # characters of the header and the blank lines before it
        first_text = ""
        lines = bounded_lines(text, line_cap(field_size_limit))
        while True:
            first = next(lines, "")
            if isinstance(first, LongLine):
                raise long_line_error(first, delimiter or _detect_delimiter(first.start[:SNIFF_BYTES]), field_size_limit, path,
                                      None, header_line)
            first_text = first
            if not first_text:
                raise ImportFileError("the file has no header row (only blank lines or spaces)", path=path,
                                      fix="export the records again, with a header row")
            if first_text.strip():
                break
            consumed += len(first_text)
            header_line += 1
        delim = delimiter or _detect_delimiter(first_text)
        header_raw = first_text
        # A header cell with a quoted line break spans more lines.
        while header_raw.count('"') % 2 and len(header_raw) < field_size_limit:
            more = next(lines, "")
            if isinstance(more, LongLine):
                raise long_line_error(more, delim, field_size_limit, path, None,
                                      header_line + _physical_lines(header_raw))
            if not more:
                break
            header_raw += more
        consumed += len(header_raw)
    return header_raw, header_line, consumed, delim


def _decode_head(head: bytes) -> str:
    # A UTF-8 sequence cut at the end of the sniff window must not become a surrogate.
    return codecs.getincrementaldecoder("utf-8")("surrogateescape").decode(head, final=False)


def _physical_lines(text: str) -> int:
    crlf = text.count("\r\n")
    n = text.count("\n") + text.count("\r") - crlf
    if text and text[-1] not in "\r\n":
        n += 1
    return max(n, 1)


def _encoded_len(path: FilePath, skip: int, encoding: str, chars: int) -> int:
    """Bytes taken by the first `chars` characters (a header longer than the sniff window)."""
    with open_regular(path) as raw:
        raw.seek(skip)
        text = io.TextIOWrapper(raw, encoding=encoding, errors=decode_errors(encoding), newline="")
        return len(text.read(chars).encode(encoding, errors="surrogateescape"))
