"""Connect: the first profile is created from the console (config written without the token),
the token is checked against the real reference LMS, and where no keyring exists the screen
says so and keeps it in memory only."""

from __future__ import annotations

import time
import tomllib

import keyring
import pytest
from keyring.backend import KeyringBackend
from textual.widgets import Input

from importconsole.config import init_config

from importconsole.tui.app import ImportConsoleApp
from importconsole.tui.connecting import session_from_config
from helpers.sandbox import dataset, start_sandbox
from helpers.tui import screen_text, wait_for, wait_for_text

pytestmark = pytest.mark.usefixtures("private_state")  # tests/conftest.py: state and config in tmp_path


async def test_first_profile_is_created_and_the_token_never_reaches_the_config_file(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")  # an SSH host: no keyring
    monkeypatch.delenv("IMPORTCONSOLE_TOKEN", raising=False)
    config = tmp_path / "config.toml"
    with start_sandbox(dataset()) as server:
        app = ImportConsoleApp(workdir=tmp_path, theme_dirs=[], config_path=config)
        async with app.run_test(size=(80, 40)) as pilot:
            text = await wait_for_text(pilot, "No profile yet")
            assert "No keyring on this machine" in text and "IMPORTCONSOLE_TOKEN" in text
            # unticked, and it shows without colour: no X in the box
            remember = next(line for line in text.splitlines() if "Remember the token" in line)
            assert "X" not in remember.split("Remember")[0]
            screen = app.screen
            screen.query_one("#profile-name", Input).value = "test"
            screen.query_one("#base-url", Input).value = server.base_url
            screen.query_one("#username", Input).value = "admin"
            screen.query_one("#token", Input).value = "wrong-token"
            await pilot.press("ctrl+s")
            # a wrong token is refused by the LMS with a sentence; nothing crashes
            await wait_for(pilot, lambda: "token" in str(screen.query_one("#connect-result").render()).lower()
                           and "Connecting" not in str(screen.query_one("#connect-result").render()),
                           timeout=15, what="the LMS's refusal")
            assert app.session is None
            screen.query_one("#token", Input).value = server.admin_token
            await pilot.press("ctrl+s")
            await wait_for(pilot, lambda: app.session is not None and app.current_mode == "monitor", timeout=15,
                           what="connected, on the monitor")
            assert server.admin_token not in screen_text(app)
        written = config.read_text()
        assert server.admin_token not in written and "wrong-token" not in written
        profile = tomllib.loads(written)["profiles"]["test"]
        assert profile["base_url"] == server.base_url and profile["username"] == "admin"
        # the next start finds the profile; the token comes from the environment, not a prompt
        monkeypatch.setenv("IMPORTCONSOLE_TOKEN", server.admin_token)
        session, problem = session_from_config(str(config), None)
        assert problem is None and session.profile == "test" and session.base_url == server.base_url
        assert server.admin_token not in repr(session)


class SlowKeyring(KeyringBackend):
    """An OS keyring that takes a while to answer (a locked GNOME keyring over D-Bus does)."""

    priority = 1

    def __init__(self, token: str, delay: float):
        super().__init__()
        self.token, self.delay = token, delay

    def get_password(self, service, username):
        time.sleep(self.delay)
        return self.token

    def set_password(self, service, username, password):
        time.sleep(self.delay)

    def delete_password(self, service, username):
        pass


async def test_a_slow_keyring_never_freezes_the_screen_while_a_profile_connects(tmp_path, monkeypatch):
    monkeypatch.delenv("IMPORTCONSOLE_TOKEN", raising=False)
    config = tmp_path / "config.toml"
    before = keyring.get_keyring()
    with start_sandbox(dataset()) as server:
        init_config(config, profile="slow", base_url=server.base_url, username="admin")
        keyring.set_keyring(SlowKeyring(server.admin_token, delay=1.5))
        try:
            app = ImportConsoleApp(workdir=tmp_path, theme_dirs=[], config_path=config, live=False)
            async with app.run_test(size=(80, 40)) as pilot:
                await wait_for_text(pilot, "Pick a profile")
                ticks: list[float] = []
                app.set_interval(0.05, lambda: ticks.append(time.monotonic()))
                await pilot.press("enter")  # the highlighted profile: its token is read from the keyring
                await wait_for(pilot, lambda: app.session is not None, timeout=15, what="connected")
                # the event loop kept running during the 1.5 s keyring read (frozen, it ticks about 7 times)
                gaps = [b - a for a, b in zip(ticks, ticks[1:])]
                assert len(ticks) >= 15 and max(gaps) < 1.0, gaps
                assert app.session.profile == "slow" and server.admin_token not in screen_text(app)
        finally:
            keyring.set_keyring(before)


async def test_esc_leaves_a_field_so_the_navigation_keys_work_again_on_connect(tmp_path):
    app = ImportConsoleApp(workdir=tmp_path, theme_dirs=[], config_path=tmp_path / "config.toml", live=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for_text(pilot, "No profile yet")
        await pilot.press("a")  # the cursor is in "Profile name"
        assert "Esc Leave the field" in screen_text(app) or "esc Leave the field" in screen_text(app)
        await pilot.press("escape", "f")
        await wait_for(pilot, lambda: app.current_mode == "files", what="the Files screen")
        await pilot.press("n")
        await wait_for(pilot, lambda: app.current_mode == "connect", what="back on Connect")
        assert app.screen.query_one("#profile-name", Input).value == "a"  # the f went nowhere near it
