"""The background importer: one row at a time, one transaction per row, yielding to the loop between rows."""

from __future__ import annotations

import asyncio
import logging
import sqlite3

from importconsole.sandbox.db import StoredFile, Tx, get_import, get_lock, now
from importconsole.sandbox.events import Broadcaster
from importconsole.sandbox.importfile import CellTooLong, ParsedFile, Position, read_header, records
from importconsole.sandbox.rules import process_record

log = logging.getLogger("importconsole.sandbox")
PROGRESS_EVERY = 0.02  # seconds; unthrottled imports would otherwise send thousands of events a second


class Importer:
    def __init__(self, conn: sqlite3.Connection, events: Broadcaster, rows_per_second: float | None):
        self.conn = conn
        self.events = events
        self.rows_per_second = rows_per_second or None
        self.tasks: dict[int, asyncio.Task] = {}
        self._parsed: dict[int, ParsedFile] = {}
        # Where an import stopped making progress. Never exposed by the API: like the real LMS, the
        # server "does not know" an import is hung; kept for debugging (logged at INFO).
        self.stalled: dict[int, str] = {}
        self._published: dict[int, float] = {}
        # Where the next unprocessed row of an import starts, so /remaining (after a hang and
        # Unlock) does not read the file again from the top. Kept after Unlock, dropped at the end.
        self.cursors: dict[int, Position] = {}

    def parsed(self, import_id: int) -> ParsedFile:
        """The file's header as the LMS reads it (never its rows: those are read one at a time)."""
        if import_id not in self._parsed:
            self._parsed[import_id] = read_header(StoredFile(self.conn, import_id))
        return self._parsed[import_id]

    def remember(self, import_id: int, parsed: ParsedFile) -> None:
        self._parsed[import_id] = parsed

    def start(self, import_id: int) -> None:
        task = asyncio.get_running_loop().create_task(self._run(import_id), name=f"import-{import_id}")
        self.tasks[import_id] = task
        task.add_done_callback(lambda t, i=import_id: self.tasks.pop(i, None) if self.tasks.get(i) is t else None)

    def resume_all(self) -> None:
        """After a restart: running imports go on from their last committed row (and hang again if they were hung)."""
        for (import_id,) in self.conn.execute("SELECT id FROM imports WHERE state IN ('queued', 'running') ORDER BY id"):
            self.start(import_id)

    async def stop(self) -> None:
        tasks = list(self.tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def forget(self, import_id: int) -> None:
        task = self.tasks.pop(import_id, None)
        if task is not None:
            task.cancel()
        self._parsed.pop(import_id, None)
        self._published.pop(import_id, None)

    def _publish_progress(self, import_id: int, now_: float) -> None:
        # At most one progress event per import every PROGRESS_EVERY seconds; the last state before a
        # stop (stall, end, unlock) is always published, so a watcher never keeps a stale count.
        if now_ - self._published.get(import_id, 0.0) >= PROGRESS_EVERY:
            self._published[import_id] = now_
            self._publish(import_id)

    def _publish(self, import_id: int) -> None:
        if self.events.subscribers:  # nobody watching: skip the query (it is per row)
            self.events.publish("import", import_id, get_import(self.conn, import_id))

    async def _run(self, import_id: int) -> None:
        conn = self.conn
        parsed = self.parsed(import_id)
        imp = conn.execute("SELECT * FROM imports WHERE id = ?", (import_id,)).fetchone()
        if imp["state"] not in ("queued", "running"):
            return
        if parsed.error:
            with Tx(conn):
                conn.execute(
                    "UPDATE imports SET state = 'failed', error = ?, started_at = COALESCE(started_at, ?), finished_at = ? WHERE id = ?",
                    (f"{imp['file_name']}: {parsed.error}", now(), now(), import_id),
                )
                self._release(import_id)
            self._parsed.pop(import_id, None)
            self._published.pop(import_id, None)
            self._publish(import_id)
            self.events.publish("lock", imp["importer"], get_lock(conn, imp["importer"]))
            return
        if imp["state"] == "queued":
            with Tx(conn):
                conn.execute("UPDATE imports SET state = 'running', started_at = ? WHERE id = ?", (now(), import_id))
            self._publish(import_id)
        if parsed.header_hang:
            self._stall(import_id, f"header: {parsed.header_hang}")
            return
        imp = conn.execute("SELECT * FROM imports WHERE id = ?", (import_id,)).fetchone()
        course = None
        if imp["importer"] == "course":  # courses cannot change while an import runs: look it up once
            course = conn.execute("SELECT * FROM courses WHERE external_id = ?", (imp["course_external_id"],)).fetchone()
        loop = asyncio.get_running_loop()
        interval = 1.0 / self.rows_per_second if self.rows_per_second else 0.0
        due = loop.time()
        columns = parsed.columns
        async for record in self._unprocessed(import_id, parsed, imp["rows_processed"]):
            self.cursors[import_id] = Position(record.start, record.row, record.line)
            if interval:
                due += interval
                await asyncio.sleep(max(0.0, due - loop.time()))
            else:
                await asyncio.sleep(0)  # let HTTP handlers run between rows
            if record.hang_reason:
                # Behaviour 8: stop here, silently. State stays running, the lock stays held.
                self._stall(import_id, f"row {record.row}: {record.hang_reason}")
                return
            try:
                cells, unreadable = parsed.cells(record), None
            except CellTooLong as exc:
                cells, unreadable = [], str(exc)
            with Tx(conn):
                state = conn.execute("SELECT state FROM imports WHERE id = ?", (import_id,)).fetchone()[0]
                if state != "running":
                    return  # unlocked meanwhile
                if unreadable:
                    outcome_status, message, enrollment_id = "failed", unreadable, None
                elif len(cells) != len(columns):
                    outcome_status, message, enrollment_id = (
                        "failed", f"the row has {len(cells)} cells but the header has {len(columns)}", None)
                else:
                    fields = dict(zip(columns, cells))
                    fields["__row__"] = record.row
                    outcome_status, message, enrollment_id = self._process_row(import_id, record.row, imp, fields, course)
                conn.execute(
                    "INSERT INTO import_rows (import_id, row, line, status, message, enrollment_id) VALUES (?, ?, ?, ?, ?, ?)",
                    (import_id, record.row, record.line, outcome_status, message, enrollment_id),
                )
                conn.execute(
                    """UPDATE imports SET rows_processed = rows_processed + 1,
                         rows_failed = rows_failed + ?, rows_held = rows_held + ?, last_progress_at = ? WHERE id = ?""",
                    (int(outcome_status in ("failed", "refused")), int(outcome_status == "held"), now(), import_id),
                )
            self._publish_progress(import_id, loop.time())
        with Tx(conn):
            imp = conn.execute("SELECT * FROM imports WHERE id = ?", (import_id,)).fetchone()
            if imp["state"] != "running":
                return
            state = "completed_with_errors" if imp["rows_failed"] else "completed"
            conn.execute("UPDATE imports SET state = ?, finished_at = ? WHERE id = ?", (state, now(), import_id))
            self._release(import_id)
        self._parsed.pop(import_id, None)
        self._published.pop(import_id, None)
        self.cursors.pop(import_id, None)
        self._publish(import_id)
        self.events.publish("lock", imp["importer"], get_lock(conn, imp["importer"]))

    async def _unprocessed(self, import_id: int, parsed: ParsedFile, done: int):
        """The rows after the first `done`, read from the stored file one at a time; after a restart the
        rows already done are read past, yielding to the event loop now and then."""
        hint = self.cursors.get(import_id)
        start = hint if hint is not None and hint.row == done + 1 else None
        for record in records(StoredFile(self.conn, import_id), parsed, start):
            if record.row > done:
                yield record
            elif record.row % 1000 == 0:
                await asyncio.sleep(0)

    def _process_row(self, import_id: int, row: int, imp, fields: dict, course) -> tuple[str, str | None, int | None]:
        # A bug here must not stop the import: that would be a hang outside the documented trigger
        # set. The row's partial effects are undone, the row fails saying so, the file goes on.
        self.conn.execute("SAVEPOINT row")
        try:
            outcome = process_record(self.conn, imp, fields, course)
        except Exception:
            self.conn.execute("ROLLBACK TO row")
            self.conn.execute("RELEASE row")
            log.exception("import %s row %s: the reference LMS failed on this row", import_id, row)
            return "failed", "the reference LMS failed on this row (a bug in the sandbox; its log has the details)", None
        if outcome.status == "failed":
            self.conn.execute("ROLLBACK TO row")  # a failed row changes nothing (not even a course shell)
        self.conn.execute("RELEASE row")
        return outcome.status, outcome.message, outcome.enrollment_id

    def _stall(self, import_id: int, where: str) -> None:
        self._publish(import_id)
        self.stalled[import_id] = where
        log.info("import %s stopped making progress at %s", import_id, where)

    def _release(self, import_id: int) -> None:
        self.conn.execute("UPDATE locks SET import_id = NULL, held_by = NULL, since = NULL WHERE import_id = ?", (import_id,))
