"""The duplicate rules' second pass, decided per repeated key (validate._report_duplicates): the
first row with the key and what it held, the first row that completed it, and so what each later
row with the key is.

`FirstRows` decides row by row in memory. A file where most learners have two rows (an enrollment
and a completion row) repeats about half its keys, and remembering each one's first row took more
memory than the rest of validation; `SpilledRepeats` writes the rows' facts (numbers and hashes
only) to temporary files, one per share of the keys, decides each share on its own, and gives
the verdicts back in file order: memory holds one share, whatever the file's size.
"""

from __future__ import annotations

import heapq
import tempfile
from array import array
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple


class Repeat(NamedTuple):
    """A row whose key repeats, as the second pass sees it (hashes: memory stays small)."""
    row: int
    line: int
    h: int  # the key's hash: the rows of one key share it
    key: int  # another hash of the key: tells a hash collision from a repeat
    whole: int  # of the whole row as the LMS matches it (identical rows)
    written: int  # of the key as written
    mail: int  # of the email, when the id names the learner
    done: bool  # complete=1
    credit: bool  # has a credit type or credits


class Verdict(NamedTuple):
    """What a later row with a repeated key is: only rows with something to report get one."""
    row: int
    first_row: int  # the key's first row
    completed_row: int  # an earlier row that completed the enrollment (this row does not); 0: none
    identical: bool  # the whole row repeats the first row
    written_differs: bool  # the key is written differently from the first row's
    mail_differs: bool  # the same id with another email


class FirstRows:
    """Per key hash: (first row, key, whole, written, mail) of its first row; the first row that
    completed it."""

    def __init__(self) -> None:
        self.first: dict[int, tuple[int, int, int, int, int]] = {}
        self.completed: dict[int, int] = {}

    def decide(self, r: Repeat) -> Verdict | None:
        first = self.first.get(r.h)
        if first is None:
            self.first[r.h] = (r.row, r.key, r.whole, r.written, r.mail)
            if r.done:
                self.completed[r.h] = r.row
            return None
        first_row, key, whole, written, mail = first
        if key != r.key:
            return None  # a hash collision, not a repeat
        completed_row = 0
        if not r.done:
            completed_row = self.completed.get(r.h, 0)
        else:
            self.completed.setdefault(r.h, r.row)
        identical = whole == r.whole
        if not (completed_row or identical or r.credit):
            return None
        return Verdict(r.row, first_row, completed_row, identical, written != r.written, mail != r.mail)


_FIELDS = len(Repeat._fields) - 1  # done and credit share one number
_FLUSH = 8192 * _FIELDS  # numbers buffered per share before they go to its file
_MAX_SHARES = 256


class SpilledRepeats:
    """The rows of repeated keys in temporary files, one per share of the keys (by hash), each
    decided on its own by FirstRows; verdicts() merges theirs back into file order."""

    def __init__(self, keys: int, keys_in_memory: int) -> None:
        self.shares = max(1, min(_MAX_SHARES, -(-keys // max(keys_in_memory, 1))))
        self._dir = tempfile.TemporaryDirectory(prefix="importconsole-duplicates-")
        self.path = Path(self._dir.name)
        self._buffers = [array("q") for _ in range(self.shares)]

    def add(self, r: Repeat) -> None:
        """Keep the row for later (no verdict yet: the second pass reports none now)."""
        share = r.h % self.shares
        buf = self._buffers[share]
        buf.extend((r.row, r.line, r.h, r.key, r.whole, r.written, r.mail, r.done | r.credit << 1))
        if len(buf) >= _FLUSH:
            self._flush(share)

    def _flush(self, share: int) -> None:
        with open(self.path / f"rows-{share}", "ab") as fh:
            self._buffers[share].tofile(fh)
        del self._buffers[share][:]

    def verdicts(self) -> Iterator[Verdict]:
        """Every verdict, in file order."""
        for share in range(self.shares):
            self._flush(share)
            self._decide(share)
        return heapq.merge(*(self._read(share) for share in range(self.shares)))

    def _decide(self, share: int) -> None:
        rows = self.path / f"rows-{share}"
        numbers = array("q", rows.read_bytes())
        rows.unlink()
        decide = FirstRows().decide
        out = array("q")
        it = iter(numbers)
        for row, line, h, key, whole, written, mail, flags in zip(*[it] * _FIELDS):
            verdict = decide(Repeat(row, line, h, key, whole, written, mail, bool(flags & 1), bool(flags & 2)))
            if verdict is not None:
                out.extend(verdict)
        (self.path / f"verdicts-{share}").write_bytes(out.tobytes())

    def _read(self, share: int) -> Iterator[Verdict]:
        size = len(Verdict._fields)
        with open(self.path / f"verdicts-{share}", "rb") as fh:
            while block := fh.read(8 * size * 4096):
                numbers = array("q", block)
                it = iter(numbers)
                for row, first_row, completed_row, identical, written, mail in zip(*[it] * size):
                    yield Verdict(row, first_row, completed_row, bool(identical), bool(written), bool(mail))

    def close(self) -> None:
        self._dir.cleanup()
