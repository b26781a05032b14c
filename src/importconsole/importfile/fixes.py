"""Fixed copies of an import file: never the file itself ("the console never edits the file it
was given"). Every changed row goes into a manifest next to the new file.

- sanitize: terminal escape sequences removed whole, other special characters removed (unusual
  spaces become a space), NFC, headers and ids trimmed ("Unlocking imports": they hang the import).
- split_credit_types: `ama;ancc` becomes one row per credit type ("Multiple credit types").
- completion_only: credit dropped where the LMS awards and reports it itself: the user exists,
  the row completes, and the course's credit type is not variable ("Reporting credit"). Only
  where the LMS then records exactly the credit the file gives the learner in that course
  (`importfile.award`); any other row is left as it is and listed in `award_differs`, unless its
  row number is in `accept_award` (the admin confirmed the LMS's award).
- rows: keep only the given rows (`7-20,25`).

The new file is UTF-8 without BOM, same delimiter (commas for a pipe file: the LMS cannot read
pipes) and line endings; values are otherwise kept
exactly (formula-like cells included: only reports escape them).

Where it writes: the manifest is created at `<out>.manifest.csv` with O_EXCL|O_NOFOLLOW before any
row is read and written as changes are made (memory flat in the file's size); the copy is written
to a temporary file beside --out and given its name by a hard link, which never replaces a file
that appeared there meanwhile. On any failure neither is left behind.
"""

from __future__ import annotations

import csv
import errno
import hashlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, TypeAlias

from importconsole.private_files import open_private

from . import safe_text
from .award import Award, award_for_row, file_says
from .columns import ID_COLUMNS, cell_value, find_columns
from .facts import MAX_KEYS, CourseFact, EnrollmentFact, LmsFacts, UserKey
from .reader import FilePath, ImportFile, ImportFileError, Record, open_import_file
from .validate import CREDIT_TYPE_SEPARATORS


if TYPE_CHECKING:
    from _csv import Writer

Ranges: TypeAlias = "list[tuple[int, int | None]]"  # rows: (first, last or None for "to the end")
Credit: TypeAlias = "tuple[str, str]"  # (credit type, amount as written)
Learner: TypeAlias = "tuple[str | None, str | None, str]"  # (external_user_id, email, course)
Pending: TypeAlias = "list[tuple[Record, list[list[str]]]]"  # records and their rows, waiting for an LMS batch

_INVALID_BYTE = re.compile("[\udc80-\udcff]")  # a byte the input's encoding could not decode


class FixRefused(Exception):
    """The fix cannot be written (it would overwrite the input, needs the LMS...)."""


@dataclass
class FixChange:
    row: int  # row number in the input file (0 = the header)
    line: int
    column: str
    kind: str  # header, sanitize, split, completion-only, duplicate-removed
    before: str
    after: str
    description: str

    def as_row(self) -> list[str]:
        return [str(self.row), str(self.line), self.column, self.kind, self.before, self.after, self.description]


@dataclass(frozen=True)
class AwardDiffers:
    """A row completion-only would change: the LMS would record other credit than the file says."""

    row: int
    line: int
    learner: str
    course: str
    file_credit: tuple[tuple[str, str], ...]  # (credit type, amount as written) of the learner's rows
    award: Award  # what the LMS records for the completion-only row
    accepted: bool  # the admin confirmed it (accept_award): the row was made completion-only

    def describe(self) -> str:
        """`the file says 0.50 ama; the LMS will record 1.5 ama and 1.5 moc_abim`"""
        return f"{file_says(dict(self.file_credit))}; the LMS will record {self.award.will_record()}"

    def sentence(self) -> str:
        who = f"row {self.row} ({safe_text.visible(self.learner)} in {safe_text.visible(self.course)})"
        if self.accepted:
            return f"{who}: made completion-only as you accepted: {self.describe()}"
        return f"{who}: not made completion-only, left as it is: {self.describe()}"


KEEP_CHANGES = 1000  # changes kept in memory for a screen to show; the manifest file has every one
MANIFEST_HEADER = ["row", "line", "column", "change", "before", "after", "description"]


