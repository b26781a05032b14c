"""Random access to record N of a file of any size, for the preview.

`RowIndex(import_file).build(cancel)` runs in a thread (the TUI's worker, or `start()`): it reads
the file once as bytes and keeps a checkpoint (byte offset, physical line) every `EVERY` records,
so memory stays flat (16 bytes per 64 records). `record(n)` seeks to the nearest checkpoint and
parses at most `EVERY` records; rows not indexed yet are parsed forward from the last checkpoint,
so the first screen never waits for the build.
"""

from __future__ import annotations

import csv
import io
import threading
from array import array
from collections.abc import Iterable, Iterator

from .reader import ImportFile, ImportFileError, Record

EVERY = 64


class RowIndex:
    def __init__(self, import_file: ImportFile, *, every: int = EVERY):
        self.file = import_file
        self.every = every
        self._offsets = array("q", [import_file.data_offset])  # checkpoint k: record k*every + 1
        self._lines = array("q", [import_file.header_end_line + 1])
        self._count = 0
        self._done = False
        self._lock = threading.Lock()
        self._cache: tuple[int, list[Record]] | None = None
        self._thread: threading.Thread | None = None
        self._cancel = threading.Event()
        self.error: ImportFileError | None = None
        # Byte offsets need \n-ended lines in an 8-bit-compatible encoding (a lone CR inside is
        # split as the reader does); UTF-16 and CR-only files are indexed in memory instead.
        self._fallback = import_file.encoding.startswith("utf-16") or import_file.line_endings == "CR"
        self._all: list[Record] = []

    # -- building -----------------------------------------------------------------------------
    @property
    def count(self) -> int:
        """Records indexed so far (all of them once done)."""
        return self._count

    @property
    def done(self) -> bool:
        return self._done

    def start(self) -> RowIndex:
        """Build in a daemon thread of its own."""
        self._thread = threading.Thread(target=self._build_quietly, name="row-index", daemon=True)
        self._thread.start()
        return self

    def cancel(self) -> None:
        self._cancel.set()

    def wait(self, timeout: float | None = None) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
        return self._done

    def _build_quietly(self) -> None:
        try:
            self.build(cancel=self._cancel)
        except ImportFileError as exc:
            self.error = exc

    def build(self, cancel: threading.Event | None = None) -> None:
        cancel = cancel or self._cancel
        if self._fallback:
            for record in self.file.records():
                self._all.append(record)
                self._count = len(self._all)
                if cancel.is_set():
                    return
            self._done = True
            return
        f = self.file
        every = self.every
        offsets, lines = self._offsets, self._lines
        encoding = f.encoding
        position = f.data_offset  # byte offset of the next line the csv reader will get

        def physical_lines(fh: Iterable[bytes]) -> Iterator[str]:
            nonlocal position
            for raw in fh:
                text = raw.decode(encoding, "surrogateescape")
                if "\r" in text[:-2]:  # a lone CR inside: split as the reader does
                    for piece in io.StringIO(text, newline=""):
                        position += len(piece.encode(encoding, "surrogateescape"))
                        yield piece
                else:
                    position += len(raw)
                    yield text

        csv.field_size_limit(max(f.field_size_limit, 1))
        with open(f.path, "rb") as fh:
            fh.seek(f.data_offset)
            reader = csv.reader(physical_lines(fh), delimiter=f.delimiter)
            first_line = f.header_end_line + 1
            start_offset, consumed = position, 0
            count = 0
            try:
                for cells in reader:
                    record_offset, record_line = start_offset, first_line + consumed
                    start_offset, consumed = position, reader.line_num
                    if not cells or not any(cells):
                        continue  # a blank row is not a record
                    count += 1
                    if count % every == 1 and count > 1:
                        with self._lock:
                            offsets.append(record_offset)
                            lines.append(record_line)
                    self._count = count
                    if (count & 1023) == 0 and cancel.is_set():
                        return
            except csv.Error as exc:
                raise f._csv_error(exc, count + 1, first_line + consumed, []) from None
        self._done = True

    # -- reading ------------------------------------------------------------------------------
    def record(self, n: int) -> Record:
        """Record n (1 = first data row)."""
        if n < 1:
            raise IndexError(n)
        if self._fallback:
            if n <= len(self._all):
                return self._all[n - 1]
            return self._scan_to(n)
        k = (n - 1) // self.every
        with self._lock:
            if k >= len(self._offsets):
                k = len(self._offsets) - 1
            offset, line = self._offsets[k], self._lines[k]
        first = k * self.every + 1
        cached = self._cache
        if cached and cached[0] == first and n - first < len(cached[1]):
            return cached[1][n - first]
        want = max(n - first + 1, self.every)
        out: list[Record] = []
        for record in self.file.records_from(offset, first, line):
            out.append(record)
            if len(out) >= want:
                break
        if n - first >= len(out):
            raise IndexError(n)
        if len(out) <= self.every * 2:
            self._cache = (first, out)
        return out[n - first]

    def records(self, start: int, count: int) -> list[Record]:
        """Up to `count` records from `start` (fewer at the end of the file)."""
        out = []
        for n in range(start, start + count):
            try:
                out.append(self.record(n))
            except IndexError:
                break
        return out

    def _scan_to(self, n: int) -> Record:
        for record in self.file.records():
            if record.row == n:
                return record
        raise IndexError(n)
