"""Everything that will go wrong with an import file, before the LMS sees it.

`validate(path, importer=..., course_external_id=..., facts=...)` reads the file once, in chunks
of about 256 KiB (`scan`). Each chunk gets the offline rules column-wise (set operations and finds
in C rather than a Python test per cell), then the rules that need the LMS, through `facts` in
batches of at most 1,000 records. With `OfflineFacts` those rules are listed in `not_checked`.
Repeated learner/course/credit-type keys are settled by a second pass over the file, only when
there are any. Submit runs exactly this.
"""

from __future__ import annotations

import difflib
import gc
import operator
import re
import threading
import unicodedata
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal
from itertools import compress
from pathlib import Path
from typing import NamedTuple
from collections.abc import Callable, Iterator

from . import safe_text
from .award import award_for_row, entities, parse_credits
from .catalogue import ERROR, INFO, LMS_RULES, RULES, WARNING
from .facts import MAX_KEYS, LmsFacts, OfflineFacts, UserKey, chunks
from .first_rows import FirstRows, Repeat, SpilledRepeats, Verdict
from .reader import DELIMITERS, DELIMITER_NAMES, ImportFile, ImportFileError, first_invalid_byte, open_import_file  # noqa: F401 (ImportFileError: re-exported for callers)
from .scan import scan

COLUMNS = (
    "external_user_id", "external_email", "first_name", "last_name", "external_course_id", "title",
    "enrollment_start", "enrollment_end", "participant_category", "complete", "date_completed",
    "credit_type", "credits", "credit_expiration",
)
DATE_COLUMNS = ("enrollment_start", "enrollment_end", "date_completed", "credit_expiration")
ID_COLUMNS = ("external_user_id", "external_email", "external_course_id", "credit_type")
KEY_COLUMNS = ID_COLUMNS  # learner, course and credit type: what makes two rows the same credit
CREDIT_TYPE_SEPARATORS = re.compile(r"\s*[;,|/]\s*")
MAX_FINDINGS_PER_RULE = 1000  # the summary still counts them all
# Duplicate keys kept in memory up to here (~65 MiB; a 1M-row file stays in memory, at full speed), then in a
# temp file: a file with more rows peaks at ~120 MiB whatever its size (1.5M before: ~180 MiB).
SPILL_KEYS = 1_000_000
PROGRESS_CHARS = 1 << 20  # characters read between two progress calls
DUPLICATE_KEYS_IN_MEMORY = 50_000  # repeated keys' first rows kept in memory up to here (~20 MiB), then in a temp file
COURSE_ID_MAX = 128
# LMS rules that need the course's facts (credit settings, required objects, enrollments).
COURSE_RULES = ("partial-credit-not-variable", "credits-out-of-range", "new-user-no-required-objects",
                "would-update-existing", "variable-credit-without-amount", "unknown-course")

_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}:?\d{2})?)?")
_NUMBER_RE = re.compile(r"\d{1,4}(?:\.\d{1,2})?|\.\d{1,2}")
_COMPLETE_VALUES = frozenset(("", "0", "1"))
_SMART_QUOTES = "\u201c\u201d\u201e\u2018\u2019\u201a\u00ab\u00bb"
FOLDED_COLUMNS = ("external_email",)  # the LMS matches emails case-insensitively (docs/api.md)


def key_value(value: str, fold: bool = False) -> str:
    """An id as the LMS compares it: stripped (it strips), NFC; an email also case-folded."""
    value = unicodedata.normalize("NFC", value.strip())
    return unicodedata.normalize("NFC", value.casefold()) if fold else value


# Bytes that may make a value differ from its key: ASCII whitespace, A-Z (emails only), non-ASCII.
_WS_BYTES = b" \t\r\x0b\x0c\x1c\x1d\x1e\x1f"
_ODD = {False: bytes(b for b in range(256) if b not in _WS_BYTES and b < 128),
        True: bytes(b for b in range(256) if b not in _WS_BYTES and b < 128 and not 65 <= b <= 90)}
_ASCII = bytes(range(128))
_NOT_WS = bytes(b for b in range(256) if b not in _WS_BYTES)


def key_column(col, fold: bool = False, *, one_line: bool = False):
    """key_value of every value of a column; the column itself when no value changes, which the
    common case shows with a few whole-column operations in C (no per-value work).
    one_line: no value holds a line break (a part without quotes)."""
    if not col:
        return col
    joined = "\n".join(col)
    if not one_line and joined.count("\n") != len(col) - 1:  # a value holds a line break: value by value
        return [key_value(v, fold) for v in col]
    raw = joined.encode("utf-8", "surrogatepass")
    odd = raw.translate(None, _ODD[fold])
    if not odd:
        return col
    high = odd.translate(None, _ASCII)
    ws = bool(odd.translate(None, _NOT_WS))
    upper = len(odd) - len(high) > len(odd.translate(None, _NOT_WS) if ws else b"")
    plain = True  # the non-ASCII characters need no folding or composing
    if high:
        # Only the non-ASCII characters, side by side: folding and NFC are checked on them alone
        # (a combining mark after an ASCII letter is caught by combining()).
        residue = high.decode("utf-8", "surrogatepass")
        chars = set(residue)
        ws = ws or any(ch.isspace() for ch in chars)
        plain = ((not fold or residue.casefold() == residue) and unicodedata.is_normalized("NFC", residue)
                 and not any(map(unicodedata.combining, chars)))
    if plain and not upper and not ws:
        return col
    if plain:  # only ASCII letters to lower, which bytes.lower() does alone
        text = raw.lower().decode("utf-8", "surrogatepass") if upper else joined
    else:
        text = unicodedata.normalize("NFC", joined)
        if fold:
            text = unicodedata.normalize("NFC", text.casefold())
    values = text.split("\n")
    return list(map(str.strip, values)) if ws else values


def _key_columns(columns, cols: dict[str, int], trusted: bool = False) -> dict[str, object]:
    """The learner, course and credit-type columns (those the header has), as the LMS matches them.

    learner: the row's external_user_id when it has one (the LMS looks that up first), else its
    email, case-folded and marked so that an id never equals an email. trusted: the part is
    clean and no value has edge spaces (scan says so): ids need no look, only emails' case (a
    clean part holds no U+0300-U+036F combining mark, the NFD form of accented Latin letters)."""
    def norm(name: str, fold: bool = False):
        col = columns[cols[name]]
        return key_column(col, fold, one_line=trusted) if fold or not trusted else col

    out: dict[str, object] = {}
    if "external_user_id" in cols:
        learner = norm("external_user_id")
        if not all(learner):  # rows without an id: their email names the learner
            emails = norm("external_email", True) if "external_email" in cols else ("",) * len(learner)
            learner = [u if u or not e else "\0" + e for u, e in zip(learner, emails)]
        out["learner"] = learner
    elif "external_email" in cols:
        out["learner"] = ["\0" + e if e else e for e in norm("external_email", True)]
    for name in ("external_course_id", "credit_type"):
        if name in cols:
            out[name] = norm(name)
    return out


@dataclass
class Finding:
    rule: str
    severity: str
    row: int | None  # 1 = first data row; None for the file or the header
    line: int | None
    column: str | None  # the column's header (as written, made visible)
    column_number: int | None  # 1-based
    value: str  # the offending value, made safe to show
    message: str
    fix: str

    def as_dict(self) -> dict:
        return {
            "rule": self.rule, "severity": self.severity, "row": self.row, "line": self.line,
            "column": self.column, "column_number": self.column_number, "value": self.value,
            "message": self.message, "fix": self.fix,
        }


