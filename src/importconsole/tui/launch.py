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


def start_demo_server(folder: Path, *, rows_per_second: float = 5, timeout: float = 30.0) -> DemoServer:
    """Start `importconsole sandbox --seed demo --port 0` in `folder`; wait for its URL line."""
    command = [sys.executable, "-m", "importconsole", "sandbox", "--seed", "demo", "--port", "0",
               "--rows-per-second", str(rows_per_second)]
    process = subprocess.Popen(command, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, text=True, encoding="utf-8", errors="replace")
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
                app = ImportConsoleApp(session=_demo_session(server), workdir=_demo_workdir(folder),
                                       theme_name=theme)
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


def _demo_workdir(folder: Path) -> Path:
    """The demo's files (written by the sandbox's demo seed) are where the admin starts browsing."""
    for candidate in (folder / "demo-files", folder / "files", folder):
        if candidate.is_dir() and any(candidate.glob("*.csv")):
            return candidate
    return folder
