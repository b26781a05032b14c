"""Diagnosing a Feeds import from the file and the rows the site stored (pure: no HTTP).

Feeds' percentage is byte progress saved at chunk ends, and the rows of the chunk an import died in are
stored (no transaction), so the percentage never says which rows are in. What does: the multiset difference
between the file's rows and the rows stored since the import began, on the seven mapped columns (complete as
0/1, the processor's rule). Its first unstored row, and the special character in it, tell the four causes apart:

- "special-characters": the importer is locked and the first unstored row holds a special character: the
  processor died on it (a PHP Error, so Feeds never saved the import as finished).
- "abandoned": the importer is locked and the first unstored row is clean: nothing died there; the batch
  stopped being driven (a closed browser tab, a lost connection).
- "first-chunk": not locked, rows missing, and the first unstored row holds a special character: it died
  in its first chunk, before Feeds saved any progress (rows before it may be stored).
- "encoding": not locked, and the file has bytes that are not UTF-8 at or after the first unstored row:
  Feeds' parser stopped the import cleanly there ("Source file is not in UTF-8 encoding."), at a chunk start.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from importconsole.importfile import safe_text

MAPPED = ("external_user_id", "external_email", "external_course_id", "complete", "date_completed", "credit_type", "credits")
_FALSE = ("0", "no", "false", "n")

CAUSES = {
    "complete": "every row of the file is stored",
    "special-characters": "the processor died on a special character",
    "abandoned": "the batch was abandoned (no bad row where it stopped)",
    "first-chunk": "the import died in its first chunk (no lock)",
    "encoding": "an encoding error ended the import cleanly",
    "header": "a column header the importer maps is missing or holds a special character",
    "unknown": "cause unknown",
}


@dataclass(frozen=True)
class FeedRow:
    row: int  # 1 = first data row
    line: int  # physical line where the record starts (1 = header)
    values: dict[str, str]  # header cell (lower-cased, trimmed, as FeedsCSVParser does) -> value

    def key(self) -> tuple[str, ...]:
        """What the processor stores for this row: the mapped columns, complete as "0"/"1"."""
        out = []
        for c in MAPPED:
            v = self.values.get(c, "")
            if c == "complete":
                v = "0" if (v == "" or v.lower() in _FALSE) else "1"
            out.append(v)
        return tuple(out)

    def first_special(self) -> tuple[str, str, str] | None:
        """(column, character description, value) of the first special character, or None."""
        for col, value in self.values.items():
            hits = safe_text.find_special(value)
            if hits:
                return col, safe_text.describe(hits[0][1]), value
        return None


@dataclass(frozen=True)
class FeedFile:
    path: Path
    header: list[str]
    rows: list[FeedRow]
    size: int
    record_ends: list[int]  # byte offset after the header (index 0) and after each row (index n)


def read_feed_file(path: str | Path, *, delimiter: str = ",") -> FeedFile:
    """The file as Feeds' CSV parser sees it: bytes decoded as UTF-8 (invalid bytes kept as surrogates, so
    they can be named), header cells lower-cased and trimmed, records split on unquoted line ends."""
    path = Path(path)
    data = path.read_bytes()
    records: list[list[str]] = []
    ends: list[int] = []
    starts: list[int] = []
    pos, line_no, buf, buf_start = 0, 0, b"", 1
    for raw in data.splitlines(keepends=True):
        line_no += 1
        if not buf:
            buf_start = line_no
        buf += raw
        pos += len(raw)
        if buf.count(b'"') % 2:  # inside a quoted value: the record goes on
            continue
        text = buf.decode("utf-8", "surrogateescape")
        records += list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)) or [[]]
        ends.append(pos)
        starts.append(buf_start)
        buf = b""
    if not records:
        return FeedFile(path, [], [], len(data), [])
    header = [h.strip(" \t\n\r\0\x0b").lower() for h in records[0]]  # PHP trim(): ASCII whitespace only
    rows = [FeedRow(i, starts[i], dict(zip(header, cells))) for i, cells in enumerate(records[1:], start=1)
            if any(c.strip() for c in cells)]
    return FeedFile(path, header, rows, len(data), ends)


def rows_at_percent(feed: FeedFile, percent: int, *, chunk: int | None = None) -> list[int]:
    """The row counts whose end lands at `percent` of the file's bytes, as Feeds rounds it (chunk ends only
    when `chunk`, the site's feeds_process_limit, is known). For showing rows instead of bytes."""
    out = []
    for n, end in enumerate(feed.record_ends):
        if chunk and n % chunk:
            continue
        if feed.size and int(100 * end / feed.size + 0.5) == percent:
            out.append(n)
    return out


def stored_key(row: Mapping[str, object]) -> tuple[str, ...]:
    """A stored row (restws transcript_import, or the holding table) as the mapped columns, as text."""
    return tuple("" if row.get(c) is None else str(row.get(c)) for c in MAPPED)