@dataclass
class ValidationReport:
    path: str
    importer: str
    course_external_id: str | None
    encoding: str = ""
    bom: bool = False
    delimiter: str = ","
    line_endings: str = ""
    header: list[str] = field(default_factory=list)
    rows: int = 0
    blank_rows: int = 0
    findings: list[Finding] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)  # by rule id, every occurrence
    not_checked: list[str] = field(default_factory=list)
    not_checked_why: str = ""  # why those rules did not run: offline, or no course named
    awards: Counter = field(default_factory=Counter)  # importfile.award.Award -> rows (online, course known)
    notes: list[str] = field(default_factory=list)
    cancelled: bool = False
    online: bool = False
    # Line breaks inside quoted values: records on fewer lines than the file has (first such record's line).
    quoted_line_breaks: int = 0
    first_multi_line: int | None = None

    @property
    def summary(self) -> dict:
        by_severity = Counter()
        for rule, n in self.counts.items():
            by_severity[RULES[rule].severity] += n
        return {
            "errors": by_severity[ERROR], "warnings": by_severity[WARNING], "info": by_severity[INFO],
            "rows": self.rows, "blank_rows": self.blank_rows, "by_rule": dict(sorted(self.counts.items())),
            "findings_shown": len(self.findings), "cancelled": self.cancelled,
        }

    @property
    def errors(self) -> int:
        return self.summary["errors"]

    @property
    def ok(self) -> bool:
        return self.errors == 0 and not self.cancelled

    def award_lines(self, limit: int = 8) -> list[str]:
        """What the LMS will record for the file's rows, one line per kind of row (most rows first):
        `3 rows: the LMS will record 1.5 ama (imported, reported to nobody)`. Empty offline."""
        from .wording import plural

        ranked = self.awards.most_common()
        lines = [f"{plural(n, 'row')}: {award.describe()}" for award, n in ranked[:limit]]
        if len(ranked) > limit:
            rest = sum(n for _, n in ranked[limit:])
            lines.append(f"{plural(rest, 'more row')} of {len(ranked) - limit} other kinds (validate --json lists them)")
        return lines

    def of(self, rule: str) -> list[Finding]:
        return [f for f in self.findings if f.rule == rule]

    def as_dict(self) -> dict:
        return {
            "file": self.path, "importer": self.importer, "course": self.course_external_id,
            "encoding": self.encoding, "bom": self.bom, "delimiter": self.delimiter,
            "line_endings": self.line_endings, "rows": self.rows, "online": self.online,
            "findings": [f.as_dict() for f in self.findings], "summary": self.summary,
            "not_checked": list(self.not_checked), "not_checked_why": self.not_checked_why,
            "awards": [{"rows": n, "outcome": a.outcome, "sentence": a.describe(),
                        "credits": [{"credit_type": c.credit_type, "amount": str(c.amount), "source": c.source,
                                     "reported_to": list(c.reported_to)} for c in a.credits]}
                       for a, n in self.awards.most_common()],
            "notes": list(self.notes),
        }


class _Collector:
    def __init__(self, report: ValidationReport, header: list[str]):
        self.report = report
        self.header = header

    def add(self, rule: str, *, row=None, line=None, column: int | None = None, value: str = "",
            message: str, fix: str | None = None) -> None:
        r = self.report
        r.counts[rule] += 1
        if r.counts[rule] > MAX_FINDINGS_PER_RULE:
            return
        spec = RULES[rule]
        name = safe_text.visible(self.header[column]) if column is not None and column < len(self.header) else None
        r.findings.append(Finding(
            rule, spec.severity, row, line, name, column + 1 if column is not None else None,
            # Messages quote file content: made safe again, whatever a rule forgot.
            safe_text.visible(value[:200]), safe_text.visible(message), safe_text.visible(fix or spec.fix),
        ))


def _canonical(name: str) -> str:
    return safe_text.clean_header(name).lower()


def validate(path, *, importer: str = "course", course_external_id: str | None = None,
             facts: LmsFacts | None = None, progress: Callable[[int, int], None] | None = None,
             cancel: threading.Event | Callable[[], bool] | None = None,
             field_size_limit: int = 65536) -> ValidationReport:
    """Check the file; raises ImportFileError if it cannot be read as an import file.

    progress(bytes_done, bytes_total) is called after each chunk; cancel (an Event or a callable)
    stops early with report.cancelled set.
    """
    if importer not in ("course", "global"):
        raise ValueError("importer must be 'course' or 'global'")
    facts = facts or OfflineFacts()
    online = bool(getattr(facts, "online", True))
    f = open_import_file(path, field_size_limit=field_size_limit)
    report = ValidationReport(
        path=str(path), importer=importer, course_external_id=course_external_id, encoding=f.encoding_label,
        bom=f.bom, delimiter=f.delimiter, header=list(f.header), notes=list(f.notes), online=online,
    )
    out = _Collector(report, f.header)
    if f.bom:
        out.add("encoding-bom", line=1, message=f"the file starts with a {f.encoding_label.split(' with')[0]} "
                "byte order mark; it was stripped")
    if f.encoding == "cp1252":
        out.add("encoding-fallback", line=None, message=f.notes[-1])
    elif f.encoding.startswith("utf-16"):
        out.add("encoding-not-utf8", line=None,
                message=f"the file is {f.encoding_label} (Excel's \"Unicode Text\"): the console reads it, but the "
                        "LMS's importer reads UTF-8 only and refuses it")
    if not online:
        report.not_checked = list(LMS_RULES)
        report.not_checked_why = "they need the LMS: run with a profile instead of --offline"
    if f.delimiter == "|":  # the LMS reads , ; and tab (docs/sandbox.md): a pipe file fails there
        out.add("delimiter-unsupported", line=f.header_line,
                message="values are separated by pipes ('|'): the LMS's importer does not read them and fails "
                        "the import (header not recognised)")
    elif f.delimiter != ",":
        out.add("delimiter-not-comma", line=f.header_line,
                message=f"values are separated by {f.delimiter_name}s ({f.delimiter!r}), not "
                        "commas: the LMS's importer expects comma-separated CSV",
                fix="save the file as CSV UTF-8 (Comma delimited) before submitting")
    cols = _check_header(f, out, importer, course_external_id)
    if cols is None:  # the header is not one: row rules would only repeat that
        report.line_endings = f.line_endings
        report.rows = sum(1 for _ in f.records(keep_raw=False))
        return report

    if online and importer == "course" and not course_external_id and "external_course_id" not in cols:
        # No course, no course facts: its credit rules never ran; never a false "0 errors".
        report.not_checked = list(COURSE_RULES)
        report.not_checked_why = ("the course is not named: give --course EXTERNAL_ID, the course the course-level "
                                  "importer imports into")
    checker = _RowChecks(f, out, cols, importer, course_external_id, facts if online else None)
    gc_was = gc.isenabled()
    gc.disable()  # a million short-lived lists, no cycles: collection passes only cost time
    try:
        _run(f, checker, report, out, progress, cancel)
    finally:
        if gc_was:
            gc.enable()
    report.line_endings = f.line_endings
    if f.line_endings == "mixed":
        counts = ", ".join(f"{k} {v}" for k, v in f.line_ending_counts.items() if v)
        out.add("mixed-line-endings", message=f"the file mixes line endings ({counts})")
    if report.rows == 0 and not report.cancelled:
        out.add("no-records", line=f.header_line, message="the file has a header row but 0 records")
    report.findings.sort(key=lambda x: (x.line or 0, x.column_number or 0))
    return report


