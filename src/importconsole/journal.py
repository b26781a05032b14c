"""The local audit journal: what this console did to the LMS, one JSON object per line.

Append-only, mode 0600 (it names people's files). An entry is written BEFORE a request that changes
the LMS ("sending") and completed after with the outcome, as a second line. If the console dies in
between, the entry stays pending and the next run reconciles it with the server instead of
submitting again (operations.submit.reconcile_pending).

The token is never written here: entries carry only the fields below.
"""

from __future__ import annotations

import errno
import getpass
import json
import os
import uuid
from dataclasses import dataclass, field
from datetime import datetime, UTC
from pathlib import Path
from typing import Any
from collections.abc import Iterator

from importconsole.private_files import open_private, private_folder

try:
    import fcntl
except ImportError:  # Windows: O_APPEND alone
    fcntl = None  # type: ignore[assignment]

SENDING = "sending"
UNKNOWN = "unknown"
UNRESOLVED = frozenset({SENDING, UNKNOWN})  # the LMS has not told us yet: reconcile asks it


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def default_journal_path() -> Path:
    from importconsole.config import state_dir

    return state_dir() / "journal.jsonl"


def _os_user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"


@dataclass
class JournalEntry:
    """One action as it stands now (begin line merged with its completion, if any)."""

    entry_id: str
    action: str
    outcome: str
    time: str
    completed_at: str | None = None
    os_user: str | None = None
    lms_user: str | None = None
    profile: str | None = None
    base_url: str | None = None
    import_id: int | None = None
    file_path: str | None = None
    sha256: str | None = None
    row_count: int | None = None
    idempotency_key: str | None = None
    importer: str | None = None
    course_external_id: str | None = None
    message: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def pending(self) -> bool:
        return self.outcome in UNRESOLVED


class JournalWriteFailed(Exception):
    """A journal line could not be written (disk full, read-only, quota). Nothing of it is left
    behind: a half-written line is cut back. `str()` names the file and why."""

    def __init__(self, path: Path, error: OSError):
        self.path = path
        self.errno = error.errno
        self.disk_full = error.errno in (errno.ENOSPC, errno.EDQUOT)
        why = "its disk is full" if self.disk_full else (error.strerror or str(error))
        super().__init__(f"the journal {path} could not be written: {why}")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view = view[written:]


class Journal:
    def __init__(self, path: str | os.PathLike[str] | None = None):
        self.path = Path(path) if path else default_journal_path()
        self.skipped_lines = 0  # lines that could not be read (e.g. cut short by a kill)

    def _append(self, record: dict[str, Any]) -> None:
        """Write one whole line, or raise JournalWriteFailed and leave the file as it was."""
        line = (json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8")
        try:
            private_folder(self.path.parent)
            fd = open_private(self.path, "append")  # an older file made with a loose umask is tightened
        except OSError as exc:
            raise JournalWriteFailed(self.path, exc) from None
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            # A line cut short by a kill must not glue onto the next one.
            size = os.fstat(fd).st_size
            if size:
                with open(self.path, "rb") as existing:
                    existing.seek(size - 1)
                    if existing.read(1) != b"\n":
                        line = b"\n" + line
            try:
                _write_all(fd, line)
                os.fsync(fd)  # "written before the request" has to survive a power cut too
            except OSError as exc:
                try:
                    os.ftruncate(fd, size)  # no half line: the reader would skip it, the outcome lost
                except OSError:
                    pass
                raise JournalWriteFailed(self.path, exc) from None
        except OSError as exc:  # flock, reading the last byte
            raise JournalWriteFailed(self.path, exc) from None
        finally:
            os.close(fd)

    def begin(self, action: str, *, profile: str | None = None, base_url: str | None = None, lms_user: str | None = None,
              import_id: int | None = None, file_path: str | os.PathLike[str] | None = None, sha256: str | None = None,
              row_count: int | None = None, idempotency_key: str | None = None, importer: str | None = None,
              course_external_id: str | None = None, **extra: Any) -> str:
        entry_id = uuid.uuid4().hex
        record: dict[str, Any] = {
            "entry": entry_id, "event": "begin", "time": now_iso(), "os_user": _os_user(), "lms_user": lms_user,
            "profile": profile, "base_url": base_url, "action": action, "import_id": import_id,
            "file_path": str(Path(file_path).resolve()) if file_path else None, "sha256": sha256, "row_count": row_count,
            "idempotency_key": idempotency_key, "importer": importer, "course_external_id": course_external_id,
            "outcome": SENDING,
        }
        if extra:
            record["extra"] = extra
        self._append(record)
        return entry_id

    def complete(self, entry_id: str, outcome: str, *, import_id: int | None = None, message: str | None = None, **extra: Any) -> None:
        if outcome == SENDING:
            raise ValueError("complete() needs a final outcome")
        record: dict[str, Any] = {"entry": entry_id, "event": "complete", "time": now_iso(), "outcome": outcome,
                  "import_id": import_id, "message": message}
        if extra:
            record["extra"] = extra
        self._append(record)

    def _lines(self) -> Iterator[dict[str, Any]]:
        self.skipped_lines = 0
        try:
            fh = open(self.path, "rb")
        except FileNotFoundError:
            return
        with fh:
            for raw in fh:
                if not raw.strip():
                    continue
                try:
                    rec = json.loads(raw)
                except ValueError:
                    self.skipped_lines += 1
                    continue
                if isinstance(rec, dict) and "entry" in rec:
                    yield rec

    def entries(self) -> list[JournalEntry]:
        """Every action, oldest first, each with its latest outcome."""
        merged: dict[str, JournalEntry] = {}
        for rec in self._lines():
            eid = rec["entry"]
            if rec.get("event") == "begin":
                merged[eid] = JournalEntry(
                    entry_id=eid, action=rec.get("action", "?"), outcome=rec.get("outcome", SENDING), time=rec.get("time", ""),
                    os_user=rec.get("os_user"), lms_user=rec.get("lms_user"), profile=rec.get("profile"),
                    base_url=rec.get("base_url"), import_id=rec.get("import_id"), file_path=rec.get("file_path"),
                    sha256=rec.get("sha256"), row_count=rec.get("row_count"), idempotency_key=rec.get("idempotency_key"),
                    importer=rec.get("importer"), course_external_id=rec.get("course_external_id"),
                    extra=dict(rec.get("extra") or {}),
                )
            elif rec.get("event") == "complete" and eid in merged:
                entry = merged[eid]
                entry.outcome = rec.get("outcome", entry.outcome)
                entry.completed_at = rec.get("time")
                if rec.get("import_id") is not None:
                    entry.import_id = rec["import_id"]
                if rec.get("message"):
                    entry.message = rec["message"]
                entry.extra.update(rec.get("extra") or {})
        return list(merged.values())

    def pending(self, *, base_url: str | None = None) -> list[JournalEntry]:
        """Entries left "sending" (the console stopped before it learned the outcome) or "unknown"
        (the LMS could not be asked): the next run asks the LMS about them."""
        return [e for e in self.entries() if e.pending and (base_url is None or _same_lms(e.base_url, base_url))]


def _lms_root(url: str | None) -> str:
    """`https://lms/ce/api/v1/` and `https://lms/ce` name the same LMS (the TUI and CLI differ)."""
    root = (url or "").rstrip("/")
    return root[: -len("/api/v1")] if root.endswith("/api/v1") else root


def _same_lms(a: str | None, b: str | None) -> bool:
    return _lms_root(a) == _lms_root(b)