@dataclass
class FixManifest:
    """What a fix did. Every change goes straight to the manifest file as it is made (memory stays
    flat in the file's size); `changes` keeps the first `keep` of them (all when keep is None) and
    `change_count` counts them all."""

    source: Path
    out: Path
    manifest_path: Path
    rows_read: int = 0
    rows_written: int = 0
    changes: list[FixChange] = field(default_factory=list)
    completion_only_rows: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    change_count: int = 0
    keep: int | None = KEEP_CHANGES
    # Rows where completion-only would make the LMS record other credit than the file says: left
    # as they are unless accepted (never counted as fixed without the admin's word). The first
    # `keep` are kept here; the manifest file lists every one left as it is.
    award_differs: list[AwardDiffers] = field(default_factory=list)
    left_as_is_count: int = 0
    _writer: Writer | None = field(default=None, repr=False, compare=False)

    @property
    def left_as_is(self) -> list[AwardDiffers]:
        return [d for d in self.award_differs if not d.accepted]

    def differs(self, item: AwardDiffers, text: str | None = None) -> None:
        """Record a row whose award differs (`text`: item.describe(), when the caller has it already)."""
        if self.keep is None or len(self.award_differs) < self.keep:
            self.award_differs.append(item)
        if item.accepted:
            return
        self.left_as_is_count += 1
        if self._writer is not None:
            self._writer.writerow([safe_text.escape_formula(c) for c in (
                str(item.row), str(item.line), "credits", "left-as-is", "", "",
                f"not made completion-only: {text or item.describe()}; accept that award to change this row")])

    def add(self, change: FixChange) -> None:
        self.change_count += 1
        if self.keep is None or len(self.changes) < self.keep:
            self.changes.append(change)
        if self._writer is not None:
            self._writer.writerow([safe_text.escape_formula(c) for c in change.as_row()])

    def note(self, text: str) -> None:
        self.notes.append(text)
        if self._writer is not None:
            self._writer.writerow(["", "", "", "file", "", "", safe_text.escape_formula(text)])


def parse_rows(spec: str) -> Ranges:
    """`7-20,25,30-` -> ranges; raises ValueError with what is wrong."""
    ranges: list[tuple[int, int | None]] = []
    for part in spec.replace(" ", "").split(","):
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        try:
            start = int(lo)
            end = (int(hi) if hi else None) if sep else start
        except ValueError:
            raise ValueError(f"{part!r} is not a row or a range like 7-20") from None
        if start < 1 or (end is not None and end < start):
            raise ValueError(f"{part!r}: rows start at 1 and ranges go upwards")
        ranges.append((start, end))
    if not ranges:
        raise ValueError("no rows given")
    return ranges


def _wanted(row: int, ranges: Ranges) -> bool:
    return any(lo <= row and (hi is None or row <= hi) for lo, hi in ranges)


def _shown(p: Path) -> str:
    return safe_text.visible(str(p))


def _path_problem(p: Path, exc: OSError, what: str) -> FixRefused:
    """An OS error on a path the admin gave, as a sentence (never exit 70)."""
    if exc.errno == errno.ENAMETOOLONG:
        return FixRefused(f"{what} {_shown(p)}: the name is too long for the file system (at most 255 bytes a "
                          "name): give a shorter --out")
    if exc.errno == errno.ELOOP:
        return FixRefused(f"{what} {_shown(p)}: a symbolic link in it points round in a loop: give a real file")
    if exc.errno == errno.ENOTDIR:
        return FixRefused(f"{what} {_shown(p)}: a part of the path is a file, not a folder: --out must name a "
                          "file in an existing folder")
    return FixRefused(f"{what} {_shown(p)} cannot be used ({exc.strerror or exc})")


def _exists(p: Path, what: str) -> bool:
    """Whether anything is at p, a symlink (dangling or looping) included; lstat never follows it."""
    try:
        os.lstat(p)
        return True
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise _path_problem(p, exc, what) from None


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


