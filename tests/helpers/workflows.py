"""Helpers shared by the watch / hung / recover / credit-fix tests: learners and course files for the reference
LMS, a console client on it, submitting, counting rows of its database, starting it again on the same port.

Everything is real: the reference LMS in a subprocess, HTTP on 127.0.0.1, its SQLite database.
"""

from __future__ import annotations

import asyncio

from importconsole.lms.client import LmsClient, RetryPolicy
from helpers.sandbox import SandboxServer


def learners(count: int) -> list[dict]:
    return [{"external_user_id": f"u{n}", "email": f"u{n}@example.org", "first_name": f"First{n}", "last_name": f"Last{n}"}
            for n in range(1, count + 1)]


def course_file(count: int, *, bad_row: int | None = None, char: str = "\u200b", credit: bool = True,
                header: str = "external_user_id,complete,date_completed,credit_type,credits") -> bytes:
    """`count` completion rows for u1..uN in C-FIXED; `char` appended to the user id of `bad_row`."""
    lines = [header]
    for n in range(1, count + 1):
        user = f"u{n}" + (char if n == bad_row else "")
        lines.append(f"{user},1,2026-01-02," + ("ama,1.0" if credit else ","))
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def client_for(lms: SandboxServer, **kw) -> LmsClient:
    fast = RetryPolicy(attempts=4, base=0.05, cap=0.3)
    return LmsClient(lms.base_url, lms.admin_token, retry=kw.pop("retry", fast), timeout=kw.pop("timeout", 10.0), **kw)


async def submit(lms: SandboxServer, content: bytes, **kw) -> dict:
    response = await asyncio.to_thread(lms.submit, content, **kw)
    assert response.status_code in (200, 201), response.text
    return response.json()


def count(lms: SandboxServer, sql: str, *args) -> int:
    return lms.db().execute(sql, args).fetchone()[0]


def start_on_same_port(lms: SandboxServer) -> None:
    """Start a stopped server again on the SAME port and database, so a client that keeps its
    base URL reconnects to it (SandboxServer.restart picks a new port)."""
    lms.start(port=int(lms.base_url.rsplit(":", 1)[1]), read_tokens=False)


async def hang(lms: SandboxServer, rows: int = 200, bad_row: int = 120, **kw) -> dict:
    """Submit `rows` rows to C-FIXED with a zero-width space at `bad_row`: the import stops before it and, after
    1.1 s, is hung at the tests' hung_after = 1 s. Returns the Import."""
    item = await submit(lms, course_file(rows, bad_row=bad_row, **kw), course="C-FIXED")
    await asyncio.to_thread(lms.wait_rows, item["id"], bad_row - 1)
    await asyncio.sleep(1.1)  # it stays there (the row holds a zero-width space): hung at the tests' hung_after = 1 s
    assert lms.get_import(item["id"])["rows_processed"] == bad_row - 1
    return item


def assert_each_learner_imported_once(lms: SandboxServer, rows: int) -> None:
    db = lms.db()
    per_user = db.execute(
        "SELECT u.external_user_id, count(e.id) FROM users u LEFT JOIN enrollments e ON e.user_id = u.id "
        "GROUP BY u.id").fetchall()
    assert {n for _, n in per_user} == {1}, [r for r in per_user if r[1] != 1][:5]
    assert count(lms, "SELECT count(*) FROM enrollments WHERE status = 'complete'") == rows
    # Across the hung import and its re-import, each of the file's rows was imported once.
    assert count(lms, "SELECT count(*) FROM import_rows WHERE status = 'imported'") == rows
    assert count(lms, "SELECT count(*) FROM import_rows WHERE status != 'imported'") == 0
