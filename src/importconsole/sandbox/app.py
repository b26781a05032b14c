"""The reference LMS's HTTP API (docs/api.md), as a Starlette app over one SQLite connection.

All database work runs on the event loop thread in short synchronous transactions, so an HTTP
handler and the importer never interleave inside a transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import json
import re
import sqlite3
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from importconsole.sandbox import db as dbm
from importconsole.sandbox.db import Tx, now
from importconsole.sandbox.events import Broadcaster, sse
from importconsole.sandbox.faults import FaultSwitch, parse_fault
from importconsole.sandbox.importfile import CHUNK, ParsedFile, find_row, inspect
from importconsole.sandbox.processor import Importer
from importconsole.sandbox.rules import assign_held_rows

API = "/api/v1"
MAX_KEYS = 1000
MAX_KEY_LENGTH = 200             # Idempotency-Key
MAX_NAME_BYTES = 255             # a stored file name, like a file system's
DEFAULT_MAX_UPLOAD = 256 << 20   # importconsole sandbox --max-upload
FORM_OVERHEAD = 64 << 10         # boundaries, part headers, importer and course around the file
MAX_LIMIT = 1000
IMPORTERS = ("course", "global")
STATES = ("queued", "running", "completed", "completed_with_errors", "failed", "unlocked")
KEEPALIVE_SECONDS = 10.0


class ApiError(Exception):
    def __init__(self, status: int, error: str, message: str, **extra):
        super().__init__(message)
        self.status, self.error, self.message, self.extra = status, error, message, extra

    def response(self) -> JSONResponse:
        return JSONResponse({"error": self.error, "message": self.message, **self.extra}, status_code=self.status)


class Sandbox:
    """Everything one running reference LMS holds."""

    def __init__(self, conn: sqlite3.Connection, db_path: Path, *, rows_per_second: float | None, faults: bool,
                 max_upload: int = DEFAULT_MAX_UPLOAD):
        self.conn = conn
        self.db_path = db_path
        self.max_upload = max_upload
        self.events = Broadcaster()
        self.importer = Importer(conn, self.events, rows_per_second)
        self.faults = faults
        self.in_flight: set[str] = set()  # Idempotency-Keys whose request is being handled


# ---- helpers ----

def _sandbox(request: Request) -> Sandbox:
    return request.app.state.sandbox


def _auth(request: Request, role: str | None = None):
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "unauthorized", "Sign in: send the API token as 'Authorization: Bearer <token>'.")
    user = _sandbox(request).conn.execute("SELECT * FROM tokens WHERE token = ?", (token.strip(),)).fetchone()
    if user is None:
        raise ApiError(401, "unauthorized", "The API token is not valid for this LMS; check the profile's token.")
    if role and user["role"] != role:
        raise ApiError(403, "forbidden", f"This needs a {role.replace('_', ' ')}; you are signed in as a "
                       f"{user['role'].replace('_', ' ')}.", role_needed=role)
    return user


MAX_INT = 2**62  # SQLite integers are 64-bit; larger numbers are input errors, not crashes
_ASCII_DIGITS = re.compile(r"[0-9]+")
_ASCII_INT = re.compile(r"[+-]?[0-9]{1,30}")


def _int_param(request: Request, name: str, default: int | None, *, lo: int = 0, hi: int = MAX_INT) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not _ASCII_INT.fullmatch(raw):  # int() also reads ' 1', '1_0' and non-ASCII digits
        raise ApiError(422, "invalid", f"{name} must be a whole number.", field=name)
    value = int(raw)
    if value < lo or value > hi:
        raise ApiError(422, "invalid", f"{name} must be between {lo} and {hi}.", field=name)
    return value


def _paging(request: Request) -> tuple[int, int]:
    return _int_param(request, "offset", 0), _int_param(request, "limit", 100, lo=1, hi=MAX_LIMIT)


def _page(items: list, offset: int, limit: int, total_more: bool) -> dict:
    return {"items": items, "next_offset": offset + limit if total_more else None}


def _paged_query(conn, sql: str, args: list, offset: int, limit: int, shape) -> dict:
    rows = conn.execute(f"{sql} LIMIT ? OFFSET ?", (*args, limit + 1, offset)).fetchall()
    return _page([shape(r) for r in rows[:limit]], offset, limit, len(rows) > limit)


async def _json_body(request: Request) -> dict:
    try:
        body = json.loads(await request.body() or b"null")
    except (ValueError, UnicodeDecodeError):
        raise ApiError(422, "invalid", "The request body must be JSON.", field="body") from None
    except RecursionError:
        raise ApiError(422, "invalid", "The request body is nested too deeply to read; send a flat JSON object as "
                       "docs/api.md describes.", field="body") from None
    if not isinstance(body, dict):
        raise ApiError(422, "invalid", "The request body must be a JSON object.", field="body")
    _refuse_lone_surrogates(body)
    return body


def _refuse_lone_surrogates(body: dict) -> None:
    """A JSON escape such as \\ud800 alone decodes to text that is not Unicode: SQLite and the answer cannot hold it."""
    todo: list = [body]
    while todo:  # a loop, not recursion: json.loads bounded the depth, this must not need more
        value = todo.pop()
        items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
        for key, item in items:
            for text in (key, item):
                if isinstance(text, str) and _SURROGATE.search(text):
                    raise ApiError(422, "invalid", "The request body holds a lone surrogate escape (such as \\ud800), "
                                   "which is not a character; send the text as UTF-8.", field="body")
            if isinstance(item, (dict, list)):
                todo.append(item)


_SURROGATE = re.compile("[\ud800-\udfff]")


def _str_list(body: dict, key: str) -> list[str]:
    value = body.get(key, [])
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ApiError(422, "invalid", f"{key} must be a list of strings.", field=key)
    return value


def _too_many(n: int) -> None:
    if n > MAX_KEYS:
        raise ApiError(413, "too_many_keys", f"{n} keys in one call; send at most {MAX_KEYS} and batch the rest.")


def _path_id(request: Request) -> int:
    raw = request.path_params["id"]
    if not _ASCII_DIGITS.fullmatch(raw) or len(raw) > 18:  # str.isdigit() also takes Arabic-Indic and superscript digits
        raise ApiError(404, "not_found", f"There is no {request.url.path.split('/')[3][:-1]} with id {raw[:40]!r}.")
    return int(raw)


def _import_row(conn, import_id: int):
    row = conn.execute("SELECT * FROM imports WHERE id = ?", (import_id,)).fetchone()
    if row is None:
        raise ApiError(404, "not_found", f"There is no import {import_id}.")
    return row


def _importer_param(request: Request) -> str:
    importer = request.path_params["importer"]
    if importer not in IMPORTERS:
        raise ApiError(404, "not_found", f"There is no importer {importer[:40]!r}; the importers are course and global.")
    return importer


# ---- endpoints ----

async def me(request: Request):
    user = _auth(request)
    return JSONResponse({"username": user["username"], "role": user["role"], "display_name": user["display_name"]})


async def credit_types(request: Request):
    _auth(request)
    rows = _sandbox(request).conn.execute("SELECT * FROM credit_types ORDER BY machine_name")
    return JSONResponse({"items": [dbm.credit_type_json(r) for r in rows]})


async def courses(request: Request):
    _auth(request)
    conn = _sandbox(request).conn
    offset, limit = _paging(request)
    sql, args = "SELECT * FROM courses", []
    ext = request.query_params.get("external_id")
    if ext:
        sql, args = sql + " WHERE external_id = ?", [ext]
    return JSONResponse(_paged_query(conn, sql + " ORDER BY id", args, offset, limit, lambda r: dbm.course_json(conn, r)))


async def course(request: Request):
    _auth(request)
    conn = _sandbox(request).conn
    course_id = _path_id(request)
    row = conn.execute("SELECT * FROM courses WHERE id = ?", (course_id,)).fetchone()
    if row is None:
        raise ApiError(404, "not_found", f"There is no course {course_id}.")
    return JSONResponse(dbm.course_json(conn, row))


async def courses_lookup(request: Request):
    _auth(request)
    body = await _json_body(request)
    ids = _str_list(body, "external_ids")
    _too_many(len(ids))
    conn = _sandbox(request).conn
    items, missing = [], []
    for ext in dict.fromkeys(ids):
        row = conn.execute("SELECT * FROM courses WHERE external_id = ?", (ext,)).fetchone()
        if row is None:
            missing.append(ext)
        else:
            items.append(dbm.course_json(conn, row))
    return JSONResponse({"items": items, "missing": missing})


async def users_lookup(request: Request):
    _auth(request)
    body = await _json_body(request)
    ext_ids, emails = _str_list(body, "external_user_ids"), _str_list(body, "emails")
    _too_many(len(ext_ids) + len(emails))
    conn = _sandbox(request).conn
    found: dict[int, dict] = {}
    missing_ids, missing_emails = [], []
    for ext in dict.fromkeys(ext_ids):
        row = conn.execute("SELECT * FROM users WHERE external_user_id = ?", (ext,)).fetchone()
        if row is None:
            missing_ids.append(ext)
        else:
            found[row["id"]] = dbm.user_json(row)
    for email in dict.fromkeys(emails):
        row = conn.execute("SELECT * FROM users WHERE email_lower = ?", (email.lower(),)).fetchone()
        if row is None:
            missing_emails.append(email)
        else:
            found[row["id"]] = dbm.user_json(row)
    return JSONResponse({"items": list(found.values()), "missing_external_user_ids": missing_ids,
                         "missing_emails": missing_emails})


async def create_user(request: Request):
    _auth(request, "site_admin")
    body = await _json_body(request)
    fields = {}
    for key in ("external_user_id", "email", "first_name", "last_name"):
        value = body.get(key)
        if value is not None and not isinstance(value, str):
            raise ApiError(422, "invalid", f"{key} must be a string.", field=key)
        fields[key] = (value or "").strip()
    if "\x00" in fields["email"]:  # no address holds one, and SQLite text would keep it
        raise ApiError(422, "invalid", "email must not contain a NUL character (U+0000); send the address without it.",
                       field="email")
    if not fields["external_user_id"] and not fields["email"]:
        raise ApiError(422, "invalid", "A user needs an external_user_id or an email.", field="external_user_id")
    sandbox = _sandbox(request)
    conn = sandbox.conn
    if fields["external_user_id"] and conn.execute(
            "SELECT 1 FROM users WHERE external_user_id = ?", (fields["external_user_id"],)).fetchone():
        raise ApiError(422, "invalid", f"A user with external_user_id {fields['external_user_id']!r} already exists.",
                       field="external_user_id")
    if fields["email"] and conn.execute("SELECT 1 FROM users WHERE email_lower = ?", (fields["email"].lower(),)).fetchone():
        raise ApiError(422, "invalid", f"A user with email {fields['email']!r} already exists.", field="email")
    with Tx(conn):
        cur = conn.execute(
            "INSERT INTO users (external_user_id, email, email_lower, first_name, last_name, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            (fields["external_user_id"] or None, fields["email"] or None, fields["email"].lower() or None,
             fields["first_name"], fields["last_name"], now()),
        )
        user = conn.execute("SELECT * FROM users WHERE id = ?", (cur.lastrowid,)).fetchone()
        assigned = assign_held_rows(conn, user)
    return JSONResponse({**dbm.user_json(user), "assigned_rows": assigned}, status_code=201)


async def enrollments_lookup(request: Request):
    _auth(request)
    body = await _json_body(request)
    keys = body.get("keys", [])
    if not isinstance(keys, list) or not all(isinstance(k, dict) for k in keys):
        raise ApiError(422, "invalid", "keys must be a list of objects.", field="keys")
    _too_many(len(keys))
    conn = _sandbox(request).conn
    items, seen = [], set()
    for key in keys:
        course_ext, ext_user, email = key.get("course_external_id"), key.get("external_user_id"), key.get("email")
        if not isinstance(course_ext, str) or not all(v is None or isinstance(v, str) for v in (ext_user, email)):
            raise ApiError(422, "invalid", "Each key needs course_external_id and external_user_id or email, as strings.",
                           field="keys")
        user = None
        if ext_user:
            user = conn.execute("SELECT id FROM users WHERE external_user_id = ?", (ext_user,)).fetchone()
        if user is None and email:
            user = conn.execute("SELECT id FROM users WHERE email_lower = ?", (email.lower(),)).fetchone()
        if user is None:
            continue
        row = conn.execute(
            "SELECT e.id FROM enrollments e JOIN courses c ON c.id = e.course_id WHERE e.user_id = ? AND c.external_id = ?",
            (user["id"], course_ext),
        ).fetchone()
        if row is not None and row["id"] not in seen:
            seen.add(row["id"])
            items.append(dbm.enrollment_json(conn, row["id"]))
    return JSONResponse({"items": items})


async def credit_records(request: Request):
    _auth(request)
    conn = _sandbox(request).conn
    offset, limit = _paging(request)
    where, args = [], []
    params = request.query_params
    if params.get("course_external_id"):
        where.append("c.external_id = ?")
        args.append(params["course_external_id"])
    if params.get("source"):
        if params["source"] not in ("import", "awarded"):
            raise ApiError(422, "invalid", "source must be import or awarded.", field="source")
        where.append("cr.source = ?")
        args.append(params["source"])
    if params.get("complete"):
        if params["complete"] not in ("true", "false"):
            raise ApiError(422, "invalid", "complete must be true or false.", field="complete")
        where.append("e.status = ?")
        args.append("complete" if params["complete"] == "true" else "incomplete")
    user_id = _int_param(request, "user_id", None)
    if user_id is not None:
        where.append("cr.user_id = ?")
        args.append(user_id)
    # Who and which course, so a client can write a completion row for the learner (credit-fix).
    sql = ("SELECT cr.*, c.external_id AS course_external_id, u.external_user_id, u.email "
           "FROM credit_records cr JOIN enrollments e ON e.id = cr.enrollment_id "
           "JOIN courses c ON c.id = cr.course_id JOIN users u ON u.id = cr.user_id")
    if where:
        sql += " WHERE " + " AND ".join(where)
    return JSONResponse(_paged_query(conn, sql + " ORDER BY cr.id", args, offset, limit, dbm.credit_record_json))


async def reporting_queue(request: Request):
    _auth(request)
    conn = _sandbox(request).conn
    offset, limit = _paging(request)
    where, args = [], []
    params = request.query_params
    if params.get("entity"):
        if params["entity"] not in ("pars", "cpe_monitor", "ams"):
            raise ApiError(422, "invalid", "entity must be pars, cpe_monitor or ams.", field="entity")
        where.append("q.entity = ?")
        args.append(params["entity"])
    if params.get("course_external_id"):
        where.append("c.external_id = ?")
        args.append(params["course_external_id"])
    user_id = _int_param(request, "user_id", None)
    if user_id is not None:
        where.append("q.user_id = ?")
        args.append(user_id)
    sql = "SELECT q.* FROM reporting_queue q JOIN courses c ON c.id = q.course_id"
    if where:
        sql += " WHERE " + " AND ".join(where)

    def shape(r):
        return {"id": r["id"], "entity": r["entity"], "credit_record_id": r["credit_record_id"], "user_id": r["user_id"],
                "course_id": r["course_id"], "credit_type": r["credit_type"], "amount": dbm.num(r["amount"]),
                "queued_at": r["queued_at"]}

    return JSONResponse(_paged_query(conn, sql + " ORDER BY q.id", args, offset, limit, shape))


async def pars_report(request: Request):
    _auth(request)
    conn = _sandbox(request).conn
    sql = """SELECT cr.user_id, u.external_user_id, u.email, c.external_id AS course_external_id, cr.credit_type,
                    cr.amount, e.participant_category, e.enrollment_start, e.date_completed
             FROM credit_records cr JOIN enrollments e ON e.id = cr.enrollment_id JOIN users u ON u.id = cr.user_id
             JOIN courses c ON c.id = cr.course_id JOIN credit_types ct ON ct.machine_name = cr.credit_type
             WHERE EXISTS (SELECT 1 FROM json_each(ct.reports_to) WHERE value = 'pars')
               AND e.status = 'complete'
               AND (cr.importer IS NULL OR cr.importer = 'course')"""  # behaviour 7
    args: list = []
    if request.query_params.get("course_external_id"):
        sql += " AND c.external_id = ?"
        args.append(request.query_params["course_external_id"])
    rows = conn.execute(sql + " ORDER BY cr.id", args).fetchall()
    items = [{**dict(r), "amount": dbm.num(r["amount"])} for r in rows]
    return JSONResponse({"items": items})


async def imports_list(request: Request):
    _auth(request)
    conn = _sandbox(request).conn
    offset, limit = _paging(request)
    where, args = [], []
    for key in ("state", "idempotency_key", "file_sha256"):
        value = request.query_params.get(key)
        if value:
            if key == "state" and value not in STATES:
                raise ApiError(422, "invalid", f"state must be one of {', '.join(STATES)}.", field="state")
            where.append(f"{key} = ?")
            args.append(value)
    sql = f"SELECT {dbm.IMPORT_COLUMNS} FROM imports"
    if where:
        sql += " WHERE " + " AND ".join(where)
    # Stamped before the read, so no item's last_progress_at looks older than it is (the
    # console measures stall ages against this, never against its own wall clock).
    server_time = dbm.now()
    page = _paged_query(conn, sql + " ORDER BY id DESC", args, offset, limit, dbm.import_json)
    return JSONResponse({**page, "server_time": server_time})


async def create_import(request: Request):
    user = _auth(request)
    sandbox = _sandbox(request)
    key = _idempotency_key(request)
    if key is not None:
        if key in sandbox.in_flight:
            raise ApiError(409, "idempotency_in_flight",
                           "A request with this Idempotency-Key is still being handled; retry the same key shortly.")
        sandbox.in_flight.add(key)
    try:
        return await _create_import(request, sandbox, user, key)
    finally:
        if key is not None:
            sandbox.in_flight.discard(key)


def _idempotency_key(request: Request) -> str | None:
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    key = key.strip()
    # An Idempotency-Key is a structured-field string: printable ASCII, nothing else.
    if not key or len(key) > MAX_KEY_LENGTH or not all(" " <= ch <= "~" for ch in key):
        raise ApiError(400, "invalid_header", f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable ASCII characters "
                       "(letters, digits, punctuation; no control characters); send a new key such as a UUID.",
                       field="Idempotency-Key")
    return key


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "file_too_large", f"The import file is larger than this LMS accepts: the limit is "
                    f"{_size(limit)} ({limit:,} bytes). Nothing was imported; split the file into smaller files "
                    "and submit each.", limit_bytes=limit)


def _size(n: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.4g} {unit}"
    return f"{n} bytes"


class _UploadTooLarge(Exception):
    pass


def _capped(receive, limit: int):
    """The request's receive, refusing more body than `limit` bytes (the file plus the form around it)."""
    received = 0

    async def capped_receive():
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise _UploadTooLarge()
        return message

    return capped_receive