def _run(f, checker, report, out, progress, cancel) -> None:
    is_cancelled = (cancel.is_set if isinstance(cancel, threading.Event) else cancel) or (lambda: False)
    total = max(f.size, 1)
    done_chars = reported = 0
    for chunk in scan(f):
        checker.check(chunk)
        inside = chunk.physical_lines - chunk.count - len(chunk.blank_lines)
        if inside > 0:
            report.quoted_line_breaks += inside
            if report.first_multi_line is None:
                report.first_multi_line = _first_multi_line(chunk)
        report.rows += chunk.count
        report.blank_rows += len(chunk.blank_lines)
        for ln in chunk.blank_lines:
            out.add("blank-row", line=ln, message="blank row (empty or only delimiters): not a record")
        done_chars += len(chunk.text)
        if progress and done_chars - reported >= PROGRESS_CHARS:  # parts are small: a redraw per MiB is enough
            reported = done_chars
            progress(min(done_chars, total), total)
        if is_cancelled():
            report.cancelled = True
            return
    if progress and reported != done_chars:
        progress(min(done_chars, total), total)
    checker.finish()
    if report.quoted_line_breaks:
        # Not a finding (valid CSV), but the admin sees why rows and lines differ: a quote that
        # swallowed whole rows and still closed properly looks exactly like this.
        report.notes.append(
            f"{report.quoted_line_breaks} line break(s) inside quoted values: some records span several lines "
            f"(the first on line {report.first_multi_line})")


def _first_multi_line(chunk) -> int | None:
    """The line of the part's first record that spans more than one line."""
    blank = set(chunk.blank_lines)
    end = chunk.first_line + chunk.physical_lines
    for i in range(chunk.count):
        start = chunk.line_of(i)
        stop = chunk.line_of(i + 1) if i + 1 < chunk.count else end
        while stop - 1 in blank and stop - 1 > start:  # blank lines before the next record
            stop -= 1
        if stop - start > 1:
            return start
    return None


def _check_header(f: ImportFile, out: _Collector, importer: str, course: str | None) -> dict[str, int] | None:
    header = f.header
    line = f.header_line
    canon = [_canonical(h) for h in header]
    known = [c for c in canon if c in COLUMNS]
    if len(header) == 1:
        other = _other_delimiter(f)
        if other:
            out.add("delimiter-suspect", line=line, column=0, value=header[0],
                    message=f"the header reads as a single column; the delimiter may be "
                            f"{other!r} ({DELIMITER_NAMES[other]})", fix=f"export as comma-separated CSV (the file seems to use {DELIMITER_NAMES[other]}s)")
            return None
    if not known:
        where = _header_below(f)
        msg = "the first line is not a header of import columns"
        if where:
            msg += f"; a header seems to be on line {where}: delete the line(s) above it"
        out.add("header-not-recognised", line=line, value=f.delimiter.join(header)[:80], message=msg)
        return None
    cols: dict[str, int] = {}
    seen: dict[str, int] = {}
    for i, (name, key) in enumerate(zip(header, canon)):
        if safe_text.clean_header(name) != name:
            points = ", ".join(sorted({safe_text.describe(ch) for ch in name if not ch.isalnum() and ch not in "_-"}))
            out.add("header-whitespace", line=line, column=i, value=name,
                    message=f"header {safe_text.visible(name)!r} has extra or unusual spaces or invisible characters"
                            + (f" ({points})" if points else ""),
                    fix=f"rename it to {safe_text.clean_header(name)!r} (`importconsole fix --sanitize`)")
        if not key:
            out.add("blank-column", line=line, column=i, message=f"header cell {i + 1} is blank")
            continue
        if key in seen:
            out.add("duplicate-column", line=line, column=i, value=name,
                    message=f"column {safe_text.visible(name)!r} repeats column {seen[key] + 1}"
                            + (" (after ignoring case and spaces)" if header[seen[key]] != name else ""),
                    fix="keep one of the two columns")
            continue
        seen[key] = i
        if key in COLUMNS:
            cols[key] = i
            continue
        match = difflib.get_close_matches(key.replace(" ", "_"), COLUMNS, n=1, cutoff=0.75)
        if match and match[0] not in canon:
            out.add("misspelled-column", line=line, column=i, value=name,
                    message=f"unknown column {safe_text.visible(name)!r}: did you mean {match[0]!r}?",
                    fix=f"rename the column to {match[0]!r}")
        else:
            near = difflib.get_close_matches(key, COLUMNS, n=1, cutoff=0.5)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            out.add("unknown-column", line=line, column=i, value=name,
                    message=f"unknown column {safe_text.visible(name)!r}{hint}",
                    fix="rename it to one of: " + ", ".join(COLUMNS) + "; or remove it")
    if "external_user_id" not in cols and "external_email" not in cols:
        out.add("missing-column", line=line, message="no external_user_id or external_email column: rows name no learner",
                fix="add an external_user_id or external_email column")
    if importer == "global":
        for name in ("external_course_id", "title"):
            if name not in cols:
                out.add("missing-column", line=line, message=f"the global importer needs a {name} column",
                        fix=f"add the {name} column")
    return cols


def _other_delimiter(f: ImportFile) -> str | None:
    with f.open_text(0) as text:
        sample = text.read(8192)
    counts = {d: sample.count(d) for d in DELIMITERS if d != f.delimiter}
    best = max(counts, key=counts.get)
    return best if counts[best] > 0 else None


def _header_below(f: ImportFile) -> int | None:
    """A title row above the header: find the line that reads like a header."""
    with f.open_text(0) as text:
        for n, line in enumerate(text, start=1):
            if n > 20:
                break
            cells = [_canonical(c) for c in line.strip("\r\n\ufeff").split(f.delimiter)]
            if sum(c in COLUMNS for c in cells) >= 2:
                return n
    return None


def _cp1252_letters(cell: str) -> list[tuple[int, str]]:
    """(index, character) of characters beyond ASCII read as Windows-1252 (not the special ones:
    find_special has those, undecodable bytes included)."""
    return [(i, ch) for i, ch in enumerate(cell)
            if ord(ch) > 127 and not safe_text.SPECIAL_RE.match(ch)]


def _describe_cp1252(ch: str) -> str:
    return f"byte 0x{ch.encode('cp1252')[0]:02X} ({ch} in Windows-1252, not UTF-8)"


def _parse_date(value: str) -> bool:
    if not _DATE_RE.fullmatch(value):
        return False
    try:
        if len(value) == 10:
            date.fromisoformat(value)
        else:
            datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _parse_number(value: str) -> bool:
    return bool(_NUMBER_RE.fullmatch(value))


def _letters_to_check(text: str, beyond_ascii: str | None, nfc: bool | None) -> bool:
    """May the text hold mojibake, smart quotes or a value not in NFC? beyond_ascii: its characters
    beyond ASCII in order, and nfc, when scan knows them (a part of quoted values): they tell
    the same quicker."""
    part = text if beyond_ascii is None else beyond_ascii
    if ("\u00c3" in part or "\u00c2" in part) and safe_text.MOJIBAKE_RE.search(text):
        return True
    if any(q in part for q in _SMART_QUOTES):
        return True
    return not (unicodedata.is_normalized("NFC", text) if nfc is None else nfc)