def _check_paths(path: Path, out: Path) -> None:
    if _same_file(path, out) or os.path.abspath(path) == os.path.abspath(out):
        raise FixRefused(f"{_shown(out)} is the input file: a fix is always written to a new file "
                         "(give another --out)")
    if _exists(out, "--out"):
        raise FixRefused(f"{_shown(out)} already exists: a fixed copy never replaces a file "
                         "(give another --out, or delete it first)")
    try:
        folder_ok = out.parent.is_dir()
    except OSError as exc:
        raise _path_problem(out.parent, exc, "--out's folder") from None
    if not folder_ok:
        raise FixRefused(f"{_shown(out.parent)} is not a folder: --out must name a file in an existing folder")


def _reserve_manifest(path: Path, manifest_path: Path) -> int:
    """Create the manifest, never through a symlink nor over any file (a dangling link included)."""
    try:
        return open_private(manifest_path, "new", follow_links=False)
    except FileExistsError:
        raise FixRefused(f"{_shown(manifest_path)} (the manifest of --out) already exists"
                         + (" and is the input file" if _same_file(path, manifest_path) else "")
                         + ": give another --out") from None
    except OSError as exc:
        raise _path_problem(manifest_path, exc, "the manifest") from None


def _publish(tmp: Path, out: Path) -> None:
    """Give the finished copy its name without replacing anything that appeared there meanwhile."""
    try:
        os.link(tmp, out)
    except FileExistsError:
        raise FixRefused(f"{_shown(out)} appeared while fix was running: it was left as it is and no fixed copy "
                         "was written (give another --out)") from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS):
            raise
        # A file system without hard links: create the name exclusively and copy into it.
        try:
            fd = open_private(out, "new", follow_links=False)
        except FileExistsError:
            raise FixRefused(f"{_shown(out)} appeared while fix was running: it was left as it is and no fixed "
                             "copy was written (give another --out)") from None
        with os.fdopen(fd, "wb") as dst, open(tmp, "rb") as src:
            shutil.copyfileobj(src, dst, 1 << 20)
    os.unlink(tmp)


def _still_ours(fd: int, p: Path) -> bool:
    try:
        mine, there = os.fstat(fd), os.lstat(p)
    except OSError:
        return False
    return (mine.st_dev, mine.st_ino) == (there.st_dev, there.st_ino)


def write_fixed_file(path: FilePath, out: FilePath, *, sanitize: bool = False, split_credit_types: bool = False,
                     completion_only: bool = False, rows: str | Ranges | None = None, facts: LmsFacts | None = None,
                     importer: str = "course", course_external_id: str | None = None,
                     keep_changes: int | None = KEEP_CHANGES,
                     accept_award: str | Ranges | Iterable[int] | None = None) -> FixManifest:
    """Write the fixed copy at `out` and its manifest at `<out>.manifest.csv`; neither ever replaces
    a file. `keep_changes`: how many changes the returned manifest holds in memory (None: all).
    `accept_award`: rows (numbers or a spec like "3,7-9") the admin confirmed may be made
    completion-only although the LMS would then record other credit than the file says (see
    `FixManifest.award_differs`)."""
    path, out = Path(path), Path(out)
    if not out.name or out.name in (".", ".."):
        raise FixRefused(f"--out {_shown(out)!r} names no file: give the path of the new file, e.g. --out fixed.csv")
    manifest_path = out.with_name(out.name + ".manifest.csv")
    _check_paths(path, out)
    if completion_only and (facts is None or not facts.online):
        raise FixRefused("--completion-only needs the LMS (does the user exist? is variable credit off?): "
                         "give a profile, not --offline")
    if isinstance(rows, str):
        rows = parse_rows(rows)
    accepted = _accepted_rows(accept_award)
    f = open_import_file(path)
    manifest = FixManifest(path, out, manifest_path, keep=keep_changes)
    manifest_fd = _reserve_manifest(path, manifest_path)
    tmp: Path | None = None
    try:
        with os.fdopen(os.dup(manifest_fd), "w", encoding="utf-8", newline="") as report:
            manifest._writer = csv.writer(report)
            manifest._writer.writerow(MANIFEST_HEADER)
            try:
                fd, tmp_name = tempfile.mkstemp(prefix=".importconsole-fix-", suffix=".part", dir=out.parent)
            except OSError as exc:
                raise FixRefused(f"cannot write in {_shown(out.parent)} ({exc.strerror or exc})") from None
            tmp = Path(tmp_name)
            _write_rows(f, fd, manifest, sanitize=sanitize, split_credit_types=split_credit_types,
                        completion_only=completion_only, rows=rows, facts=facts, importer=importer,
                        course_external_id=course_external_id, accept_award=accepted)
            manifest._writer = None
        if not _still_ours(manifest_fd, manifest_path):
            raise FixRefused(f"{_shown(manifest_path)} was removed or replaced while fix was running: no fixed copy "
                             "was written (run fix again)")
        _publish(tmp, out)
        tmp = None
    except BaseException as exc:
        if tmp is not None:
            _unlink_quietly(tmp)
        if _still_ours(manifest_fd, manifest_path):
            _unlink_quietly(manifest_path)
        if isinstance(exc, OSError):  # e.g. the disk filled up: a sentence, and nothing left behind
            raise FixRefused(f"the fixed copy could not be made in {_shown(out.parent)} "
                             f"({exc.strerror or exc}); nothing was written") from None
        raise
    finally:
        manifest._writer = None
        os.close(manifest_fd)
    return manifest