async def _read_form(request: Request, limit: int):
    """The multipart form, the file spooled to a temporary file on disk (never held in memory)."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit + FORM_OVERHEAD:
        raise _too_large(limit)  # refused before a byte of it is read
    capped = Request(request.scope, _capped(request.receive, limit + FORM_OVERHEAD))
    try:
        return await capped.form(max_files=2, max_fields=10)
    except _UploadTooLarge:
        raise _too_large(limit) from None
    except Exception:  # malformed multipart: python-multipart raises several kinds
        raise ApiError(422, "invalid", "Send the import as multipart/form-data with fields file, importer and course.",
                       field="file") from None


def base_name(raw: str | None) -> str:
    """The uploaded file's name as the LMS keeps it: a base name, never a path (issue 12, item 2)."""
    name = (raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    if name.strip(".") == "":
        return "upload.csv"
    if len(name.encode("utf-8", "replace")) <= MAX_NAME_BYTES:
        return name
    stem, dot, ext = name.rpartition(".")
    suffix = f".{ext}" if dot and stem and len(ext.encode("utf-8", "replace")) <= 16 else ""
    head = (stem if suffix else name).encode("utf-8", "replace")[: MAX_NAME_BYTES - len(suffix.encode("utf-8", "replace"))]
    return head.decode("utf-8", "ignore") + suffix


def _measure(fh) -> tuple[ParsedFile, str, int]:
    """(the file as the LMS reads it, its sha256, its size): two passes over the spooled file."""
    fh.seek(0)
    digest, size = hashlib.sha256(), 0
    while chunk := fh.read(CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return inspect(fh), digest.hexdigest(), size


async def _create_import(request: Request, sandbox: Sandbox, user, key: str | None):
    form = await _read_form(request, sandbox.max_upload)
    try:
        delay = request.scope.get("sandbox.delay")
        if delay:
            await asyncio.sleep(delay)
        importer = form.get("importer")
        if importer not in IMPORTERS:
            raise ApiError(422, "invalid", "importer must be course or global.", field="importer")
        upload = form.get("file")
        if upload is None:
            raise ApiError(422, "invalid", "The import file is missing (multipart field 'file').", field="file")
        if isinstance(upload, str):
            fh, file_name = io.BytesIO(upload.encode("utf-8")), "upload.csv"
        else:
            fh, file_name = upload.file, base_name(upload.filename)
        course_ext = form.get("course")
        course_ext = course_ext.strip() or None if isinstance(course_ext, str) else None
        if importer == "course" and course_ext is None:
            raise ApiError(422, "invalid", "The course-level importer needs the course's external id (field 'course').",
                           field="course")
        if importer == "global":
            if user["role"] != "site_admin":
                raise ApiError(403, "forbidden", "The global course report importer is for site admins.",
                               role_needed="site_admin")
            course_ext = None
        # Reading the file may take a while for a big one: off the event loop, and BEFORE the checks
        # below, which must run without an await between them (lock check, then insert).
        parsed, file_sha, size = await asyncio.to_thread(_measure, fh)
        if size > sandbox.max_upload:
            raise _too_large(sandbox.max_upload)
        return _insert_import(sandbox, user, key, importer, course_ext, file_name, fh, parsed, file_sha, size)
    finally:
        await form.close()  # the spooled file is deleted


def _insert_import(sandbox: Sandbox, user, key: str | None, importer: str, course_ext: str | None, file_name: str,
                   fh, parsed: ParsedFile, file_sha: str, size: int) -> JSONResponse:
    conn = sandbox.conn
    payload = hashlib.sha256(f"{file_sha}\n{importer}\n{course_ext or ''}".encode()).hexdigest()
    if key is not None:
        existing = conn.execute("SELECT * FROM imports WHERE idempotency_key = ?", (key,)).fetchone()
        if existing is not None:
            if existing["payload_sha256"] != payload:
                raise ApiError(422, "idempotency_mismatch",
                               f"This Idempotency-Key was used for import {existing['id']} with another file, importer or "
                               "course; this is a bug in the client: use a new key for a new import.",
                               import_id=existing["id"])
            return JSONResponse(dbm.import_json(existing), status_code=200)
    if importer == "course" and conn.execute("SELECT 1 FROM courses WHERE external_id = ?", (course_ext,)).fetchone() is None:
        raise ApiError(404, "not_found", f"There is no course with external id {course_ext[:128]!r}.")
    lock = dbm.get_lock(conn, importer)
    if lock["locked"]:
        raise ApiError(423, "importer_locked",
                       f"The {importer} importer is locked by import {lock['import_id']} ({lock['held_by']}, since "
                       f"{lock['since']}); wait for it to finish or unlock it.", lock=lock)
    stamp = now()
    with Tx(conn):
        cur = conn.execute(
            """INSERT INTO imports (importer, course_external_id, file_name, file_sha256, file_size,
                                    payload_sha256, idempotency_key, state, rows_total, created_by, created_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?)""",
            (importer, course_ext, file_name, file_sha, size, payload, key, parsed.rows_total, user["username"], stamp),
        )
        import_id = cur.lastrowid
        dbm.store_file(conn, import_id, fh, size)
        conn.execute("UPDATE locks SET import_id = ?, held_by = ?, since = ? WHERE importer = ?",
                     (import_id, user["username"], stamp, importer))
    sandbox.importer.remember(import_id, parsed)
    imp = dbm.get_import(conn, import_id)
    sandbox.events.publish("import", import_id, imp)
    sandbox.events.publish("lock", importer, dbm.get_lock(conn, importer))
    sandbox.importer.start(import_id)
    return JSONResponse(imp, status_code=201)


async def get_import(request: Request):
    _auth(request)
    conn = _sandbox(request).conn
    return JSONResponse(dbm.import_json(_import_row(conn, _path_id(request))))


async def import_rows(request: Request):
    _auth(request)
    conn = _sandbox(request).conn
    import_id = _import_row(conn, _path_id(request))["id"]
    offset, limit = _paging(request)
    sql, args = "SELECT * FROM import_rows WHERE import_id = ?", [import_id]
    status = request.query_params.get("status")
    if status:
        if status not in ("imported", "held", "refused", "failed"):
            raise ApiError(422, "invalid", "status must be imported, held, refused or failed.", field="status")
        sql += " AND status = ?"
        args.append(status)

    def shape(r):
        return {"row": r["row"], "line": r["line"], "status": r["status"], "message": r["message"],
                "enrollment_id": r["enrollment_id"]}

    return JSONResponse(_paged_query(conn, sql + " ORDER BY row", args, offset, limit, shape))


async def import_remaining(request: Request):
    _auth(request)
    sandbox = _sandbox(request)
    imp = _import_row(sandbox.conn, _path_id(request))
    parsed = sandbox.importer.parsed(imp["id"])
    size, done = imp["file_size"], imp["rows_processed"]
    if parsed.error:  # never read: all of it is unprocessed
        parts, first = [(0, size)], 1
    else:
        record = None
        if done < imp["rows_total"]:
            hint = sandbox.importer.cursors.get(imp["id"])
            record = await asyncio.to_thread(_find_row, sandbox.db_path, imp["id"], parsed, done + 1, hint)
        if record is not None:
            parts, first = [(0, parsed.header_end), (record.start, size)], record.row
        else:
            parts, first = [(0, parsed.header_end)], done + 1
    return _stored_file_response(sandbox.conn, imp["id"], parts, "text/csv", {"X-First-Row": str(first)})


def _find_row(db_path: Path, import_id: int, parsed: ParsedFile, row: int, hint):
    """Reads the stored file on its own connection: a thread must not share the event loop's."""
    conn = dbm.connect(db_path)
    try:
        return find_row(dbm.StoredFile(conn, import_id), parsed, row, hint)
    finally:
        conn.close()


def _stored_file_response(conn, import_id: int, parts: list[tuple[int, int]], media_type: str, headers: dict):
    """Byte ranges of the stored file, streamed a chunk at a time (a 100 MB file is never one bytes object)."""
    stored = dbm.StoredFile(conn, import_id)

    async def body():
        for start, end in parts:
            stored.seek(start)
            while start < end:
                chunk = stored.read(min(CHUNK, end - start))
                if not chunk:
                    return
                start += len(chunk)
                yield chunk
                await asyncio.sleep(0)

    length = sum(max(0, end - start) for start, end in parts)
    return StreamingResponse(body(), media_type=media_type, headers={**headers, "Content-Length": str(length)})


async def import_file(request: Request):
    _auth(request)
    conn = _sandbox(request).conn
    imp = _import_row(conn, _path_id(request))
    return _stored_file_response(conn, imp["id"], [(0, imp["file_size"])], "application/octet-stream",
                                 {"Content-Disposition": f'attachment; filename="import-{imp["id"]}.csv"'})


async def events(request: Request):
    _auth(request)
    sandbox = _sandbox(request)
    conn = sandbox.conn
    sub = sandbox.events.subscribe()
    # The snapshot is taken after subscribing, so nothing that changes in between is missed.
    snapshot = [sse("import", dbm.import_json(r)) for r in
                conn.execute(f"SELECT {dbm.IMPORT_COLUMNS} FROM imports WHERE state IN ('queued', 'running') ORDER BY id")]
    snapshot += [sse("lock", dbm.get_lock(conn, importer)) for importer in IMPORTERS]

    stopping: asyncio.Event = request.app.state.stopping
    loop = asyncio.get_running_loop()

    async def stream():
        try:
            yield "".join(snapshot)
            quiet_since = loop.time()
            # Wake twice a second to notice a server stop: the stream ends cleanly instead of being cut.
            while not stopping.is_set():
                try:
                    await asyncio.wait_for(sub.ready.wait(), 0.5)
                except TimeoutError:
                    if loop.time() - quiet_since >= KEEPALIVE_SECONDS:
                        quiet_since = loop.time()
                        yield ": keepalive\n\n"
                    continue
                quiet_since = loop.time()
                yield "".join(sse(kind, data) for kind, data in sub.drain())
        finally:
            sandbox.events.unsubscribe(sub)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def locks(request: Request):
    _auth(request)
    conn = _sandbox(request).conn
    return JSONResponse({"items": [dbm.get_lock(conn, importer) for importer in IMPORTERS]})


async def lock(request: Request):
    _auth(request)
    return JSONResponse(dbm.get_lock(_sandbox(request).conn, _importer_param(request)))


async def unlock(request: Request):
    _auth(request, "site_admin")
    importer = _importer_param(request)
    body = await _json_body(request)
    import_id = body.get("import_id")
    if not isinstance(import_id, int) or isinstance(import_id, bool):
        raise ApiError(422, "invalid", "Name the import you expect to hold the lock: {\"import_id\": <id>}.",
                       field="import_id")
    sandbox = _sandbox(request)
    conn = sandbox.conn
    current = dbm.get_lock(conn, importer)
    if current["import_id"] != import_id:
        holder = f"import {current['import_id']} holds it" if current["locked"] else "it is not locked"
        raise ApiError(409, "lock_mismatch", f"Import {import_id} does not hold the {importer} importer's lock: {holder}. "
                       "Nothing was unlocked.", lock=current)
    stamp = now()
    with Tx(conn):  # compare-and-unlock: no await between the check above and this commit
        conn.execute("UPDATE imports SET state = 'unlocked', finished_at = ? WHERE id = ?", (stamp, import_id))
        conn.execute("UPDATE locks SET import_id = NULL, held_by = NULL, since = NULL WHERE importer = ?", (importer,))
    sandbox.importer.forget(import_id)
    imp, new_lock = dbm.get_import(conn, import_id), dbm.get_lock(conn, importer)
    sandbox.events.publish("import", import_id, imp)
    sandbox.events.publish("lock", importer, new_lock)
    return JSONResponse({"lock": new_lock, "import": imp})


async def openapi(request: Request):
    from importconsole.sandbox.openapi import openapi_document

    return JSONResponse(openapi_document())


async def faults_set(request: Request):
    _auth(request)  # test-only, yet never open to anyone who can reach the port
    body = await _json_body(request)
    try:
        fault = parse_fault(body)
    except ValueError as exc:
        raise ApiError(422, "invalid", str(exc), field="kind") from None
    request.app.state.fault_switch.faults.append(fault)
    return JSONResponse({"ok": True, "faults": len(request.app.state.fault_switch.faults)})


async def faults_clear(request: Request):
    _auth(request)
    request.app.state.fault_switch.faults.clear()
    return JSONResponse({"ok": True, "faults": 0})


# ---- the app ----

async def _api_error(request: Request, exc: ApiError):
    return exc.response()


async def _http_error(request: Request, exc: HTTPException):
    code = {401: "unauthorized", 403: "forbidden", 404: "not_found"}.get(exc.status_code, "invalid")
    message = "There is no such endpoint; see /api/v1/openapi.json." if exc.status_code == 404 else str(exc.detail)
    return JSONResponse({"error": code, "message": message}, status_code=exc.status_code, headers=exc.headers)


async def _server_error(request: Request, exc: Exception):
    # A bug in the sandbox; the traceback goes to the server's stderr, never into the answer.
    return JSONResponse({"error": "server_error", "message": "The reference LMS failed on this request (a bug)."},
                        status_code=500)


def routes(faults: bool) -> list[Route]:
    table = [
        Route(f"{API}/me", me),
        Route(f"{API}/credit-types", credit_types),
        Route(f"{API}/courses", courses),
        Route(f"{API}/courses/lookup", courses_lookup, methods=["POST"]),
        Route(f"{API}/courses/{{id}}", course),
        Route(f"{API}/users", create_user, methods=["POST"]),
        Route(f"{API}/users/lookup", users_lookup, methods=["POST"]),
        Route(f"{API}/enrollments/lookup", enrollments_lookup, methods=["POST"]),
        Route(f"{API}/credit-records", credit_records),
        Route(f"{API}/reporting-queue", reporting_queue),
        Route(f"{API}/reports/pars", pars_report),
        Route(f"{API}/imports", imports_list, methods=["GET"]),
        Route(f"{API}/imports", create_import, methods=["POST"]),
        Route(f"{API}/imports/{{id}}", get_import),
        Route(f"{API}/imports/{{id}}/rows", import_rows),
        Route(f"{API}/imports/{{id}}/remaining", import_remaining),
        Route(f"{API}/imports/{{id}}/file", import_file),
        Route(f"{API}/events", events),
        Route(f"{API}/locks", locks),
        Route(f"{API}/locks/{{importer}}", lock),
        Route(f"{API}/locks/{{importer}}/unlock", unlock, methods=["POST"]),
        Route(f"{API}/openapi.json", openapi),
    ]
    if faults:
        table += [Route(f"{API}/_faults", faults_set, methods=["POST"]),
                  Route(f"{API}/_faults", faults_clear, methods=["DELETE"])]
    return table


def create_app(db_path: Path, *, rows_per_second: float | None = None, faults: bool = False,
               max_upload: int = DEFAULT_MAX_UPLOAD):
    """The ASGI app. The database must already hold the schema and a dataset (server.prepare_database)."""

    @contextlib.asynccontextmanager
    async def lifespan(app):
        conn = dbm.connect(db_path)
        dbm.create_schema(conn)
        app.state.sandbox = Sandbox(conn, db_path, rows_per_second=rows_per_second, faults=faults, max_upload=max_upload)
        app.state.sandbox.importer.resume_all()
        try:
            yield
        finally:
            await app.state.sandbox.importer.stop()
            conn.close()

    app = Starlette(routes=routes(faults), lifespan=lifespan,
                    exception_handlers={ApiError: _api_error, HTTPException: _http_error, Exception: _server_error})
    app.state.stopping = asyncio.Event()  # set by the server on Ctrl-C/SIGTERM: event streams end
    if not faults:
        return app
    switch = FaultSwitch(app)
    app.state.fault_switch = switch
    switch.state = app.state
    return switch
