"""`importconsole` with no subcommand opens the console; `--demo` first starts a reference LMS
with demo data on a free loopback port in a temporary folder, and stops it on exit."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from importconsole import crash

DEMO_TOKEN = "demo-admin-token"  # the demo data's site-admin token: in memory only, never written
LISTENING = "importconsole sandbox listening on "
DEMO_HUNG_AFTER = 5.0  # seconds without progress: short, so the demo's wait for the hang is short


class DemoServerError(RuntimeError):
    pass


@dataclass
class DemoServer:
    process: subprocess.Popen
    base_url: str
    folder: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def _die_with_parent() -> None:
    """In the demo LMS's process: end when the console ends, however it ends (an SSH link that
    drops sends SIGHUP, and then no `finally` runs to stop the server)."""
    import ctypes
    import signal

    PR_SET_PDEATHSIG = 1
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass  # no glibc: the console's own `finally` still stops the server on a normal exit


def start_demo_server(folder: Path, *, rows_per_second: float = 5, timeout: float = 30.0) -> DemoServer:
    """Start `importconsole sandbox --seed demo --port 0` in `folder`; wait for its URL line."""
    command = [sys.executable, "-m", "importconsole", "sandbox", "--seed", "demo", "--port", "0",
               "--rows-per-second", str(rows_per_second), "--db", str(folder / "lms.sqlite3")]
    process = subprocess.Popen(command, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, text=True, encoding="utf-8", errors="replace",
                               preexec_fn=_die_with_parent if sys.platform == "linux" else None)
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:  # keeps reading so the server never blocks on a full pipe
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.2)
        except queue.Empty:
            continue
        if line is None:
            break
        seen.append(line.rstrip())
        if LISTENING in line:
            url = line.split(LISTENING, 1)[1].strip().split()[0]
            return DemoServer(process, url.rstrip("/"), folder)
    server = DemoServer(process, "", folder)
    server.stop()
    tail = "\n  ".join(seen[-5:]) or "(no output)"
    raise DemoServerError(f"the demo LMS did not start within {timeout:.0f}s. Its last words:\n  {tail}")


def _demo_session(server: DemoServer):
    from importconsole.tui.session import LmsSession

    return LmsSession(profile="demo", base_url=server.base_url, token=DEMO_TOKEN,
                      journal_path=server.folder / "journal.jsonl")


def _profile_session(args):
    """The profile from the config, with its token; None (the console opens Connect) if there is none."""
    from importconsole.tui.connecting import session_from_config

    return session_from_config(getattr(args, "config", None), getattr(args, "profile", None))


def run_console(args) -> int:
    from importconsole.tui.app import ImportConsoleApp

    theme = os.environ.get("IMPORTCONSOLE_THEME")
    if getattr(args, "demo", False):
        with tempfile.TemporaryDirectory(prefix="importconsole-demo-") as tmp:
            folder = Path(tmp)
            try:
                server = start_demo_server(folder)
            except DemoServerError as error:
                print(f"importconsole --demo: {error}", file=sys.stderr)
                return 3
            try:
                crash.register_secret(DEMO_TOKEN)
                print("importconsole --demo: a colleague's import is hanging on the demo LMS; "
                      f"the console opens once it counts as hung ({DEMO_HUNG_AFTER:g} s without progress)...",
                      file=sys.stderr, flush=True)
                app = demo_app(server, theme_name=theme)
                app.run()
                return app.return_code or 0
            finally:
                server.stop()
    session, problem = _profile_session(args)
    app = ImportConsoleApp(session=session, theme_name=theme,
                           config_path=Path(args.config) if getattr(args, "config", None) else None,
                           startup_problem=problem)
    app.run()
    return app.return_code or 0


def demo_app(server: DemoServer, *, theme_name: str | None = None, hung_after: float = DEMO_HUNG_AFTER):
    """The console on the demo LMS. All of its state (recent files, theme, credit-fix folders, the
    journal) stays in the demo's temporary folder: the admin's own state never names demo files."""
    from importconsole.tui.app import ImportConsoleApp
    from importconsole.tui.demo import welcome

    session = _demo_session(server)
    demo = prepare_demo(session, server.folder, hung_after=hung_after)
    return ImportConsoleApp(session=session, workdir=demo.files, theme_name=theme_name, start_mode="files",
                            hung_after=hung_after, welcome=welcome(demo.colleague_import, demo.hung),
                            state_folder=server.folder / "state")


@dataclass(frozen=True)
class PreparedDemo:
    files: Path  # the folder of the demo's import files
    colleague_import: int  # the import a colleague sent before the admin came
    hung: bool  # it counted as hung by the watcher's rule when the console opened


def prepare_demo(session, folder: Path, *, hung_after: float = DEMO_HUNG_AFTER) -> PreparedDemo:
    """Write the demo files, send the colleague's hanging import and wait until it counts as hung
    (so the console's first frame says so)."""
    import asyncio

    from importconsole.tui.demo import submit_hanging_import, wait_until_hung, write_demo_files

    files = write_demo_files(folder)

    async def send() -> tuple[int, bool]:
        async with session.client() as client:
            hanging = await submit_hanging_import(client, files)
            return hanging.id, await wait_until_hung(client, hanging.id, hung_after)

    colleague_import, hung = asyncio.run(send())
    return PreparedDemo(files, colleague_import, hung)