@dataclass(frozen=True)
class FeedsDiagnosis:
    cause: str  # a key of CAUSES
    rows_in_file: int
    stored_rows: list[int]  # file rows found among the stored rows
    unstored_rows: list[int]  # the remainder, in file order
    first_unstored: int | None
    line: int | None
    column: str | None
    character: str | None  # "U+200B ZERO WIDTH SPACE", "invalid byte 0xE9"
    value: str | None
    bad_row: int | None  # the row holding the character (for "encoding": may come after first_unstored)
    locked: bool
    stored_not_in_file: int = 0  # stored since the import began, yet not rows of this file
    prefix: bool = True  # the stored rows are exactly the file's first rows
    notes: list[str] = field(default_factory=list)

    def sentence(self, file_name: str = "the file") -> str:
        n_stored = len(self.stored_rows)
        if self.cause == "complete":
            return f"All {self.rows_in_file} rows of {file_name} are stored."
        where = (f"row {self.bad_row} (line {self.line}), column {self.column}: "
                 f"{self.character} in {safe_text.visible(self.value or '')!r}") if self.bad_row else ""
        first = self.first_unstored
        text = {
            "special-characters": f"The import died on {where}. Feeds stays locked because the processor "
                                  f"stopped with a PHP error; {n_stored} rows before it are stored.",
            "abandoned": f"The import stopped before row {first}, which has no bad character: the batch was "
                         f"abandoned (its browser tab closed or the connection was lost) and the importer stays "
                         f"locked; {n_stored} rows are stored.",
            "first-chunk": f"The import died in its first chunk on {where}. The importer is not locked (Feeds had "
                           f"saved no progress yet); {n_stored} rows before it are stored.",
            "encoding": f"{file_name} is not UTF-8 at {where}. Feeds ended the import cleanly at the start of that "
                        f"chunk (\"Source file is not in UTF-8 encoding.\"), so rows from {first} on were not "
                        f"stored; the importer is not locked.",
            "header": f"{where or 'A mapped column header is missing'}: the importer cannot map the column, "
                      "so it dies on the first row.",
            "unknown": f"Rows from {first} on are not stored and neither a lock nor a bad character explains "
                       f"it (cause unknown); {n_stored} rows are stored.",
        }[self.cause]
        if not self.prefix:
            text += (f" Careful: the stored rows are not simply the file's first rows ({self.stored_not_in_file} "
                     "stored rows are not in this file): check that this is the file the site imported.")
        return text


def diagnose_feed(feed: FeedFile, stored: Iterable[Mapping[str, object]], *, locked: bool) -> FeedsDiagnosis:
    """The multiset difference between the file's rows and `stored` (the rows stored since the import began),
    its first unstored row and the cause, in words (see the module docstring)."""
    left = Counter(stored_key(r) for r in stored)
    done, remainder = [], []
    for row in feed.rows:
        k = row.key()
        if left[k] > 0:
            left[k] -= 1
            done.append(row.row)
        else:
            remainder.append(row.row)
    extra = sum(left.values())
    prefix = extra == 0 and done == list(range(1, len(done) + 1))
    header_bad = _header_problem(feed.header)
    first = remainder[0] if remainder else None
    by_row = {r.row: r for r in feed.rows}

    def verdict(cause: str, *, line: int | None = None, column: str | None = None, character: str | None = None,
                value: str | None = None, bad_row: int | None = None) -> FeedsDiagnosis:
        return FeedsDiagnosis(cause, rows_in_file=len(feed.rows), stored_rows=done, unstored_rows=remainder,
                              first_unstored=first, line=line, column=column, character=character, value=value,
                              bad_row=bad_row, locked=locked, stored_not_in_file=extra, prefix=prefix)

    if first is None:
        return verdict("complete")
    if header_bad and not done:
        col, char = header_bad
        return verdict("header", line=1, column=col, character=char, value=col)
    special = by_row[first].first_special()
    if special and not _invalid_bytes(special[1]):
        cause = "special-characters" if locked else "first-chunk"
        return verdict(cause, line=by_row[first].line, column=special[0], character=special[1], value=special[2], bad_row=first)
    if not locked:
        for row in feed.rows[first - 1:]:
            hit = row.first_special()
            if hit and _invalid_bytes(hit[1]):
                return verdict("encoding", line=row.line, column=hit[0], character=hit[1], value=hit[2], bad_row=row.row)
    if special:  # invalid bytes in the first unstored row of a locked importer: the processor's own check
        return verdict("special-characters" if locked else "first-chunk", line=by_row[first].line,
                       column=special[0], character=special[1], value=special[2], bad_row=first)
    return verdict("abandoned" if locked else "unknown", line=by_row[first].line)


def _invalid_bytes(description: str) -> bool:
    return description.startswith("invalid byte")


def _header_problem(header: Sequence[str]) -> tuple[str, str] | None:
    """(header cell, character) when a mapped user column is missing or holds a special character."""
    for cell in header:
        hits = safe_text.find_special(cell)
        if hits and safe_text.SPECIAL_RE.sub("", cell).strip() in MAPPED:
            return cell, safe_text.describe(hits[0][1])
    if "external_user_id" not in header or "external_email" not in header:
        missing = "external_user_id" if "external_user_id" not in header else "external_email"
        return missing, "missing"
    return None
