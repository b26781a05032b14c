"""Rows that repeat a learner, course and credit type (keys.py says when two are the same):
`duplicate-row`, `duplicate-credit-row`, `completed-earlier-in-file`, and `participant_category`
given twice. The first pass keeps a hash per row (in a temporary SQLite file past SPILL_KEYS rows);
a second pass, only when some key repeats, names the first row of each and compares whole rows."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from itertools import compress
from pathlib import Path

from ..first_rows import FirstRows, Repeat, SpilledRepeats, Verdict
from ..reader import ImportFile
from ..scan import scan
from .keys import FOLDED_COLUMNS, KEY_COLUMNS, _key_columns, key_value
from .report import Columns, Where, _Collector

# Duplicate keys kept in memory up to here (~65 MiB; a 1M-row file stays in memory, at full speed), then in a
# temp file: a file with more rows peaks at ~120 MiB whatever its size (1.5M before: ~180 MiB).
SPILL_KEYS = 1_000_000
DUPLICATE_KEYS_IN_MEMORY = 50_000  # repeated keys' first rows kept in memory up to here (~20 MiB), then in a temp file


class DuplicateKeys:
    """The first pass's keys, chunk by chunk, and the second pass when some repeat."""

    def __init__(self, f: ImportFile, out: _Collector, cols: dict[str, int]):
        self.f = f
        self.out = out
        self.cols = cols
        self.keys_seen: set[int] = set()
        self.dup_keys: set[int] = set()
        self.exact_repeats = False  # a repeat was seen: look for exactly which keys repeat
        self.category_seen: set[int] = set()
        self.spill: _KeySpill | None = None

    def check(self, columns: Columns, where: Where, trusted: bool = False) -> None:
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


def _report_duplicates(checks: DuplicateKeys) -> None:
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


def _second_pass(checks: DuplicateKeys, decide: Callable[[Repeat], Verdict | None] | None,
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
            cells = rows[j] if rows is not None else (chunk.flat or [])[j * n:(j + 1) * n]  # uniform: flat cells
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
                assert decide is not None  # one of the two is given
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
