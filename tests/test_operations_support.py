"""Helpers shared by the watch / hung / recover / credit-fix tests (no tests here).

Everything is real: the reference LMS in a subprocess, HTTP on 127.0.0.1, its SQLite database.
"""

from __future__ import annotations

import asyncio

from helpers.sandbox import SandboxServer, dataset, start_sandbox  # noqa: F401 (re-exported)
from helpers.profiles import cli_env  # noqa: F401 (re-exported)
from helpers.wait import until  # noqa: F401 (re-exported)

from importconsole.lms.client import LmsClient, RetryPolicy


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
