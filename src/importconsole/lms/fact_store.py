"""`FactStore`: what the LMS answered about each learner, kept for the run with memory bounded.

Validation asks the LMS about every distinct learner of a file once (the look-up counts per learner are
measured by `make bench`), so the answers must be kept for the whole run: a learner on row 10 and row
900,000 is not asked twice. Kept as Python objects they grew with the file (a 32 MB file of distinct
learners: 595 MiB). Here they are compact values (tuples of strings and numbers), in a dict up to
`IN_MEMORY` entries, then in a temporary SQLite file (values in `marshal`'s format: this process's own data,
read back by it alone, in a folder only its user can open), as the duplicate-key pass of validation does.
"""

from __future__ import annotations

import asyncio
import gc
import marshal
import sqlite3
import tempfile
import weakref
from collections.abc import Coroutine, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from importconsole.importfile.facts import EnrollmentKey, UserKey

IN_MEMORY = 20_000  # answers kept in a dict up to here (a few MiB), then on disk
_PER_QUERY = 500  # keys per SELECT (SQLite's older builds allow 999 parameters)


class FactStore:
    """str key -> an answer made of tuples, lists, dicts, str, numbers, bool (what `marshal` keeps), or None for "the LMS has no such thing"; `known(keys)` leaves out the
    keys never stored. Not thread-safe: callers hold their own lock or stay on one event loop."""

    def __init__(self, in_memory: int = IN_MEMORY) -> None:
        self._limit = in_memory
        self._memory: dict[str, Any] = {}
        self._db: sqlite3.Connection | None = None

    def __len__(self) -> int:
        if self._db is None:
            return len(self._memory)
        return int(self._db.execute("SELECT count(*) FROM f").fetchone()[0])

    @property
    def on_disk(self) -> bool:
        return self._db is not None

    def known(self, keys: Iterable[str]) -> dict[str, Any]:
        """The stored answer of each key asked that was stored (the others were never asked)."""
        if self._db is None:
            memory = self._memory
            return {k: memory[k] for k in keys if k in memory}
        return self._known(list(dict.fromkeys(keys)))

    def put_many(self, items: Iterable[tuple[str, Any]]) -> None:
        if self._db is None:
            self._memory.update(items)
            if len(self._memory) > self._limit:
                self._spill()
            return
        self._db.executemany("INSERT OR REPLACE INTO f VALUES (?, ?)",
                             ((k, None if v is None else marshal.dumps(v)) for k, v in items))

    def _known(self, unique: Sequence[str]) -> dict[str, Any]:
        assert self._db is not None
        out: dict[str, Any] = {}
        for i in range(0, len(unique), _PER_QUERY):
            part = unique[i:i + _PER_QUERY]
            sql = f"SELECT k, v FROM f WHERE k IN ({','.join('?' * len(part))})"
            for k, v in self._db.execute(sql, part):
                out[k] = None if v is None else marshal.loads(v)
        return out

    def _spill(self) -> None:
        folder = tempfile.TemporaryDirectory(prefix="importconsole-facts-")
        db = sqlite3.connect(Path(folder.name) / "facts.sqlite3", check_same_thread=False)
        # A few MiB of page cache, whatever the file's size; nothing to recover after a crash.
        db.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-4096; "
                         "CREATE TABLE f (k TEXT PRIMARY KEY, v BLOB) WITHOUT ROWID")
        self._db = db
        self._finalizer = weakref.finalize(self, _close, db, folder)
        memory, self._memory = self._memory, {}
        self.put_many(memory.items())

    def close(self) -> None:
        if self._db is not None:
            self._finalizer()
            self._db = None
        self._memory = {}


def user_name(key: UserKey) -> str:
    """A learner's key as one string: which kind of key, then the value."""
    return "i" + key.external_user_id if key.external_user_id is not None else "e" + str(key.email)


def enrollment_name(key: EnrollmentKey) -> str:
    name = user_name(key[0])
    return f"{len(name)}:{name}{key[1]}"  # the length keeps ("a", "bc") apart from ("ab", "c")


T = TypeVar("T")


def look_up(loop: asyncio.AbstractEventLoop, coro: Coroutine[object, None, T], timeout: float | None, who: str) -> T:
    """One look-up on the client's event loop, from the validation's worker thread (the rules are
    synchronous); never from that loop itself, which would wait on itself."""
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        coro.close()
        raise RuntimeError(f"{who} must be called from a worker thread, not from the client's event loop")
    try:
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)
    finally:
        after_lookup()


def after_lookup() -> None:
    """Validation turns the cyclic garbage collector off for speed (importfile/validate.py), and each
    answer of the HTTP client leaves reference cycles (request, response, task) that only it frees: they
    piled up, one look-up's worth each, for the whole run. Collect the youngest generation then."""
    if not gc.isenabled():
        gc.collect(0)


def _close(db: sqlite3.Connection, folder: tempfile.TemporaryDirectory[str]) -> None:
    db.close()
    folder.cleanup()