def _accepted_rows(accept_award: str | Ranges | Iterable[int] | None) -> Ranges:
    """The rows the admin accepted an award for: a spec like "3,7-9", ranges, or row numbers."""
    if accept_award is None:
        return []
    if isinstance(accept_award, str):
        return parse_rows(accept_award)
    return [r if isinstance(r, tuple) else (r, r) for r in accept_award]


def _unlink_quietly(p: Path) -> None:
    try:
        os.unlink(p)
    except OSError:
        pass


def _write_rows(f: ImportFile, fd: int, manifest: FixManifest, *, sanitize: bool, split_credit_types: bool,
                completion_only: bool, rows: Ranges | None, facts: LmsFacts | None, importer: str,
                course_external_id: str | None, accept_award: Ranges) -> None:
    """Stream the input's records through the fixes into fd (the temporary copy)."""
    out_delimiter = _output_format(f, manifest)
    header = _fixed_header(f, manifest) if sanitize else list(f.header)
    cols = find_columns(header)
    ids = {cols[c] for c in ID_COLUMNS if c in cols}
    if completion_only and not (course_external_id and importer == "course") and "external_course_id" not in cols:
        # Without the course there is no telling whether its credit is variable: leave credit as it is.
        completion_only = False
        manifest.note("completion-only not applied: the course is not named (give --course EXTERNAL_ID, "
                      "or use a file with an external_course_id column)")

    pending: Pending = []  # (record, cells) waiting for an LMS batch
    lineterminator = "\r\n" if f.line_endings == "CRLF" else "\n"
    written_keys: set[bytes] = set()  # 16-byte digests of the rows written, not the rows themselves
    invalid_rows: list[int] = []  # rows that keep bytes invalid in UTF-8 (no --sanitize)
    # surrogateescape: bytes the input could not decode are written back as they were (the
    # data is kept; validate names them), never a crash.
    with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape", newline="") as fh:
        writer = csv.writer(fh, delimiter=out_delimiter, lineterminator=lineterminator)
        writer.writerow(header)

        def emit(record: Record, cells_list: list[list[str]]) -> None:
            for cells in cells_list:
                if completion_only:
                    key = _row_digest(cells)
                    if key in written_keys:
                        manifest.add(FixChange(record.row, record.line, "", "duplicate-removed", "", "",
                                               "completion row already written for this learner and course: removed"))
                        continue
                    written_keys.add(key)
                writer.writerow(cells)
                manifest.rows_written += 1

        file_credit = _file_credit(f, cols, rows, split_credit_types, sanitize, importer,
                                   course_external_id) if completion_only else {}

        def flush() -> None:
            if not pending:
                return
            assert facts is not None  # completion-only needs the LMS: write_fixed_file refused it without
            decided = _completion_only(pending, cols, facts, importer, course_external_id, manifest,
                                       file_credit, accept_award)
            for (record, _cells), new_list in zip(pending, decided):
                emit(record, new_list)
            pending.clear()

        for record in f.records(keep_raw=False):
            manifest.rows_read += 1
            if rows is not None and not _wanted(record.row, rows):
                continue
            cells = record.cells
            if sanitize:
                _sanitize_cells(record, cells, header, ids, manifest)
            if not sanitize and len(invalid_rows) < 20 and not all(map(str.isascii, cells)) \
                    and any(map(_INVALID_BYTE.search, cells)):
                invalid_rows.append(record.row)
            out_rows = [cells]
            if split_credit_types and "credit_type" in cols and cols["credit_type"] < len(cells):
                out_rows = _split(record, cells, cols, manifest)
            if completion_only:
                pending.append((record, out_rows))
                if len(pending) >= MAX_KEYS // 2:
                    flush()
            else:
                emit(record, out_rows)
        flush()
    _closing_notes(manifest, rows, invalid_rows)