class _RowChecks:
    """The row rules, column-wise over each chunk."""

    def __init__(self, f: ImportFile, out: _Collector, cols: dict[str, int], importer: str,
                 course: str | None, facts: LmsFacts | None):
        self.f = f
        self.out = out
        self.cols = cols
        self.ncols = len(f.header)
        self.importer = importer
        self.course = course
        self.facts = facts
        self.ok_values: dict[str, set[str]] = {c: {""} for c in (*DATE_COLUMNS, "credits", "complete", "credit_type")}
        self.keys_seen: set[int] = set()
        self.dup_keys: set[int] = set()
        self.exact_repeats = False  # a repeat was seen: look for exactly which keys repeat
        self.category_seen: set[int] = set()
        self.first_invalid: int | None = None
        self.spill: _KeySpill | None = None
        self.special = safe_text.special_pattern(f.delimiter)
        self.lms = _LmsChecks(self, facts, importer, course) if facts is not None else None

    # -- per chunk --------------------------------------------------------------------------
    def check(self, chunk) -> None:
        if not chunk.count:
            return
        self.max_line = chunk.max_line
        n = self.ncols
        idx = None
        if chunk.uniform:
            columns = chunk.columns()
        else:
            rows = chunk.rows
            if set(map(len, rows)) != {n}:
                rows = self._ragged(chunk)
                idx = [i for i, cells in enumerate(chunk.rows) if len(cells) == n]
            columns = list(zip(*rows)) if rows else []
        if self.f.encoding == "cp1252" and not chunk.text.isascii():
            self._cp1252_checks(chunk)  # special characters and the bytes that are not UTF-8, per value
        if not chunk.clean:
            self._raw_checks(chunk)
        elif not chunk.text.isascii():
            self._text_checks(chunk)
        if not columns:
            return

        def where(i: int) -> tuple[int, int]:
            j = idx[i] if idx is not None else i
            return chunk.first_row + j, chunk.line_of(j)

        self.edge_space_free = chunk.edge_space_free  # no value starts or ends with a space
        self._formats(columns, where)
        self._formula_and_spaces(columns, where, formula=not chunk.formula_free, spaces=not chunk.edge_space_free)
        self._semantics(columns, where)
        self._duplicates(columns, where, trusted=chunk.keys_trusted)
        if self.lms:
            self.lms.check(columns, where)

    def _ragged(self, chunk) -> list[list[str]]:
        n = self.ncols
        keep = []
        raws = chunk.raws
        for i, cells in enumerate(chunk.rows):
            if len(cells) == n:
                keep.append(cells)
                continue
            row, line = chunk.first_row + i, chunk.line_of(i)
            raw = raws[i] if raws else ""
            problem = _quote_problem(raw, self.f.delimiter) if '"' in raw else None
            if problem is not None and problem.unbalanced:
                self._unbalanced(cells, row, line, raw, problem)
                continue
            if len(cells) < n:
                self.out.add("ragged-row", row=row, line=line, column=len(cells) - 1 if cells else 0,
                             value=self.f.delimiter.join(cells)[:80],
                             message=f"row has {len(cells)} cells, the header has {n}: "
                                     f"{self.f.header[len(cells)] if len(cells) < n else ''} and after are missing "
                                     "(a line break inside an unquoted value?)")
            else:
                self.out.add("ragged-row", row=row, line=line, column=n - 1, value=cells[n],
                             message=f"row has {len(cells)} cells, the header has {n}: {len(cells) - n} extra from "
                                     f"cell {n + 1} (a delimiter inside an unquoted value?)")
        return keep

    def _invalid_bytes_note(self) -> str:
        if self.first_invalid is None:  # looked up once, by scanning the bytes
            self.first_invalid = first_invalid_byte(self.f.path, self.f.encoding, self.f.data_offset) or -1
        where = f"; the file's first invalid byte is at byte offset {self.first_invalid}" if self.first_invalid >= 0 else ""
        return f" (bytes invalid in {self.f.encoding_label}{where}: save the file as CSV UTF-8)"

    def _unbalanced(self, cells, row, line, raw, problem: QuoteProblem) -> None:
        # Reported where the quote opened, with every line it swallowed: the rows on them are not
        # records, and the admin is told so (the row count never shrinks silently).
        opened = line + _line_breaks(raw[:problem.opened_at])
        end = line + _line_breaks(raw.rstrip("\r\n"))
        k = min(problem.column, len(cells) - 1) if cells else 0
        swallowed = f"lines {opened}-{end} were read as one value ({end - opened} line(s) swallowed: the rows on " \
            "them are not counted)" if end > opened else "it runs to the end of the file"
        self.out.add("unbalanced-quote", row=row, line=opened, column=min(problem.column, self.ncols - 1),
                     value=cells[k][:60] if cells else "",
                     message=f"the quote opening value {problem.column + 1} on line {opened} {problem.what}: {swallowed}")

    def _special_cells(self, cells: list[str], row: int, line: int) -> None:
        cp1252 = self.f.encoding == "cp1252"
        for c, cell in enumerate(cells):
            hits = safe_text.find_special(cell)
            not_utf8 = _cp1252_letters(cell) if cp1252 and not cell.isascii() else []
            if not_utf8:  # the LMS reads UTF-8: these bytes become U+FFFD there, and the import hangs
                hits = sorted(hits + not_utf8)
            if hits:
                points = ", ".join(dict.fromkeys(
                    _describe_cp1252(ch) if cp1252 and (i, ch) in not_utf8 else safe_text.describe(ch)
                    for i, ch in hits))
                pos = hits[0][0]
                self.out.add("special-characters", row=row, line=line + cell.count("\n", 0, pos), column=c,
                             value=cell, message=f"{points} at character {pos + 1} of the value"
                             + (self._invalid_bytes_note() if "invalid byte" in points and not not_utf8 else "")
                             + (" (the LMS reads UTF-8: it gets U+FFFD there and the import hangs on this row)"
                                if not_utf8 else ""),
                             fix=("write the file as UTF-8: `importconsole fix --sanitize` (a UTF-8 copy), or save it "
                                  "as CSV UTF-8 in Excel") if not_utf8 else None)

    def _cp1252_checks(self, chunk) -> None:
        """A Windows-1252 file: every value with a letter beyond ASCII holds bytes that are not UTF-8."""
        delim, special = self.f.delimiter, self.special
        for i, cells in enumerate(chunk.rows):
            joined = delim.join(cells)
            if not joined.isascii() or special.search(joined):
                self._special_cells(cells, chunk.first_row + i, chunk.line_of(i))

    def _quoted_checks(self, chunk) -> None:
        """A well-quoted chunk (no raw text kept): look per record only for what the chunk may hold."""
        delim, special = self.f.delimiter, self.special
        text = chunk.text
        cp1252_done = self.f.encoding == "cp1252" and not text.isascii()  # _cp1252_checks looked
        letters = not text.isascii() and _letters_to_check(text, chunk.beyond_ascii, chunk.nfc)
        # The part matched RFC 4180 as a whole: every quoted line break in it is a valid one.
        if not (chunk.specials_possible or letters):
            return
        for i, cells in enumerate(chunk.rows):
            row, line = chunk.first_row + i, chunk.line_of(i)
            joined = delim.join(cells)
            if chunk.specials_possible and special.search(joined) and not cp1252_done:
                self._special_cells(cells, row, line)
            if letters and not joined.isascii():
                self._text_cells(cells, row, line)

    def _raw_checks(self, chunk) -> None:
        if chunk.raws is None:
            self._quoted_checks(chunk)
            return
        delim = self.f.delimiter
        special = self.special
        cp1252_done = self.f.encoding == "cp1252" and not chunk.text.isascii()  # _cp1252_checks looked
        for i, (cells, raw) in enumerate(zip(chunk.rows, chunk.raws)):
            row, line = chunk.first_row + i, chunk.line_of(i)
            if special.search(raw) and not cp1252_done:
                self._special_cells(cells, row, line)
            if '"' in raw and len(cells) == self.ncols:  # other widths: _ragged() looked already
                problem = _quote_problem(raw, delim)
                if problem is not None and problem.unbalanced:
                    self._unbalanced(cells, row, line, raw, problem)
                    continue
                if problem is not None:
                    col = problem.column
                    self.out.add("stray-quote", row=row, line=line + _line_breaks(raw[:problem.opened_at]),
                                 column=min(col, self.ncols - 1), value=cells[min(col, len(cells) - 1)],
                                 message=problem.what)
            if not raw.isascii():
                self._text_cells(cells, row, line)

    def _text_checks(self, chunk) -> None:
        # A clean chunk with letters beyond ASCII: only mojibake, smart quotes, NFC can be there.
        text = chunk.text
        # Smart quotes, combining marks (NFD) and most mojibake carry bytes that already made the
        # chunk unclean.
        if ("\u00c3" in text or "\u00c2" in text) and safe_text.MOJIBAKE_RE.search(text):
            for i, cells in enumerate(chunk.rows):
                if not all(map(str.isascii, cells)):
                    self._text_cells(cells, chunk.first_row + i, chunk.line_of(i))

    def _text_cells(self, cells: list[str], row: int, line: int) -> None:
        for c, cell in enumerate(cells):
            if cell.isascii():
                continue
            m = safe_text.MOJIBAKE_RE.search(cell)
            if m:
                try:
                    guess = cell.encode("cp1252").decode("utf-8")
                except (UnicodeEncodeError, UnicodeDecodeError):
                    guess = None
                self.out.add("mojibake", row=row, line=line, column=c, value=cell,
                             message=f"garbled letters {m.group()!r} (UTF-8 read as Windows-1252)"
                                     + (f"; probably {safe_text.visible(guess)!r}" if guess else ""))
            s = cell.strip()
            if len(s) >= 2 and s[0] in _SMART_QUOTES and s[-1] in _SMART_QUOTES:
                self.out.add("smart-quotes", row=row, line=line, column=c, value=cell,
                             message=f"value wrapped in typographic quotes {s[0]} {s[-1]}: CSV only treats \" as a quote")
            if not unicodedata.is_normalized("NFC", cell):
                self.out.add("unicode-normalisation", row=row, line=line, column=c, value=cell,
                             message="value is in decomposed Unicode form (NFD): it will not match the same text "
                                     "written in composed form (NFC)")

    def _formats(self, columns, where) -> None:
        cols = self.cols
        checks = [(name, _parse_date, "bad-date", "an ISO 8601 date (YYYY-MM-DD)") for name in DATE_COLUMNS]
        checks.append(("credits", _parse_number, "bad-number", "a number like 1.5 (dot, at most 2 decimals, at most 9999.99)"))
        for name, ok, rule, expected in checks:
            if name not in cols:
                continue
            col = columns[cols[name]]
            cache = self.ok_values[name]
            if cache.issuperset(col):  # every value seen and good before: no new set to build
                continue
            new = set(col) - cache
            new.discard("")
            bad = set()
            for v in new:
                (cache if ok(v) else bad).add(v)
            if len(cache) > 100_000:
                cache.clear()
                cache.add("")
            if bad:
                for i, v in enumerate(col):
                    if v in bad:
                        row, line = where(i)
                        fix = "write the date as YYYY-MM-DD, e.g. 2026-03-04" if rule == "bad-date" else \
                            "write the amount with a dot and at most 2 decimals, e.g. 1.5"
                        self.out.add(rule, row=row, line=line, column=cols[name], value=v,
                                     message=f"{name} {safe_text.visible(v)!r} is not {expected}", fix=fix)
        if "complete" in cols:
            col = columns[cols["complete"]]
            bad = set() if _COMPLETE_VALUES.issuperset(col) else set(col) - _COMPLETE_VALUES
            for i, v in enumerate(col) if bad else ():
                if v in bad:
                    row, line = where(i)
                    self.out.add("bad-complete", row=row, line=line, column=cols["complete"], value=v,
                                 message=f"complete {safe_text.visible(v)!r} is not 1 or 0")

    def _formula_and_spaces(self, columns, where, formula: bool = True, spaces: bool = True) -> None:
        formatted = {self.cols[c] for c in (*DATE_COLUMNS, "credits", "complete") if c in self.cols}
        ids = {self.cols[c] for c in ID_COLUMNS if c in self.cols} if spaces else set()
        for k, col in enumerate(columns):
            if (k in formatted or not formula) and k not in ids:
                continue
            # One join per column, then C-level finds: a value starts a line of `joined`.
            joined = "\n".join(col)
            if formula and k not in formatted and any(ch in joined and (joined.startswith(ch) or ("\n" + ch) in joined)
                                          for ch in safe_text.FORMULA_START):
                for i, v in enumerate(col):
                    if v.startswith(safe_text.FORMULA_START):
                        row, line = where(i)
                        self.out.add("formula-like", row=row, line=line, column=k, value=v,
                                     message=f"value starts with {safe_text.visible(v[0])!r}: a spreadsheet runs it "
                                             "as a formula (kept as it is in the import file)")
            if k in ids and " " in joined:
                for i, v in enumerate(col):
                    if v and v != v.strip(" "):
                        row, line = where(i)
                        self.out.add("id-whitespace", row=row, line=line, column=k, value=v,
                                     message=f"{self.f.header[k]} {safe_text.visible(v)!r} has spaces around it: "
                                             "it may not match the LMS's record", fix="trim the value (`importconsole fix --sanitize`)")

    def _semantics(self, columns, where) -> None:
        cols = self.cols
        get = lambda name: columns[cols[name]] if name in cols else None  # noqa: E731
        users, emails = get("external_user_id"), get("external_email")
        complete, credits, ctype = get("complete"), get("credits"), get("credit_type")
        done, course_col, title = get("date_completed"), get("external_course_id"), get("title")
        if users is not None or emails is not None:
            if (users is None or "" in users) and (emails is None or "" in emails):
                empty = ("",) * len(columns[0])
                for i, (u, e) in enumerate(zip(users or empty, emails or empty)):
                    if not u.strip() and not e.strip():
                        row, line = where(i)
                        self.out.add("missing-user", row=row, line=line, message="the row names no learner "
                                     "(external_user_id and external_email are empty)")
        if self.importer == "global":
            for name, col in (("external_course_id", course_col), ("title", title)):
                if col is not None and "" in col:
                    for i, v in enumerate(col):
                        if not v.strip():
                            row, line = where(i)
                            self.out.add("missing-value", row=row, line=line, column=cols[name],
                                         message=f"{name} is empty; the global importer needs it on every row")
        if course_col is not None:
            if self.max_line > COURSE_ID_MAX and max(map(len, course_col)) > COURSE_ID_MAX:
                for i, v in enumerate(course_col):
                    if len(v) > COURSE_ID_MAX:
                        row, line = where(i)
                        self.out.add("value-too-long", row=row, line=line, column=cols["external_course_id"], value=v,
                                     message=f"external_course_id has {len(v)} characters; at most {COURSE_ID_MAX}")
            if self.importer == "course" and self.course:
                other = set(course_col) - {self.course, ""}
                for i, v in enumerate(course_col) if other else ():
                    if v in other:
                        row, line = where(i)
                        self.out.add("course-mismatch", row=row, line=line, column=cols["external_course_id"], value=v,
                                     message=f"the row names course {safe_text.visible(v)!r}, the import goes to {self.course!r}")
        if ctype is not None:
            multi = {v for v in set(ctype) - self.ok_values["credit_type"]
                     if len([p for p in CREDIT_TYPE_SEPARATORS.split(v.strip()) if p]) > 1}
            self.ok_values["credit_type"].update(set(ctype) - multi)
            for i, v in enumerate(ctype) if multi else ():
                if v in multi:
                    row, line = where(i)
                    parts = [p for p in CREDIT_TYPE_SEPARATORS.split(v.strip()) if p]
                    self.out.add("multiple-credit-types-in-row", row=row, line=line, column=cols["credit_type"], value=v,
                                 message=f"credit_type holds {len(parts)} types ({', '.join(parts)}); one per row",
                                 fix="write one row per credit type (`importconsole fix --split-credit-types`)")
        # The LMS refuses credits it cannot put a credit type on. Looked for in C (compress over
        # the rows without a type); row by row only when there is one.
        if credits is not None and (ctype is None or "" in ctype or (
                not self.edge_space_free and " " in "".join(ctype))) and any(map(
                str.strip, credits if ctype is None else compress(credits, map(operator.not_, map(str.strip, ctype))))):
            types = ctype or ("",) * len(credits)
            for i, (cr, ct) in enumerate(zip(credits, types)):
                if cr.strip() and not ct.strip():
                    row, line = where(i)
                    self.out.add("credits-without-credit-type", row=row, line=line, column=cols["credits"], value=cr,
                                 message=f"credits {safe_text.visible(cr)!r} with no credit_type: the LMS refuses the row")
        if complete is not None:
            if "0" in complete and (credits is not None or ctype is not None):
                empty = ("",) * len(complete)
                for i, (c, cr, ct) in enumerate(zip(complete, credits or empty, ctype or empty)):
                    if c == "0" and (cr.strip() or ct.strip()):
                        row, line = where(i)
                        col = cols["credits"] if cr.strip() and credits is not None else cols["credit_type"]
                        self.out.add("credit-on-incomplete", row=row, line=line, column=col, value=cr or ct,
                                     message="complete=0 with credit: the imported credit record is the one that remains")
            if "1" in complete and (done is None or "" in done):
                empty = ("",) * len(complete)
                for i, (c, d) in enumerate(zip(complete, done or empty)):
                    if c == "1" and not d.strip():
                        row, line = where(i)
                        self.out.add("completion-date-missing", row=row, line=line,
                                     column=cols.get("date_completed", cols["complete"]),
                                     message="complete=1 and no date_completed: the learner's next login date is used")

    def _duplicates(self, columns, where, trusted: bool = False) -> None:
        cols = self.cols
        n = len(columns[0])
        empty = ("",) * n
        keys = _key_columns(columns, cols, trusted)
        present = list(keys.values())
        if present:
            hashes = list(map(hash, zip(*present) if len(present) > 1 else present[0]))
            if self.spill is not None:
                if self.spill.add(hashes):
                    # Some key of this chunk was seen before: which ones is settled by the second
                    # pass, for this chunk's keys.
                    self.dup_keys.update(hashes)
            else:
                # Only the keys that really repeat go to the second pass: a few duplicate rows
                # scattered through a big file must not make it hold every key of their parts.
                # Until the first repeat the cheap test (did the set grow by n?) is enough; the part
                # holding it sends all its keys, later parts only their repeated ones.
                seen = self.keys_seen
                if not self.exact_repeats:
                    before = len(seen)
                    seen.update(hashes)
                    if len(seen) - before != n:
                        self.dup_keys.update(hashes)
                        self.exact_repeats = True
                else:
                    repeated = seen.intersection(hashes)  # seen in an earlier part
                    before = len(seen)
                    seen.update(hashes)
                    if len(seen) - before + len(repeated) != n:  # a key repeats inside this part
                        repeated.update(h for h, c in Counter(hashes).items() if c > 1)
                    if repeated:
                        self.dup_keys.update(repeated)
                if len(seen) > SPILL_KEYS:  # past ~1M rows the set leaves memory for a temp file
                    self.spill = _KeySpill(seen)
                    self.keys_seen = set()
        if "participant_category" in cols:
            learner, course = keys.get("learner", empty), keys.get("external_course_id", empty)
            cat = columns[cols["participant_category"]]
            for i, c in enumerate(cat):
                if c.strip():
                    h = hash((learner[i], course[i]))
                    if h in self.category_seen:
                        row, line = where(i)
                        self.out.add("participant-category-repeated", row=row, line=line,
                                     column=cols["participant_category"], value=c,
                                     message="participant_category already given on an earlier row of this participant "
                                             "and course: PARS counts them twice")
                    self.category_seen.add(h)

    def finish(self) -> None:
        if self.spill is not None:
            self.spill.close()
        self.keys_seen = set()  # the second pass needs only the repeated keys
        if self.dup_keys:
            _report_duplicates(self)
        if self.lms:
            self.lms.finish()


