"""A real terminal: tmux runs `importconsole --demo` at 80x24; keys are sent and the screen is
read back, as an admin on an SSH link would see it."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from helpers.wait import wait_for

pytestmark = [pytest.mark.tmux, pytest.mark.slow]

TMUX = shutil.which("tmux")
CONSOLE = Path(sys.executable).with_name("importconsole")


def _capture(session: str) -> str:
    return subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True).stdout


def _wait(session: str, text: str, timeout: float = 30.0) -> str:
    def screen() -> str | None:
        shown = _capture(session)
        return shown if text in shown else None

    return wait_for(screen, timeout, 0.2, f"{text!r} in the terminal", show=lambda: _capture(session))


def _demo_lms_pids(tmp_path) -> str:
    """The pids of this test's demo LMS (named by its folder), or ""."""
    return subprocess.run(["pgrep", "-f", f"sandbox.*{tmp_path}"], capture_output=True, text=True).stdout.strip()


@pytest.mark.skipif(TMUX is None, reason="tmux is not installed (.ci/run installs it)")
def test_demo_in_a_real_80x24_terminal_shows_the_hang_recovers_it_with_one_key_and_stops_its_server_on_quit(tmp_path):
    session = f"ic-{uuid.uuid4().hex[:8]}"
    done = tmp_path / "exit-code"
    (tmp_path / "tmp").mkdir()
    # TMPDIR: the demo's folder (and its LMS database) lands inside this test's folder
    env = f"TMPDIR={tmp_path / 'tmp'} IMPORTCONSOLE_STATE_DIR={tmp_path / 'state'} IMPORTCONSOLE_CONFIG={tmp_path / 'config.toml'} TERM=xterm-256color"
    command = f"cd {tmp_path} && env {env} {CONSOLE} --demo; echo $? > {done}; sleep 5"
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "80", "-y", "24", command], check=True)
    try:
        screen = _wait(session, "ethics-110-hangs.csv")
        assert _demo_lms_pids(tmp_path), "the demo LMS should be running while the console is open"
        assert "card-101-completions.csv" in screen and "Files" in screen
        assert "demo-admin-token" not in screen  # the token is never on screen
        # the hang is noticed while the admin is still on the Files screen
        _wait(session, "Import hung", timeout=40)
        assert "HUNG: import 1 (m, then u)" in _capture(session).splitlines()[0]  # stays after the toast
        subprocess.run(["tmux", "send-keys", "-t", session, "m"], check=True)
        _wait(session, "1 hung", timeout=40)
        screen = _wait(session, "Stopped at row 7")
        subprocess.run(["tmux", "send-keys", "-t", session, "?"], check=True)
        screen = _wait(session, "Unlock + re-import")
        subprocess.run(["tmux", "send-keys", "-t", session, "Escape"], check=True)
        time.sleep(0.3)
        # one key on the hung import, Enter on the plan; the monitor then follows the re-import
        subprocess.run(["tmux", "send-keys", "-t", session, "u"], check=True)
        screen = _wait(session, "Enter: unlock import 1")
        assert "Import hung" not in screen and "Welcome" not in screen  # no toast over the plan
        subprocess.run(["tmux", "send-keys", "-t", session, "Enter"], check=True)
        _wait(session, "Enter: back to the monitor")
        subprocess.run(["tmux", "send-keys", "-t", session, "Enter"], check=True)
        screen = _wait(session, "completed")
        assert "unlocked" in screen
        subprocess.run(["tmux", "send-keys", "-t", session, "q"], check=True)
        wait_for(done.exists, 15, 0.1, "the console to exit")
        assert done.read_text().strip() == "0"
        assert "Traceback" not in _capture(session)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
    # the demo LMS stopped with the console: no sandbox left listening from this test's folder
    assert _demo_lms_pids(tmp_path) == ""


@pytest.mark.skipif(TMUX is None, reason="tmux is not installed (.ci/run installs it)")
@pytest.mark.skipif(sys.platform != "linux", reason="the demo LMS follows its console out via Linux's PDEATHSIG")
def test_the_demo_lms_ends_even_when_its_console_is_killed(tmp_path):
    """kill -9 (or an OOM kill) runs no `finally`: the demo LMS must still not outlive the console."""
    session = f"ic-{uuid.uuid4().hex[:8]}"
    (tmp_path / "tmp").mkdir()
    env = f"TMPDIR={tmp_path / 'tmp'} IMPORTCONSOLE_STATE_DIR={tmp_path / 'state'} IMPORTCONSOLE_CONFIG={tmp_path / 'c.toml'}"
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "80", "-y", "24",
                    f"cd {tmp_path} && env {env} {CONSOLE} --demo; sleep 30"], check=True)
    try:
        _wait(session, "ethics-110-hangs.csv")
        assert _demo_lms_pids(tmp_path)
        shell = subprocess.run(["tmux", "list-panes", "-t", session, "-F", "#{pane_pid}"], capture_output=True,
                               text=True).stdout.split()[0]
        console = subprocess.run(["pgrep", "-P", shell], capture_output=True, text=True).stdout.split()[0]
        os.kill(int(console), signal.SIGKILL)
        wait_for(lambda: not _demo_lms_pids(tmp_path), 10, 0.2, "the demo LMS to end with its console",
                 show=lambda: f"the demo LMS outlived its console: pids {_demo_lms_pids(tmp_path)}")
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
        for pid in _demo_lms_pids(tmp_path).split():
            os.kill(int(pid), signal.SIGTERM)  # only this test's demo LMS, named by its folder
