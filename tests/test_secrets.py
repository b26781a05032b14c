"""The API token: env var, keyring, prompt. No keyring (most SSH hosts) or a locked one gets one
sentence offering the environment variable, never a hang; the token is never echoed."""

import io
import sys
import threading
import time

import keyring
import pytest
from keyring.backends import fail, null
from keyring.errors import KeyringLocked

from importconsole import crash
from importconsole.cli import main
from importconsole.config import Profile
from importconsole.secrets import (
    KeyringUnavailable,
    NoKeyringBackend,
    NoToken,
    delete_token,
    get_token,
    store_token,
)
from helpers.keyrings import MemoryKeyring

TOKEN = "tok-SECRET-7f3a9c0e1b2d4f6a"
PROFILE = Profile(name="prod", base_url="https://lms.example.org", username="jdoe")


class LockedKeyring(MemoryKeyring):
    """Blocks like a locked Secret Service waiting for a dialog nobody sees over SSH."""

    def __init__(self):
        super().__init__()
        self.release = threading.Event()

    def get_password(self, service, username):
        self.release.wait(30)
        return None

    set_password = get_password


class RefusingKeyring(MemoryKeyring):
    def get_password(self, service, username):
        raise KeyringLocked("locked")

    def set_password(self, service, username, password):
        raise KeyringLocked("locked")


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("IMPORTCONSOLE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("IMPORTCONSOLE_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
    monkeypatch.delenv("IMPORTCONSOLE_TOKEN", raising=False)
    (tmp_path / "config.toml").write_text('[profiles.prod]\nbase_url = "https://lms.example.org"\nusername = "jdoe"\n')
    before = keyring.get_keyring()
    keyring.set_keyring(null.Keyring())
    yield
    keyring.set_keyring(before)


def test_the_environment_variable_wins(monkeypatch):
    monkeypatch.setenv("IMPORTCONSOLE_TOKEN", TOKEN)
    assert get_token(PROFILE, prompt=False) == TOKEN
    assert crash.redact(f"boom {TOKEN}") == "boom [token hidden]"


@pytest.mark.parametrize("backend", [null.Keyring, fail.Keyring])
def test_no_keyring_backend_is_one_sentence_offering_the_env_var(backend):
    keyring.set_keyring(backend())
    with pytest.raises(NoToken) as err:
        get_token(PROFILE, prompt=False)
    assert "no working keyring" in str(err.value) and "IMPORTCONSOLE_TOKEN" in str(err.value)
    assert "importconsole login" not in str(err.value)  # it could not store the token here
    with pytest.raises(NoKeyringBackend) as err:
        store_token(PROFILE, TOKEN)
    assert str(err.value).count(".") <= 2 and "export IMPORTCONSOLE_TOKEN" in str(err.value)


def test_keyring_round_trip_one_entry_per_profile_and_user():
    ring = MemoryKeyring()
    keyring.set_keyring(ring)
    store_token(PROFILE, TOKEN)
    assert ring.store == {("importconsole", "prod:jdoe"): TOKEN}
    assert get_token(PROFILE, prompt=False) == TOKEN
    other = Profile(name="staging", base_url="https://s.example.org", username="jdoe")
    with pytest.raises(NoToken):
        get_token(other, prompt=False)
    assert delete_token(PROFILE) is True
    assert delete_token(PROFILE) is False


def test_a_locked_keyring_never_hangs():
    ring = LockedKeyring()
    keyring.set_keyring(ring)
    started = time.monotonic()
    with pytest.raises(NoToken) as err:
        get_token(PROFILE, prompt=False, timeout=0.3)
    assert time.monotonic() - started < 2
    assert "did not answer within 0.3 s" in str(err.value) and "IMPORTCONSOLE_TOKEN" in str(err.value)
    with pytest.raises(KeyringUnavailable):
        store_token(PROFILE, TOKEN, timeout=0.3)
    ring.release.set()


def test_a_failing_keyring_is_a_sentence_not_a_traceback():
    keyring.set_keyring(RefusingKeyring())
    with pytest.raises(KeyringUnavailable, match="keyring failed while trying to store the token"):
        store_token(PROFILE, TOKEN)


def test_prompt_used_only_when_asked():
    asked = []
    assert get_token(PROFILE, ask=lambda text: asked.append(text) or TOKEN) == TOKEN
    assert "jdoe" in asked[0] and TOKEN not in asked[0]


def test_login_and_logout_through_the_cli(monkeypatch, capsys):
    ring = MemoryKeyring()
    keyring.set_keyring(ring)
    monkeypatch.setattr(sys, "stdin", io.StringIO(TOKEN + "\n"))
    assert main(["login", "--profile", "prod", "--no-check"]) == 0
    assert ring.store[("importconsole", "prod:jdoe")] == TOKEN
    assert main(["logout", "--profile", "prod"]) == 0
    assert ring.store == {}
    out = capsys.readouterr()
    assert TOKEN not in out.out + out.err
    assert "stored in the system keyring" in out.out and "removed" in out.out


def test_login_without_keyring_says_so_and_exits_2_not_3(monkeypatch, capsys):
    """3 is "the LMS could not be reached or refused us" (README): a host without a keyring is not that."""
    monkeypatch.setattr(sys, "stdin", io.StringIO(TOKEN + "\n"))
    assert main(["login", "--no-check"]) == 2
    err = capsys.readouterr().err
    assert "no working keyring" in err and "IMPORTCONSOLE_TOKEN" in err and TOKEN not in err


def test_a_keyring_that_hangs_while_being_found_never_hangs(monkeypatch, capsys):
    """Finding the backend can block too (D-Bus asking a Secret Service that never answers)."""
    release = threading.Event()

    def stuck():
        release.wait(30)
        return MemoryKeyring()

    monkeypatch.setattr(keyring, "get_keyring", stuck)
    started = time.monotonic()
    try:
        with pytest.raises(NoToken) as err:
            get_token(PROFILE, prompt=False, timeout=0.3)
        assert "did not answer within 0.3 s" in str(err.value) and "IMPORTCONSOLE_TOKEN" in str(err.value)
        with pytest.raises(KeyringUnavailable):
            store_token(PROFILE, TOKEN, timeout=0.3)
        with pytest.raises(KeyringUnavailable):
            delete_token(PROFILE, timeout=0.3)
        monkeypatch.setattr("importconsole.secrets.KEYRING_TIMEOUT", 0.3)
        monkeypatch.setattr(sys, "stdin", io.StringIO(TOKEN + "\n"))
        assert main(["login", "--no-check"]) == 2
    finally:
        release.set()
    assert time.monotonic() - started < 5
    err = capsys.readouterr().err
    assert "did not answer" in err and "IMPORTCONSOLE_TOKEN" in err and TOKEN not in err