class _KeySpill:
    """The learner/course/credit-type keys of a very large file, in a temporary SQLite file
    instead of a set, so validating a 1 GB file keeps memory flat."""

    def __init__(self, keys: set[int]):
        import sqlite3
        import tempfile

        self._dir = tempfile.TemporaryDirectory(prefix="importconsole-keys-")
        self._db = sqlite3.connect(Path(self._dir.name) / "keys.sqlite3")
        # 16 MiB of page cache (flat) and keys inserted in order: fewer page misses per part.
        self._db.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-16384; "
                               "CREATE TABLE k (h INTEGER PRIMARY KEY)")
        self._db.executemany("INSERT INTO k VALUES (?)", ((h,) for h in keys))

    def add(self, hashes: list[int]) -> bool:
        """Store the keys; True if any was there already (or repeats among them)."""
        unique = set(hashes)
        before = self._db.total_changes
        self._db.executemany("INSERT OR IGNORE INTO k VALUES (?)", ((h,) for h in sorted(unique)))
        return self._db.total_changes - before != len(hashes)

    def close(self) -> None:
        self._db.close()
        self._dir.cleanup()


def _report_duplicates(checks: _RowChecks) -> None:
    """Second pass, only for keys that repeat: name the first row of each, compare whole rows.
    Keys are the first pass's (_key_columns), so the LMS's matching decides what repeats.
    Past DUPLICATE_KEYS_IN_MEMORY repeated keys the rows' facts go to temporary files, are
    decided there a share of the keys at a time, and a third pass reports the verdicts."""
    endings = checks.f.line_ending_counts.copy()  # the file's line ends, counted by the first pass only
    keys = len(checks.dup_keys)
    spill = SpilledRepeats(keys, DUPLICATE_KEYS_IN_MEMORY) if keys > DUPLICATE_KEYS_IN_MEMORY else None
    try:
        if spill is None:
            _second_pass(checks, FirstRows().decide)
        else:
            _second_pass(checks, spill.add)
            _second_pass(checks, None, _Replay(spill.verdicts()))
    finally:
        checks.f.line_ending_counts = endings
        if spill is not None:
            spill.close()


