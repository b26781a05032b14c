"""The row rules, column-wise over each chunk of the file: ragged rows, quotes, special
characters, encodings, formats, formulas, spaces around ids and what the values mean together.
Duplicates (duplicates.py) and the rules that need the LMS (lms_checks.py) are called from here."""

from __future__ import annotations

import operator
import unicodedata
from collections.abc import Sequence
from itertools import compress

from .. import safe_text
from ..columns import DATE_COLUMNS, ID_COLUMNS
from ..facts import LmsFacts
from ..reader import ImportFile, first_invalid_byte
from ..scan import Chunk
from .duplicates import DuplicateKeys
from .lms_checks import _LmsChecks
from .quotes import QuoteProblem, _line_breaks, _quote_problem
from .report import Columns, Where, _Collector
from .values import (_COMPLETE_VALUES, _SMART_QUOTES, COURSE_ID_MAX, CREDIT_TYPE_SEPARATORS, _cp1252_letters,
                     _describe_cp1252, _letters_to_check, _parse_date, _parse_number)


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
        self.first_invalid: int | None = None
        self.duplicates = DuplicateKeys(f, out, cols)
        self.special = safe_text.special_pattern(f.delimiter)
        self.lms = _LmsChecks(self, facts, importer, course) if facts is not None else None

    # -- per chunk --------------------------------------------------------------------------
    def check(self, chunk: Chunk) -> None:
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
        self.duplicates.check(columns, where, trusted=chunk.keys_trusted)
        if self.lms:
            self.lms.check(columns, where)

    def _ragged(self, chunk: Chunk) -> list[list[str]]:
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

    def _unbalanced(self, cells: list[str], row: int, line: int, raw: str, problem: QuoteProblem) -> None:
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

    def _cp1252_checks(self, chunk: Chunk) -> None:
        """A Windows-1252 file: every value with a letter beyond ASCII holds bytes that are not UTF-8."""
        delim, special = self.f.delimiter, self.special
        for i, cells in enumerate(chunk.rows):
            joined = delim.join(cells)
            if not joined.isascii() or special.search(joined):
                self._special_cells(cells, chunk.first_row + i, chunk.line_of(i))

    def _quoted_checks(self, chunk: Chunk) -> None:
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

    def _raw_checks(self, chunk: Chunk) -> None:
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

    def _text_checks(self, chunk: Chunk) -> None:
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

    def _formats(self, columns: Columns, where: Where) -> None:
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
            bad: set[str] = set()
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

    def _formula_and_spaces(self, columns: Columns, where: Where, formula: bool = True, spaces: bool = True) -> None:
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

    def _semantics(self, columns: Columns, where: Where) -> None:
        cols = self.cols

        def get(name: str) -> Sequence[str] | None:
            return columns[cols[name]] if name in cols else None

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
                        k = cols["credits"] if cr.strip() and credits is not None else cols["credit_type"]
                        self.out.add("credit-on-incomplete", row=row, line=line, column=k, value=cr or ct,
                                     message="complete=0 with credit: the imported credit record is the one that remains")
            if "1" in complete and (done is None or "" in done):
                empty = ("",) * len(complete)
                for i, (c, d) in enumerate(zip(complete, done or empty)):
                    if c == "1" and not d.strip():
                        row, line = where(i)
                        self.out.add("completion-date-missing", row=row, line=line,
                                     column=cols.get("date_completed", cols["complete"]),
                                     message="complete=1 and no date_completed: the learner's next login date is used")

    def finish(self) -> None:
        self.duplicates.finish()
        if self.lms:
            self.lms.finish()
