"""The header row: known, missing, duplicate, misspelled and blank columns, extra spaces, another
delimiter, a title row above the header. Columns are matched as the LMS matches them
(importfile.columns)."""

from __future__ import annotations

import difflib

from .. import safe_text
from ..columns import COLUMNS, column_key
from ..reader import DELIMITER_NAMES, DELIMITERS, ImportFile
from .report import _Collector


def _check_header(f: ImportFile, out: _Collector, importer: str, course: str | None) -> dict[str, int] | None:
    header = f.header
    line = f.header_line
    canon = [column_key(h) for h in header]
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
            if key in COLUMNS:
                cols[key] = i  # the LMS reads the last column of a name: the rules check what it reads
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
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > 0 else None


def _header_below(f: ImportFile) -> int | None:
    """A title row above the header: find the line that reads like a header."""
    with f.open_text(0) as text:
        for n, line in enumerate(text, start=1):
            if n > 20:
                break
            cells = [column_key(c) for c in line.strip("\r\n\ufeff").split(f.delimiter)]
            if sum(c in COLUMNS for c in cells) >= 2:
                return n
    return None