class _Replay:
    """Verdicts decided beforehand, in file order, handed out as the pass reaches their rows."""

    def __init__(self, verdicts: Iterator[Verdict]):
        self._verdicts = verdicts
        self.next = next(verdicts, None)

    def take(self, row: int) -> Verdict | None:
        while self.next is not None and self.next.row < row:
            self.next = next(self._verdicts, None)
        if self.next is None or self.next.row != row:
            return None
        verdict, self.next = self.next, next(self._verdicts, None)
        return verdict


def _second_pass(checks: _RowChecks, decide: Callable[[Repeat], Verdict | None] | None,
                 replay: _Replay | None = None) -> None:
    """decide: the verdict on each row of a repeated key, in file order; or replay: verdicts
    decided beforehand (only their rows are looked at)."""
    f, cols = checks.f, checks.cols
    wanted = checks.dup_keys
    folded = {cols[c]: c in FOLDED_COLUMNS for c in KEY_COLUMNS if c in cols}
    uid, email = cols.get("external_user_id"), cols.get("external_email")
    complete = cols.get("complete")
    n = len(f.header)
    for chunk in scan(f):
        if replay is not None and (replay.next is None or replay.next.row >= chunk.first_row + chunk.count):
            if replay.next is None:
                break
            continue  # no verdict in this part
        if chunk.uniform:  # columns straight from the flat cells: no per-row lists
            rows, at, columns = None, None, chunk.columns()
        else:
            at = [j for j, cells in enumerate(chunk.rows) if len(cells) == n]
            rows = [chunk.rows[j] for j in at]
            columns = list(zip(*rows))
        if not columns:
            continue
        present = list(_key_columns(columns, cols, trusted=chunk.keys_trusted).values())
        hashes = list(map(hash, zip(*present) if len(present) > 1 else present[0]))
        del columns
        if wanted.isdisjoint(hashes):
            continue
        # The rows whose key repeats, picked in C: a big file with a few duplicates loops over those only.
        for j in compress(range(len(hashes)), map(wanted.__contains__, hashes)):
            k = at[j] if at is not None else j
            row, line = chunk.first_row + k, chunk.line_of(k)
            if replay is not None and (replay.next is None or replay.next.row != row):
                continue
            h = hashes[j]
            cells = rows[j] if rows is not None else chunk.flat[j * n:(j + 1) * n]
            key = tuple(k[j] for k in present)
            normal = list(cells)
            for i, fold in folded.items():
                normal[i] = key_value(cells[i], fold)
            by_id = uid is not None and normal[uid] != ""
            # What the key was made of, as written; and the email when the id decided.
            written = tuple(cells[i] for i in folded if i != (email if by_id else uid))
            mail = normal[email] if by_id and email is not None else ""
            done = complete is not None and cells[complete].strip() == "1"
            ct = normal[cols["credit_type"]] if "credit_type" in cols else ""
            cr = cells[cols["credits"]].strip() if "credits" in cols else ""
            if replay is not None:
                verdict = replay.take(row)
            else:
                verdict = decide(Repeat(row, line, h, hash(("key", key)), hash(tuple(normal)), hash(written),
                                        hash(mail), done, bool(ct or cr)))
            if verdict is None:
                continue
            first_row = verdict.first_row
            if verdict.completed_row:
                # "Updating enrollments": an earlier row of this import completed the enrollment.
                checks.out.add("completed-earlier-in-file", row=row, line=line, column=complete,
                               value=cells[complete] if complete is not None else "",
                               message=f"row {verdict.completed_row} completes this learner's enrollment in this course "
                                       "earlier in the file: the LMS then refuses this row (cannot update)",
                               fix=f"delete row {row}, or put it before row {verdict.completed_row}")
            how = ""
            if verdict.written_differs:
                how = " (written differently: case, spaces or Unicode form; the LMS matches them as one)"
            if verdict.mail_differs:
                how += " (same external_user_id with another email: the LMS matches the id first)"
            if verdict.identical:
                checks.out.add("duplicate-row", row=row, line=line, value=f.delimiter.join(cells)[:80],
                               message=f"identical to row {first_row}{how}: it would be imported twice",
                               fix=f"delete row {row} (or row {first_row})")
            if ct or cr:
                checks.out.add("duplicate-credit-row", row=row, line=line, column=cols.get("credit_type"), value=ct,
                               message=f"same learner, course and credit type as row {first_row}{how}",
                               fix="keep one row per learner, course and credit type")


