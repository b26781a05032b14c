"""Start the real reference LMS (`importconsole sandbox`) in a subprocess for tests.

    with start_sandbox(dataset(users=[...]), rows_per_second=500) as lms:
        r = httpx.post(lms.url("/imports"), headers=lms.auth(), files=..., data=...)
        lms.wait_import(r.json()["id"])  # polls with helpers.wait.wait_for
        assert lms.db().execute("SELECT count(*) FROM enrollments").fetchone()[0] == 1

Everything is real: HTTP on 127.0.0.1, the server's own SQLite database (read it with `db()`).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import httpx

from helpers.wait import wait_for

LISTENING_PREFIX = "importconsole sandbox listening on "
START_TIMEOUT = 30.0

DEMO_ADMIN_TOKEN = "demo-admin-token"
DEMO_COURSE_ADMIN_TOKEN = "demo-course-admin-token"
ADMIN_TOKEN = "admin-token"
COURSE_ADMIN_TOKEN = "course-admin-token"


def dataset(*, credit_types=None, courses=None, users=None, enrollments=None, tokens=None) -> dict:
    """A small dataset (schema: docs/dataset.md). Every part has a sensible default:

    credit types ama (pars), acpe (cpe_monitor), ancc (ams), cme_other (nowhere);
    courses C-FIXED (ama 1.0, not variable, 2 required objects, certificate),
            C-VAR (ama 0.25-2.0, variable, 1 required object),
            C-ZERO (ancc 1.0, not variable, 0 required objects);
    users u1..u5 (u1@example.org ...); no enrollments;
    tokens admin-token (site_admin), course-admin-token (course_admin).
    """
    return {
        "credit_types": credit_types if credit_types is not None else [
            {"machine_name": "ama", "label": "AMA PRA Category 1", "reports_to": ["pars"]},
            {"machine_name": "acpe", "label": "ACPE", "reports_to": ["cpe_monitor"]},
            {"machine_name": "ancc", "label": "ANCC", "reports_to": ["ams"]},
            {"machine_name": "cme_other", "label": "Other", "reports_to": []},
        ],
        "courses": courses if courses is not None else [
            {"external_id": "C-FIXED", "title": "Fixed credit course", "has_certificate": True, "required_objects": 2,
             "credits": [{"credit_type": "ama", "min": 0.25, "max": 1.0, "increments": 0.25, "enable_variable_credit": False}]},
            {"external_id": "C-VAR", "title": "Variable credit course", "has_certificate": True, "required_objects": 1,
             "credits": [{"credit_type": "ama", "min": 0.25, "max": 2.0, "increments": 0.25, "enable_variable_credit": True}]},
            {"external_id": "C-ZERO", "title": "No required objects", "has_certificate": True, "required_objects": 0,
             "credits": [{"credit_type": "ancc", "min": 0.5, "max": 1.0, "increments": 0.5, "enable_variable_credit": False}]},
        ],
        "users": users if users is not None else [
            {"external_user_id": f"u{n}", "email": f"u{n}@example.org", "first_name": f"First{n}", "last_name": f"Last{n}"}
            for n in range(1, 6)
        ],
        "enrollments": enrollments if enrollments is not None else [],
        "tokens": tokens if tokens is not None else [
            {"token": ADMIN_TOKEN, "username": "admin", "role": "site_admin", "display_name": "Site Admin"},
            {"token": COURSE_ADMIN_TOKEN, "username": "courseadmin", "role": "course_admin", "display_name": "Course Admin"},
        ],
    }


# Every token any reference LMS of this test session issued: conftest checks that none of them
# reaches captured output or a file the console wrote.
ISSUED_TOKENS: set[str] = set()


class SandboxServer:
    """One running reference LMS. `stop()`, `restart()` (same database), `db()` to read it."""

    def __init__(self, dataset_arg: str, *, rows_per_second: float | None, faults: bool, db_path: Path | None,
                 extra_args: tuple[str, ...] = ()):
        self._workdir = Path(tempfile.mkdtemp(prefix="sandbox-test-"))
        self._dataset_arg = dataset_arg
        self.db_path = Path(db_path) if db_path else self._workdir / "lms.sqlite3"
        self.rows_per_second = rows_per_second
        self.faults = faults
        self.extra_args = tuple(extra_args)  # more `importconsole sandbox` flags, e.g. ("--max-upload", "1M")
        self.process: subprocess.Popen | None = None
        self.base_url = ""
        self.tokens: dict[str, str] = {}
        self._conns: list[sqlite3.Connection] = []
        self.log_path = self._workdir / "server.log"

    # -- lifecycle --
    def start(self, port: int = 0, *, read_tokens: bool = True) -> SandboxServer:
        """Start the server (port 0: a free one). read_tokens=False opens no database connection,
        so a test thread can restart it on the SAME port while the client keeps its base URL."""
        cmd = [sys.executable, "-m", "importconsole", "sandbox", "--port", str(port), "--db", str(self.db_path),
               "--seed", self._dataset_arg,
               "--rows-per-second", "max" if not self.rows_per_second else repr(float(self.rows_per_second))]
        if self.faults:
            cmd.append("--faults")
        cmd += self.extra_args
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL,
                                        env={**os.environ, "PYTHONUNBUFFERED": "1"})
        log.close()
        found: list[str] = []
        ready = threading.Event()

        def read_stdout(stream):
            for raw in stream:
                line = raw.decode("utf-8", "replace").strip()
                if line.startswith(LISTENING_PREFIX) and not found:
                    found.append(line[len(LISTENING_PREFIX):])
                    ready.set()
            ready.set()

        threading.Thread(target=read_stdout, args=(self.process.stdout,), daemon=True).start()
        if not ready.wait(START_TIMEOUT) or not found:
            self.stop()
            raise RuntimeError(f"the sandbox did not start: {self.log_path.read_text(errors='replace')[-2000:]}")
        self.base_url = found[0]
        if not read_tokens:
            return self
        conn = self.db()
        for row in conn.execute("SELECT role, token FROM tokens ORDER BY rowid"):
            self.tokens.setdefault(row[0], row[1])
            ISSUED_TOKENS.add(row[1])
        return self

    def stop(self) -> None:
        for conn in self._conns:
            conn.close()
        self._conns.clear()
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    def kill(self) -> None:
        """Stop abruptly (SIGKILL), as a crash would."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)
        self.process = None

    def restart(self) -> SandboxServer:
        """Stop and start again on the same database (the port may change: read base_url again)."""
        self.stop()
        return self.start()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self._workdir, ignore_errors=True)

    def __enter__(self) -> SandboxServer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- reading --
    @property
    def admin_token(self) -> str:
        return self.tokens["site_admin"]

    @property
    def course_admin_token(self) -> str:
        return self.tokens["course_admin"]

    def url(self, path: str) -> str:
        return f"{self.base_url}/api/v1{path}"

    def auth(self, role: str = "site_admin") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def client(self, role: str = "site_admin", **kwargs) -> httpx.Client:
        return httpx.Client(base_url=f"{self.base_url}/api/v1", headers=self.auth(role), timeout=10, **kwargs)

    def db(self) -> sqlite3.Connection:
        """A read connection to the server's database (rows as sqlite3.Row)."""
        conn = sqlite3.connect(str(self.db_path), timeout=10)
        conn.row_factory = sqlite3.Row
        self._conns.append(conn)
        return conn

    def submit(self, content: bytes, *, importer: str = "course", course: str | None = None,
               key: str | None = None, role: str = "site_admin", file_name: str = "import.csv") -> httpx.Response:
        """POST /imports with the file bytes as they are."""
        headers = self.auth(role)
        if key is not None:
            headers["Idempotency-Key"] = key
        data = {"importer": importer}
        if course is not None:
            data["course"] = course
        return httpx.post(self.url("/imports"), headers=headers, data=data,
                          files={"file": (file_name, content, "text/csv")}, timeout=30)

    def fault(self, kind: str, **params) -> None:
        """Arm a fault of `importconsole sandbox --faults` (POST /_faults; docs/sandbox.md lists the kinds)."""
        response = httpx.post(self.url("/_faults"), json={"kind": kind, **params}, headers=self.auth(), timeout=10)
        assert response.status_code < 300, response.text

    def clear_faults(self) -> None:
        httpx.delete(self.url("/_faults"), headers=self.auth(), timeout=10)

    def get_import(self, import_id: int) -> dict:
        response = httpx.get(self.url(f"/imports/{import_id}"), headers=self.auth(), timeout=10)
        response.raise_for_status()
        return response.json()

    def wait_import(self, import_id: int, states=("completed", "completed_with_errors", "failed"),
                    timeout: float = 15.0) -> dict:
        """Poll until the import reaches one of `states`; returns the Import."""
        return wait_for(lambda: (imp := self.get_import(import_id))["state"] in states and imp,
                        timeout=timeout, message=f"import {import_id} to reach {states}")

    def wait_rows(self, import_id: int, rows: int, timeout: float = 15.0) -> dict:
        """Poll until rows_processed >= rows."""
        return wait_for(lambda: (imp := self.get_import(import_id))["rows_processed"] >= rows and imp,
                        timeout=timeout, message=f"import {import_id} to process {rows} rows")


def start_sandbox(dataset: dict | str = "demo", *, rows_per_second: float | None = None, faults: bool = False,
                  db_path: Path | None = None, extra_args: tuple[str, ...] = ()) -> SandboxServer:
    """Start `importconsole sandbox --port 0` on a dataset (a dict, "demo", or a JSON/TOML path).

    rows_per_second None = unthrottled. Use it as a context manager or call close()."""
    if isinstance(dataset, dict):
        server = SandboxServer("", rows_per_second=rows_per_second, faults=faults, db_path=db_path, extra_args=extra_args)
        path = server._workdir / "dataset.json"
        path.write_text(json.dumps(dataset), encoding="utf-8")
        server._dataset_arg = str(path)
    else:
        server = SandboxServer(str(dataset), rows_per_second=rows_per_second, faults=faults, db_path=db_path,
                               extra_args=extra_args)
    try:
        return server.start()
    except BaseException:
        server.close()
        raise
