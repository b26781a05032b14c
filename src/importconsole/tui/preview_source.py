"""An opened import file as the preview grid reads it: header, rows found so far, row N.
Wraps the import-file engine's reader and RowIndex; no parsing of its own."""

from __future__ import annotations

import threading
from pathlib import Path

from importconsole.importfile.index import RowIndex
from importconsole.importfile.reader import ImportFile, open_import_file


HEAD_ROWS = 200


class PreviewSource:
    def __init__(self, path: Path) -> None:
        self.file: ImportFile = open_import_file(path)  # ImportFileError: shown, never raised further
        self.header = self.file.header
        self.index = RowIndex(self.file)
        self.cancel = threading.Event()
        self.error: str | None = None
        # The first screen's rows, read before the index is built: the preview draws them while
        # the index thread has not yet started competing for the interpreter.
        self.head_rows = len(self.file.head(HEAD_ROWS))

    def build(self) -> None:
        """Runs in a thread worker; the grid reads row_count() while it grows."""
        try:
            self.index.build(cancel=self.cancel)
        except Exception as error:  # the reader's sentence, with where and what to do
            self.error = str(error)

    @property
    def done(self) -> bool:
        return self.index.done

    def row_count(self) -> int:
        if self.index.done:
            return self.index.count
        return max(self.index.count, self.head_rows)

    def cells(self, row: int) -> list[str]:
        return self.index.record(row).cells

    def record(self, row: int):
        return self.index.record(row)