def _line_breaks(text: str) -> int:
    return text.count("\n") + text.count("\r") - text.count("\r\n")


class QuoteProblem(NamedTuple):
    column: int  # 0-based value the problem is in
    what: str
    unbalanced: bool  # a quoted value ran over line ends to a quote that cannot be its end (or none)
    opened_at: int  # offset in the record's text: the value's opening quote, or the stray quote


def _quote_problem(raw: str, delim: str) -> QuoteProblem | None:
    """Where the record's text breaks RFC 4180, read as the csv module reads it; None if it does not.

    A quoted value that spans line ends and then never closes, or closes with text after the
    quote, is an unbalanced quote: its opening quote swallowed the lines (rows) after it. A
    quoted value that spans line ends and closes properly is valid and never a problem."""
    col = 0
    i = 0
    n = len(raw)
    body = raw.rstrip("\r\n")  # the record's own line end is no line break inside a value
    at_start = True
    while i < n:
        ch = raw[i]
        if at_start:
            if ch == '"':
                opened = i
                i += 1
                while True:
                    j = raw.find('"', i)
                    if j < 0:
                        return QuoteProblem(col, "never closes", True, opened)
                    if j + 1 < n and raw[j + 1] == '"':
                        i = j + 2
                        continue
                    i = j + 1
                    break
                if i < n and raw[i] not in (delim, "\r", "\n"):
                    if _line_breaks(body[opened:i]):  # the quote it closed on opened another value
                        return QuoteProblem(col, "closes only on a later line, where text follows the quote "
                                            f"({safe_text.visible(raw[max(i - 10, opened):i + 10])!r})", True, opened)
                    return QuoteProblem(col, f"text after the closing quote of value {col + 1}", False, opened)
                at_start = False
                continue
            if ch == " ":
                k = i
                while k < n and raw[k] == " ":
                    k += 1
                if k < n and raw[k] == '"':
                    return QuoteProblem(col, f"spaces before the opening quote of value {col + 1}", False, k)
            at_start = False
            continue
        if ch == delim:
            col += 1
            at_start = True
        elif ch == '"':
            return QuoteProblem(col, f"a quote inside unquoted value {col + 1}", False, i)
        elif ch in "\r\n":
            at_start = False
        i += 1
    return None


