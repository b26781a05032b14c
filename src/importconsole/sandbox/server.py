"""Run the reference LMS: prepare the database, serve on 127.0.0.1, announce the URL on stdout."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import tempfile
from pathlib import Path

import uvicorn

from importconsole.sandbox import db as dbm
from importconsole.sandbox.app import DEFAULT_MAX_UPLOAD, create_app
from importconsole.sandbox.dataset import DatasetError, demo_dataset, load_dataset_file, seed

LISTENING = "importconsole sandbox listening on {url}"


def prepare_database(db_path: Path | None, seed_name: str | None) -> tuple[Path, dict[str, str], bool]:
    """Create and seed the database if it is new. Returns (path, role -> token, seeded now).

    An existing database is reused as it is (restart): its imports, locks and users stay."""
    if db_path is None:
        handle = tempfile.NamedTemporaryFile(prefix="importconsole-sandbox-", suffix=".sqlite3", delete=False)
        handle.close()
        db_path = Path(handle.name)
    conn = dbm.connect(db_path)
    try:
        dbm.create_schema(conn)
        # New = holds nothing yet (also after a seed that failed: seeding is all or nothing).
        fresh = not any(conn.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone()
                        for table in ("tokens", "credit_types", "courses", "users", "imports"))
        tokens: dict[str, str] = {}
        if fresh:
            name = seed_name or "demo"
            data = demo_dataset() if name == "demo" else load_dataset_file(Path(name))
            tokens = seed(conn, data, where="demo dataset" if name == "demo" else name)
        else:
            for row in conn.execute("SELECT role, token FROM tokens ORDER BY rowid"):
                tokens.setdefault(row["role"], row["token"])
        return db_path, tokens, fresh
    finally:
        conn.close()


class _Server(uvicorn.Server):
    def __init__(self, config, announce):
        super().__init__(config)
        self._announce = announce
        self._loop = None

    def handle_exit(self, sig, frame):
        # A requested stop is a clean exit (status 0), not a death by signal after shutdown.
        super().handle_exit(sig, frame)
        self._captured_signals.clear()
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.config.app.state.stopping.set)

    async def startup(self, sockets=None):
        self._loop = asyncio.get_running_loop()
        await super().startup(sockets=sockets)
        if self.started and self.servers:
            host, port = self.servers[0].sockets[0].getsockname()[:2]
            self._announce(host, port)


def serve(*, host: str, port: int, db_path: Path | None, seed_name: str | None, rows_per_second: float | None,
          faults: bool, show_tokens: bool, max_upload: int = DEFAULT_MAX_UPLOAD) -> int:
    try:
        db_path, tokens, fresh = prepare_database(db_path, seed_name)
    except DatasetError as exc:
        print(f"importconsole sandbox: {exc}", file=sys.stderr)
        return 2
    except sqlite3.Error as exc:
        print(f"importconsole sandbox: {db_path}: cannot use this file as the LMS database ({exc}); "
              "give --db a new path or one the sandbox made.", file=sys.stderr)
        return 2
    app = create_app(db_path, rows_per_second=rows_per_second, faults=faults, max_upload=max_upload)

    def announce(bound_host: str, bound_port: int) -> None:
        url_host = f"[{bound_host}]" if ":" in bound_host else bound_host
        print(LISTENING.format(url=f"http://{url_host}:{bound_port}"), flush=True)
        if show_tokens:
            for role, token in tokens.items():
                print(f"token {role}: {token}", flush=True)
        speed = "unthrottled" if not rows_per_second else f"{rows_per_second:g} rows/s"
        kept = "" if fresh else "; reused as it was: its imports, locks and users are kept, --seed is not loaded"
        limit = f"uploads up to {max_upload / (1 << 20):g} MiB"
        print(f"database: {db_path} (processing {speed}, {limit}{', faults on' if faults else ''}{kept}); Ctrl-C stops",
              file=sys.stderr, flush=True)

    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, lifespan="on",
                            timeout_graceful_shutdown=2, proxy_headers=False, server_header=False)
    server = _Server(config, announce)
    try:
        server.run()
    except SystemExit:  # uvicorn exits when it cannot bind; it has logged the reason
        pass
    if not server.started:
        print(f"importconsole sandbox: could not listen on {host}:{port}; is the port in use? "
              "Pick another with --port, or --port 0 for a free one.", file=sys.stderr)
        return 3
    return 0