def _output_format(f: ImportFile, manifest: FixManifest) -> str:
    """The copy is UTF-8 without BOM, and never pipe-separated: the delimiter it uses, the changes noted."""
    if f.encoding != "utf-8" or f.bom:
        manifest.note(f"re-encoded from {f.encoding_label} to UTF-8 without BOM")
    if f.delimiter == "|":  # the LMS cannot read pipes (delimiter-unsupported): the copy uses commas
        manifest.note("values separated by commas instead of pipes (the LMS does not read pipes)")
        return ","
    return f.delimiter


def _fixed_header(f: ImportFile, manifest: FixManifest) -> list[str]:
    """The header with special characters and extra spaces removed ("Unlocking imports": they hang the import)."""
    header = list(f.header)
    for i, name in enumerate(header):
        cleaned = safe_text.clean_header(name)
        if cleaned != name:
            manifest.add(FixChange(0, f.header_line, cleaned, "header", safe_text.visible(name), cleaned,
                                   f"header {safe_text.visible(name)!r} -> {cleaned!r}"
                                   + _sequences_said(name)))
            header[i] = cleaned
    return header


def _closing_notes(manifest: FixManifest, rows: Ranges | None, invalid_rows: list[int]) -> None:
    """What the copy does not hold that the admin may expect: rows past the end, bytes left invalid."""
    beyond = [lo for lo, _ in rows or () if lo > manifest.rows_read]
    if beyond:
        manifest.note(f"--rows asks for row {min(beyond)}, but the file has {manifest.rows_read} rows: "
                      "rows past the end were not written")
    if invalid_rows:
        manifest.note(
            f"row(s) {', '.join(map(str, invalid_rows))}{' and more' if len(invalid_rows) >= 20 else ''} keep bytes "
            "that are not valid UTF-8, as they were: the import hangs on them; add --sanitize to remove them")


def _row_digest(cells: list[str]) -> bytes:
    """The same row, the same 16 bytes (repr keeps cells apart; surrogatepass keeps invalid bytes)."""
    return hashlib.blake2b(repr(cells).encode("utf-8", "surrogatepass"), digest_size=16).digest()


def _sanitize_cells(record: Record, cells: list[str], header: list[str], ids: set[int], manifest: FixManifest) -> None:
    for i, value in enumerate(cells):
        fixed = safe_text.sanitize(value)
        if i in ids:
            fixed = fixed.strip()
        if fixed != value:
            col = header[i] if i < len(header) else f"column {i + 1}"
            manifest.add(FixChange(
                record.row, record.line, col, "sanitize", safe_text.visible(value), fixed,
                f"{safe_text.visible(value)!r} -> {fixed!r} (special characters or spaces removed"
                f"{_sequences_said(value)})"))
            cells[i] = fixed


def _sequences_said(value: str) -> str:
    """`; terminal escape sequence <U+001B>[2J removed whole`: the manifest says what went."""
    found = safe_text.escape_sequences(value)
    if not found:
        return ""
    shown = ", ".join(safe_text.visible(s) for s in found[:3]) + (" ..." if len(found) > 3 else "")
    return f"; terminal escape sequence{'s' if len(found) > 1 else ''} {shown} removed whole"


