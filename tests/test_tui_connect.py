"""Connect: the first profile is created from the console (config written without the token),
the token is checked against the real reference LMS, and where no keyring exists the screen
says so and keeps it in memory only."""

from __future__ import annotations

import tomllib

from textual.widgets import Input

from importconsole.tui.app import ImportConsoleApp
from importconsole.tui.connecting import session_from_config
from sandbox_helpers import dataset, start_sandbox
from tui_helpers import private_state, screen_text, wait_for, wait_for_text  # noqa: F401 (autouse fixture)


async def test_first_profile_is_created_and_the_token_never_reaches_the_config_file(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")  # an SSH host: no keyring
    monkeypatch.delenv("IMPORTCONSOLE_TOKEN", raising=False)
    config = tmp_path / "config.toml"
    with start_sandbox(dataset()) as server:
        app = ImportConsoleApp(workdir=tmp_path, theme_dirs=[], config_path=config)
        async with app.run_test(size=(80, 40)) as pilot:
            text = await wait_for_text(pilot, "No profile yet")
            assert "No keyring on this machine" in text and "IMPORTCONSOLE_TOKEN" in text
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
