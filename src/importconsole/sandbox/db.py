"""The reference LMS's SQLite database: schema, connection, and the JSON shapes of docs/api.md.

Tests read this database directly (docs/sandbox.md lists the tables), so names here are part of
the project's test contract.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, UTC
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS credit_types (
  machine_name TEXT PRIMARY KEY,
  label TEXT NOT NULL,
  reports_to TEXT NOT NULL DEFAULT '[]'          -- JSON list: pars, cpe_monitor, ams
);
CREATE TABLE IF NOT EXISTS courses (
  id INTEGER PRIMARY KEY,
  external_id TEXT NOT NULL UNIQUE,
  title TEXT NOT NULL,
  has_certificate INTEGER NOT NULL DEFAULT 1,
  required_objects INTEGER NOT NULL DEFAULT 0,
  is_shell INTEGER NOT NULL DEFAULT 0,           -- made by the global importer (behaviour 2)
  created_by_import_id INTEGER
);
CREATE TABLE IF NOT EXISTS course_credits (
  course_id INTEGER NOT NULL REFERENCES courses(id),
  credit_type TEXT NOT NULL REFERENCES credit_types(machine_name),
  min REAL NOT NULL DEFAULT 0,
  max REAL NOT NULL,
  increments REAL NOT NULL DEFAULT 0.25,
  enable_variable_credit INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (course_id, credit_type)
);
CREATE TABLE IF NOT EXISTS users (
  id INTEGER PRIMARY KEY,
  external_user_id TEXT UNIQUE,
  email TEXT,
  email_lower TEXT UNIQUE,
  first_name TEXT NOT NULL DEFAULT '',
  last_name TEXT NOT NULL DEFAULT '',
  created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS enrollments (
  id INTEGER PRIMARY KEY,
  user_id INTEGER NOT NULL REFERENCES users(id),
  course_id INTEGER NOT NULL REFERENCES courses(id),
  status TEXT NOT NULL CHECK (status IN ('incomplete', 'complete')),
  date_completed TEXT,
  enrollment_start TEXT,
  enrollment_end TEXT,
  participant_category TEXT,
  importer TEXT,                                 -- course | global | NULL (made in the LMS)
  import_id INTEGER,
  created_at TEXT NOT NULL,
  UNIQUE (user_id, course_id)
);
CREATE TABLE IF NOT EXISTS credit_records (
  id INTEGER PRIMARY KEY,
  enrollment_id INTEGER NOT NULL REFERENCES enrollments(id),
  user_id INTEGER NOT NULL,
  course_id INTEGER NOT NULL,
  credit_type TEXT NOT NULL,
  amount REAL NOT NULL,
  source TEXT NOT NULL CHECK (source IN ('import', 'awarded')),
  importer TEXT,
  import_id INTEGER,
  credit_expiration TEXT,
  created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS credit_records_enrollment ON credit_records(enrollment_id);
CREATE TABLE IF NOT EXISTS reporting_queue (
  id INTEGER PRIMARY KEY,
  entity TEXT NOT NULL CHECK (entity IN ('pars', 'cpe_monitor', 'ams')),
  credit_record_id INTEGER NOT NULL,
  user_id INTEGER NOT NULL,
  course_id INTEGER NOT NULL,
  credit_type TEXT NOT NULL,
  amount REAL NOT NULL,
  queued_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
  token TEXT PRIMARY KEY,
  username TEXT NOT NULL,
  role TEXT NOT NULL CHECK (role IN ('site_admin', 'course_admin')),
  display_name TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS imports (
  id INTEGER PRIMARY KEY,
  importer TEXT NOT NULL CHECK (importer IN ('course', 'global')),
  course_external_id TEXT,
  file_name TEXT NOT NULL,
  file_sha256 TEXT NOT NULL,
  file_size INTEGER NOT NULL,
  payload_sha256 TEXT NOT NULL,                  -- sha256 of file sha + importer + course
  idempotency_key TEXT UNIQUE,
  state TEXT NOT NULL,
  rows_total INTEGER NOT NULL DEFAULT 0,
  rows_processed INTEGER NOT NULL DEFAULT 0,
  rows_failed INTEGER NOT NULL DEFAULT 0,
  rows_held INTEGER NOT NULL DEFAULT 0,
  created_by TEXT NOT NULL,
  created_at TEXT NOT NULL,
  started_at TEXT,
  last_progress_at TEXT,
  finished_at TEXT,
  error TEXT
);
-- The file lives apart from its import: updating the counters per row must not rewrite the blob.
CREATE TABLE IF NOT EXISTS import_files (
  import_id INTEGER PRIMARY KEY REFERENCES imports(id),
  file_bytes BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS import_rows (
  import_id INTEGER NOT NULL REFERENCES imports(id),
  row INTEGER NOT NULL,
  line INTEGER NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('imported', 'held', 'refused', 'failed')),
  message TEXT,
  enrollment_id INTEGER,
  PRIMARY KEY (import_id, row)
);
CREATE TABLE IF NOT EXISTS held_rows (
  id INTEGER PRIMARY KEY,
  import_id INTEGER NOT NULL,
  row INTEGER NOT NULL,
  importer TEXT NOT NULL,
  course_id INTEGER NOT NULL,
  external_user_id TEXT,
  email_lower TEXT,
  record TEXT NOT NULL,                          -- JSON: the row's cells by column name
  held_at TEXT NOT NULL,
  assigned_user_id INTEGER,
  assigned_at TEXT,
  enrollment_id INTEGER
);
CREATE TABLE IF NOT EXISTS locks (
  importer TEXT PRIMARY KEY CHECK (importer IN ('course', 'global')),
  import_id INTEGER,
  held_by TEXT,
  since TEXT
);
INSERT OR IGNORE INTO locks (importer) VALUES ('course'), ('global');
"""


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def connect(path: Path | str) -> sqlite3.Connection:
    # isolation_level=None: we open every transaction ourselves (one per processed row).
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=10)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    # NORMAL in WAL mode survives a process crash; only power loss can drop the last commits.
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA wal_autocheckpoint=20000")
    return conn