def _split(record: Record, cells: list[str], cols: dict[str, int], manifest: FixManifest) -> list[list[str]]:
    ct = cols["credit_type"]
    value = cells[ct]
    parts = [p for p in CREDIT_TYPE_SEPARATORS.split(value.strip()) if p]
    if len(parts) < 2:
        return [cells]
    amounts = None
    if "credits" in cols and cols["credits"] < len(cells):
        a = [p for p in CREDIT_TYPE_SEPARATORS.split(cells[cols["credits"]].strip()) if p]
        if len(a) == len(parts):
            amounts = a
    out = []
    for k, part in enumerate(parts):
        new = list(cells)
        new[ct] = part
        if amounts:
            new[cols["credits"]] = amounts[k]
        out.append(new)
    manifest.add(FixChange(record.row, record.line, "credit_type", "split", safe_text.visible(value),
                                      " | ".join(parts), f"{safe_text.visible(value)!r} split into {len(parts)} rows, "
                                      "one per credit type"))
    return out


def _course_of(cells: Sequence[str], cols: dict[str, int], importer: str, course_id: str | None) -> str:
    return course_id if importer == "course" and course_id else cell_value(cells, cols, "external_course_id")


def _file_credit(f: ImportFile, cols: dict[str, int], rows: Ranges | None, split: bool, sanitize: bool, importer: str,
                 course_id: str | None) -> dict[Learner, list[Credit]]:
    """(learner, course) -> [(credit type, amount as written)] of the file's completion rows: what
    the file says the learner gets, to weigh a completion-only row against (a first pass, keyed
    as the written rows will be: sanitized when they are)."""
    out: dict[Learner, list[Credit]] = {}
    needed = [cols[c] for c in ("external_user_id", "external_email", "external_course_id", "complete",
                                "credit_type", "credits") if c in cols]
    for record in f.records(keep_raw=False):
        cells = record.cells
        if sanitize:  # only the cells that key the learner and say the credit
            cells = list(cells)
            for i in needed:
                if i < len(cells):
                    cells[i] = safe_text.sanitize(cells[i])
        if (rows is not None and not _wanted(record.row, rows)) or cell_value(cells, cols, "complete") != "1":
            continue
        key = UserKey.for_row(cell_value(cells, cols, "external_user_id"), cell_value(cells, cols, "external_email"))
        ctype, amount = cell_value(cells, cols, "credit_type"), cell_value(cells, cols, "credits")
        if key is None or not (ctype or amount):
            continue
        types = [p for p in CREDIT_TYPE_SEPARATORS.split(ctype) if p] if split else [ctype]
        amounts = [p for p in CREDIT_TYPE_SEPARATORS.split(amount) if p] if split else [amount]
        if len(amounts) != len(types):
            amounts = [amount] * len(types)
        learner = (key.external_user_id, key.email, _course_of(cells, cols, importer, course_id))
        out.setdefault(learner, []).extend(zip(types, amounts))
    return out


