"""`validate()`: one pass over the file, in the order the checks run (encoding, delimiter,
header, then the row rules chunk by chunk, then duplicates and the LMS's answers)."""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable

from ..catalogue import LMS_RULES
from ..facts import LmsFacts, OfflineFacts
from ..reader import FilePath, ImportFile, open_import_file
from ..scan import Chunk, scan
from .header import _check_header
from .lms_checks import COURSE_RULES
from .report import ValidationReport, _Collector
from .rows import _RowChecks

PROGRESS_CHARS = 1 << 20  # characters read between two progress calls


def validate(path: FilePath, *, importer: str = "course", course_external_id: str | None = None,
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
    online = facts.online
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


def _run(f: ImportFile, checker: _RowChecks, report: ValidationReport, out: _Collector,
         progress: Callable[[int, int], None] | None, cancel: threading.Event | Callable[[], bool] | None) -> None:
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


def _first_multi_line(chunk: Chunk) -> int | None:
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