def create_schema(conn: sqlite3.Connection) -> None:
    conn.executescript(SCHEMA)


class Tx:
    """`with Tx(conn):` one BEGIN IMMEDIATE ... COMMIT, rolled back on any exception."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.conn.execute("COMMIT")
        else:
            self.conn.execute("ROLLBACK")


# ---- JSON shapes (docs/api.md "Objects") ----

def num(value) -> float:
    return round(float(value), 2)


def credit_type_json(row) -> dict:
    return {"machine_name": row["machine_name"], "label": row["label"], "reports_to": json.loads(row["reports_to"])}


def course_json(conn: sqlite3.Connection, row) -> dict:
    credits = conn.execute(
        "SELECT * FROM course_credits WHERE course_id = ? ORDER BY credit_type", (row["id"],)
    ).fetchall()
    return {
        "id": row["id"],
        "external_id": row["external_id"],
        "title": row["title"],
        "has_certificate": bool(row["has_certificate"]),
        "required_objects": row["required_objects"],
        "is_shell": bool(row["is_shell"]),
        "credits": [
            {
                "credit_type": c["credit_type"],
                "min": num(c["min"]),
                "max": num(c["max"]),
                "increments": num(c["increments"]),
                "enable_variable_credit": bool(c["enable_variable_credit"]),
            }
            for c in credits
        ],
    }


def user_json(row) -> dict:
    return {
        "id": row["id"],
        "external_user_id": row["external_user_id"],
        "email": row["email"],
        "first_name": row["first_name"],
        "last_name": row["last_name"],
    }


def credit_record_json(row) -> dict:
    return {
        "id": row["id"],
        "enrollment_id": row["enrollment_id"],
        "user_id": row["user_id"],
        "course_id": row["course_id"],
        "credit_type": row["credit_type"],
        "amount": num(row["amount"]),
        "source": row["source"],
        "importer": row["importer"],
        "import_id": row["import_id"],
        "created_at": row["created_at"],
        # Only GET /credit-records carries these (additive; see docs/api.md).
        **{k: row[k] for k in ("course_external_id", "external_user_id", "email") if k in row.keys()},
    }


def enrollment_json(conn: sqlite3.Connection, enrollment_id: int) -> dict:
    row = conn.execute(
        """SELECT e.*, c.external_id AS course_external_id, u.external_user_id, u.email
           FROM enrollments e JOIN courses c ON c.id = e.course_id JOIN users u ON u.id = e.user_id
           WHERE e.id = ?""",
        (enrollment_id,),
    ).fetchone()
    credits = conn.execute("SELECT * FROM credit_records WHERE enrollment_id = ? ORDER BY id", (enrollment_id,))
    return {
        "id": row["id"],
        "user_id": row["user_id"],
        "course_id": row["course_id"],
        "course_external_id": row["course_external_id"],
        "external_user_id": row["external_user_id"],
        "email": row["email"],
        "status": row["status"],
        "date_completed": row["date_completed"],
        "enrollment_start": row["enrollment_start"],
        "importer": row["importer"],
        "import_id": row["import_id"],
        "credits": [credit_record_json(c) for c in credits],
    }


IMPORT_COLUMNS = (
    "id, importer, course_external_id, file_name, file_sha256, file_size, idempotency_key, state, "
    "rows_total, rows_processed, rows_failed, rows_held, created_by, created_at, started_at, "
    "last_progress_at, finished_at, error"
)


def import_json(row) -> dict:
    return {key: row[key] for key in IMPORT_COLUMNS.split(", ")}


STORE_CHUNK = 1 << 20


def store_file(conn: sqlite3.Connection, import_id: int, fh, size: int) -> None:
    """Copy `size` bytes of the open file `fh` into import_files, a chunk at a time (inside the caller's Tx)."""
    conn.execute("INSERT INTO import_files (import_id, file_bytes) VALUES (?, zeroblob(?))", (import_id, size))
    if size == 0:
        return
    fh.seek(0)
    with conn.blobopen("import_files", "file_bytes", import_id) as blob:
        written = 0
        while written < size and (chunk := fh.read(min(STORE_CHUNK, size - written))):
            blob.write(chunk)
            written += len(chunk)


class StoredFile:
    """A submitted file in import_files, read like an open binary file. Each read opens the blob
    briefly, so no read stays open across the importer's transactions (nor pins the WAL)."""

    def __init__(self, conn: sqlite3.Connection, import_id: int):
        self.conn, self.import_id, self.pos = conn, import_id, 0
        row = conn.execute("SELECT length(file_bytes) FROM import_files WHERE import_id = ?", (import_id,)).fetchone()
        self.size = row[0] if row else 0

    def seek(self, pos: int, whence: int = 0) -> int:
        self.pos = max(0, pos if whence == 0 else self.pos + pos if whence == 1 else self.size + pos)
        return self.pos

    def tell(self) -> int:
        return self.pos

    def read(self, n: int = -1) -> bytes:
        n = self.size - self.pos if n is None or n < 0 else min(n, self.size - self.pos)
        if n <= 0:
            return b""
        with self.conn.blobopen("import_files", "file_bytes", self.import_id, readonly=True) as blob:
            blob.seek(self.pos)
            data = blob.read(n)
        self.pos += len(data)
        return data


def get_import(conn: sqlite3.Connection, import_id: int) -> dict | None:
    row = conn.execute(f"SELECT {IMPORT_COLUMNS} FROM imports WHERE id = ?", (import_id,)).fetchone()
    return import_json(row) if row else None


def lock_json(row) -> dict:
    return {
        "importer": row["importer"],
        "locked": row["import_id"] is not None,
        "import_id": row["import_id"],
        "held_by": row["held_by"],
        "since": row["since"],
    }


def get_lock(conn: sqlite3.Connection, importer: str) -> dict:
    return lock_json(conn.execute("SELECT * FROM locks WHERE importer = ?", (importer,)).fetchone())
