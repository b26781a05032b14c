"""The importer in-process, on a real SQLite database: a row the sandbox itself fails on must not
become a hang outside the documented trigger set (docs/sandbox.md)."""

from __future__ import annotations

import asyncio

from helpers.sandbox import dataset

from importconsole.sandbox import db as dbm
from importconsole.sandbox import processor
from importconsole.sandbox.dataset import seed
from importconsole.sandbox.events import Broadcaster
from importconsole.sandbox.importfile import parse


async def test_a_row_the_sandbox_fails_on_is_a_failed_row_and_the_import_ends(tmp_path, monkeypatch):
    conn = dbm.connect(tmp_path / "lms.sqlite3")
    dbm.create_schema(conn)
    seed(conn, dataset())
    data = b"external_user_id,complete\nu1,1\nu2,1\nu3,1\n"
    with dbm.Tx(conn):
        conn.execute("""INSERT INTO imports (id, importer, course_external_id, file_name, file_sha256, file_size,
                        payload_sha256, state, rows_total, created_by, created_at)
                        VALUES (1, 'course', 'C-FIXED', 'a.csv', 'x', ?, 'y', 'queued', 3, 'admin', ?)""",
                     (len(data), dbm.now()))
        conn.execute("INSERT INTO import_files (import_id, file_bytes) VALUES (1, ?)", (data,))
        conn.execute("UPDATE locks SET import_id = 1, held_by = 'admin', since = ? WHERE importer = 'course'", (dbm.now(),))
    real = processor.process_record

    def broken_on_u2(conn_, imp, fields, course=None):
        outcome = real(conn_, imp, fields, course)  # writes the enrollment first: it must be undone
        if fields["external_user_id"] == "u2":
            raise RuntimeError("a bug")
        return outcome

    monkeypatch.setattr(processor, "process_record", broken_on_u2)
    importer = processor.Importer(conn, Broadcaster(), rows_per_second=None)
    importer.remember(1, parse(data))
    importer.start(1)
    await asyncio.wait_for(asyncio.gather(*importer.tasks.values()), 5)
    imp = dbm.get_import(conn, 1)
    assert (imp["state"], imp["rows_processed"], imp["rows_failed"]) == ("completed_with_errors", 3, 1)
    rows = conn.execute("SELECT row, status, message FROM import_rows ORDER BY row").fetchall()
    assert [(r["row"], r["status"]) for r in rows] == [(1, "imported"), (2, "failed"), (3, "imported")]
    assert "bug in the sandbox" in rows[1]["message"]
    enrolled = [r[0] for r in conn.execute(
        "SELECT u.external_user_id FROM enrollments e JOIN users u ON u.id = e.user_id ORDER BY u.id")]
    assert enrolled == ["u1", "u3"]
    assert not dbm.get_lock(conn, "course")["locked"]
    conn.close()