def _completion_only(pending: Pending, cols: dict[str, int], facts: LmsFacts, importer: str, course_id: str | None,
                     manifest: FixManifest, file_credit: dict[Learner, list[Credit]],
                     accepted: Ranges) -> list[list[list[str]]]:
    """Drop credit on completion rows where the LMS will award (and report) it itself, and records
    what the file says; other rows stay as they are unless accepted (the admin's word)."""
    flat = [(rec, cells) for rec, lst in pending for cells in lst]
    keys, courses = [], set()
    for _rec, cells in flat:
        key = UserKey.for_row(cell_value(cells, cols, "external_user_id"), cell_value(cells, cols, "external_email"))
        course = _course_of(cells, cols, importer, course_id)
        keys.append((key, course))
        if course:
            courses.add(course)
    course_facts = facts.courses(sorted(courses)) if courses else {}
    ids = sorted({k.external_user_id for k, _ in keys if k and k.external_user_id})
    mails = sorted({k.email for k, _ in keys if k and k.email})
    users = facts.users(ids, mails) if (ids or mails) else {}
    pairs = sorted({(k, c) for k, c in keys if k and c and course_facts.get(c) and users.get(k) is not None},
                   key=lambda kc: (str(kc[0]), kc[1]))
    enrollments = facts.enrollments(pairs) if pairs else {}
    credit_types = facts.credit_types()
    awards: dict[tuple[str, EnrollmentFact | None], Award] = {}  # (course, enrollment) -> the completion-only row's award
    verdicts: dict[tuple[int, tuple[Credit, ...]], list[Credit] | None] = {}  # (award, what the file says) -> _differs
    result_by_record: dict[int, list[list[str]]] = {}
    described: dict[int, str] = {}  # id(award) -> award.describe()
    described_differs: dict[tuple[int, tuple[Credit, ...]], str] = {}  # (id(award), what the file says) -> AwardDiffers.describe()
    for (rec, cells), (key, course) in zip(flat, keys):
        new = list(cells)
        ctype, amount = cell_value(cells, cols, "credit_type"), cell_value(cells, cols, "credits")
        course_fact = course_facts.get(course) if course else None
        offered = course_fact.credits.get(ctype) if course_fact and ctype else None
        if (course_fact is not None and offered is not None and not offered.enable_variable_credit
                and cell_value(cells, cols, "complete") == "1"
                and key is not None and users.get(key) is not None):
            enrollment = enrollments.get((key, course))
            award = awards.get((course, enrollment))
            if award is None:
                award = awards[(course, enrollment)] = award_for_row(
                    course=course_fact, credit_types=credit_types, importer=importer, complete=True,
                    enrollment=enrollment)
            said = tuple(file_credit.get((key.external_user_id, key.email, course), ()))
            if (id(award), said) not in verdicts:
                verdicts[(id(award), said)] = _differs(award, list(said), course_fact)
            differs = verdicts[(id(award), said)]
            said_key = (id(award), said)
            before = f"{amount} {ctype}".strip()
            if differs is not None:
                ok = _wanted(rec.row, accepted)
                item = AwardDiffers(rec.row, rec.line, str(key), course, tuple(differs), award, ok)
                if said_key not in described_differs:
                    described_differs[said_key] = item.describe()
                manifest.differs(item, described_differs[said_key])
                if not ok:
                    result_by_record.setdefault(id(rec), []).append(new)
                    continue
            for name in ("credits", "credit_type"):
                if name in cols and cols[name] < len(new):
                    new[cols[name]] = ""
            why = "" if differs is None else f" (accepted: {file_says(dict(differs))})"
            if id(award) not in described:
                described[id(award)] = award.describe()
            manifest.add(FixChange(rec.row, rec.line, "credits", "completion-only", before, "",
                                              f"completion-only: credit {before} dropped{why}; {described[id(award)]}"))
            if not manifest.completion_only_rows or manifest.completion_only_rows[-1] != rec.row:
                manifest.completion_only_rows.append(rec.row)  # rows come in order: a split row once
        result_by_record.setdefault(id(rec), []).append(new)
    return [result_by_record[id(rec)] for rec, _ in pending]


def _differs(award: Award, said: list[Credit], course: CourseFact) -> list[Credit] | None:
    """None when the LMS records, for the types completion-only awards, exactly what the file
    says; else the file's credit (to show beside the award). A type said twice with two amounts
    never matches (which one the file means is not known); twice the same amount is one credit."""
    amounts: dict[str, Decimal] = {}
    for t, a in said:
        if t not in course.credits or course.credits[t].enable_variable_credit:
            continue  # a variable type's row keeps its own credit
        try:
            value = Decimal(a)
        except InvalidOperation:
            return list(dict.fromkeys(said))
        if amounts.setdefault(t, value) != value:
            return list(dict.fromkeys(said))
    return list(dict.fromkeys(said)) if award.differs_from(amounts) else None


__all__ = ["KEEP_CHANGES", "AwardDiffers", "FixChange", "FixManifest", "FixRefused", "ImportFileError", "parse_rows",
           "write_fixed_file"]