class _LmsChecks:
    """Rules that need the LMS: facts fetched for <= 1000 records at a time, cached for the run."""

    def __init__(self, checks: _RowChecks, facts: LmsFacts, importer: str, course: str | None):
        self.checks = checks
        self.facts = facts
        self.importer = importer
        self.course = course
        self.credit_types = facts.credit_types()
        self.courses: dict[str, object] = {}
        self.course_reported: set[str] = set()
        self.awards: dict[tuple, object] = {}  # memo of importfile.award answers
        self.award_rows: Counter = Counter()  # rows per kind, turned into report.awards at the end
        self.fix_sentences: dict[tuple, str] = {}

    def _courses(self, ids) -> None:
        missing = [c for c in dict.fromkeys(ids) if c and c not in self.courses]
        for batch in chunks(missing, MAX_KEYS):
            answer = self.facts.courses(batch)
            for c in batch:
                self.courses[c] = answer.get(c)

    def check(self, columns, where) -> None:
        cols = self.checks.cols
        out = self.checks.out
        n = len(columns[0])
        empty = ("",) * n
        pick = lambda name: columns[cols[name]] if name in cols else empty  # noqa: E731
        users, emails, course_col = pick("external_user_id"), pick("external_email"), pick("external_course_id")
        ctype, credits, complete = pick("credit_type"), pick("credits"), pick("complete")
        for start in range(0, n, MAX_KEYS):
            stop = min(n, start + MAX_KEYS)
            rng = range(start, stop)
            course_of = [self.course if self.importer == "course" and self.course else course_col[i].strip() for i in rng]
            self._courses(course_of)
            keys = [UserKey.for_row(users[i], emails[i]) for i in rng]
            ids = sorted({k.external_user_id for k in keys if k and k.external_user_id})
            mails = sorted({k.email for k in keys if k and k.email})
            user_facts = self.facts.users(ids, mails) if (ids or mails) else {}
            enroll_keys = sorted({(k, c) for k, c in zip(keys, course_of) if k and c and self.courses.get(c)},
                                 key=lambda kc: (str(kc[0]), kc[1]))
            enrollments = self.facts.enrollments(enroll_keys) if enroll_keys else {}
            for off, i in enumerate(rng):
                row, line = where(i)
                course_id = course_of[off]
                course = self.courses.get(course_id) if course_id else None
                key = keys[off]
                if course_id and course is None:
                    if self.importer == "global":
                        out.add("course-shell-no-certificate", row=row, line=line, column=cols.get("external_course_id"),
                                value=course_id, message=f"course {safe_text.visible(course_id)!r} does not exist: a course "
                                "shell is made, with no certificate and no required objects")
                    elif course_id not in self.course_reported:
                        self.course_reported.add(course_id)
                        from_file = not (self.importer == "course" and self.course)  # else --course named it
                        out.add("unknown-course", row=row if from_file else None, line=line if from_file else None,
                                column=cols.get("external_course_id") if from_file else None, value=course_id,
                                message=f"course {safe_text.visible(course_id)!r} does not exist on the LMS"
                                        + (" (its first row here; every row naming it is refused)" if from_file else ""))
                user = user_facts.get(key) if key else None
                if key and user is None and (course is None and course_id and self.importer == "global"
                                             or course is not None and course.required_objects == 0):
                    held = self._award(course, course_id, complete[i] == "1", "", "", False, None)
                    out.add("new-user-no-required-objects", row=row, line=line,
                            column=cols.get("external_user_id", cols.get("external_email")), value=str(key),
                            message=f"learner {safe_text.visible(str(key))!r} does not exist yet and the course has no "
                                    f"required objects: whatever the row says, {held.describe()}")
                enrollment = enrollments.get((key, course_id)) if key and course_id else None
                if enrollment is not None and enrollment.complete:
                    out.add("would-update-existing", row=row, line=line,
                            column=cols.get("external_user_id", cols.get("external_email")), value=str(key),
                            message=f"learner {safe_text.visible(str(key))!r} already has a COMPLETE enrollment in "
                                    f"{safe_text.visible(course_id)!r}: the LMS refuses the row (cannot update)")
                t = ctype[i].strip()
                if course_id and key and not CREDIT_TYPE_SEPARATORS.search(t):
                    # The enrollment without its id: one kind per kind of enrollment, not one per learner.
                    kind = enrollment if enrollment is None or enrollment.id is None else replace(enrollment, id=None)
                    self.award_rows[(course_id, complete[i] == "1", t, credits[i].strip(), user is not None, kind)] += 1
                if not t or CREDIT_TYPE_SEPARATORS.search(t):
                    continue
                type_fact = self.credit_types.get(t)
                if type_fact is None:
                    out.add("unknown-credit-type", row=row, line=line, column=cols.get("credit_type"), value=t,
                            message=f"credit type {safe_text.visible(t)!r} is not one of the site's "
                                    f"({', '.join(sorted(self.credit_types)) or 'none'})")
                    continue
                if self.importer == "global" and "pars" in type_fact.reports_to:
                    out.add("global-importer-pars", row=row, line=line, column=cols.get("credit_type"), value=t,
                            message=f"{t} reports to PARS, but global-importer records are left out of PARS reports",
                            fix="use the course-level importer for this course")
                amount_text = credits[i].strip()
                offered = course.credits.get(t) if course is not None else None
                if course is not None and offered is None:
                    out.add("unknown-credit-type", row=row, line=line, column=cols.get("credit_type"), value=t,
                            message=f"course {course_id!r} does not offer credit type {t!r}")
                if amount_text and type_fact.reports_to:
                    out.add("imported-credit-not-reported", row=row, line=line, column=cols.get("credits"),
                            value=amount_text, message=f"imported {t} credit is never reported to "
                            f"{entities(type_fact.reports_to)}",
                            fix=self._completion_only_fix(course, course_id, t, amount_text, user is not None,
                                                          complete[i] == "1"))
                if not amount_text and offered is not None and offered.enable_variable_credit:
                    out.add("variable-credit-without-amount", row=row, line=line, column=cols.get("credits",
                            cols.get("credit_type")), value=t,
                            message=f"{t} credit is Variable on {safe_text.visible(course_id)}, but credits is empty: "
                                    "the LMS refuses the row")
                if not amount_text or offered is None or not _parse_number(amount_text):
                    continue
                amount = Decimal(amount_text)
                if amount > offered.max or amount < offered.min or (
                        offered.increments and (amount - offered.min) % offered.increments != 0):
                    out.add("credits-out-of-range", row=row, line=line, column=cols.get("credits"), value=amount_text,
                            message=f"{amount_text} {t} is outside {course_id}'s range {offered.min}-{offered.max} "
                                    f"in steps of {offered.increments}")
                elif amount < offered.max and not offered.enable_variable_credit:
                    award = self._award(course, course_id, complete[i] == "1", t, amount_text, True, None)
                    out.add("partial-credit-not-variable", row=row, line=line, column=cols.get("credits"),
                            value=amount_text, message=f"{amount_text} is less than the maximum {offered.max} {t} and "
                            f"Variable is off on {course_id}: the LMS records {award.will_record()}")

    def _award(self, course, course_id, complete, credit_type, credits, user_exists, enrollment):
        """importfile.award's answer, memoised: rows repeat a few kinds (course, type, amount...)."""
        key = (course_id, complete, credit_type, credits, user_exists, enrollment)
        award = self.awards.get(key)
        if award is None:
            award = self.awards[key] = award_for_row(
                course=course, credit_types=self.credit_types, importer=self.importer, complete=complete,
                credit_type=credit_type, credits=credits or None, user_exists=user_exists, enrollment=enrollment,
                course_external_id=course_id)
        return award

    def _completion_only_fix(self, course, course_id, credit_type: str, amount: str, user_exists: bool,
                             complete: bool) -> str:
        """The fix sentence, from what the LMS would record for the completion-only row (importfile.award)."""
        key = (course_id, credit_type, amount, user_exists, complete)
        if key not in self.fix_sentences:
            self.fix_sentences[key] = self._fix_sentence(course, course_id, credit_type, amount, user_exists, complete)
        return self.fix_sentences[key]

    def _fix_sentence(self, course, course_id, credit_type, amount, user_exists, complete) -> str:
        offered = course.credits.get(credit_type) if course is not None else None
        if not user_exists or offered is None or offered.enable_variable_credit or not complete:
            return ("report this credit by hand, or have the LMS award it (completion-only import where the user "
                    "exists and variable credit is off)")
        award = self._award(course, course_id, True, "", "", True, None)
        fix = f"import the completion without credit: {award.describe()} (`importconsole fix --completion-only`)"
        value = parse_credits(amount)
        if value is None or award.differs_from({credit_type: value}):
            fix += (f"; this row says {amount} {credit_type}: the fix changes it only where the learner's rows say "
                    "what the LMS records, or you accept that award")
        return fix

    def finish(self) -> None:
        """What the LMS will record, per kind of row (the submit confirmation reads it)."""
        report = self.checks.out.report
        for (course_id, complete, t, credits, user_exists, enrollment), n in self.award_rows.items():
            course = self.courses.get(course_id)
            report.awards[self._award(course, course_id, complete, t, credits, user_exists, enrollment)] += n
