"""Profiles from TOML: every problem named with file, key and what is allowed; the admin's file is
never rewritten; the app's own state file round-trips."""

import os
import stat
from pathlib import Path

import pytest

from importconsole.cli import main
from importconsole.config import (
    ConfigError,
    ConfigMissing,
    State,
    init_config,
    load_config,
    load_state,
    save_state,
    validate_config,
)

FIXTURES = Path(__file__).parent / "fixtures" / "config"
EXAMPLE = Path(__file__).resolve().parents[1] / "config.example.toml"


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("IMPORTCONSOLE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("IMPORTCONSOLE_CONFIG", str(tmp_path / "no-config-here.toml"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
    monkeypatch.delenv("IMPORTCONSOLE_TOKEN", raising=False)


# What the admin sees for each bad file in tests/fixtures/config/: (key, words in the message).
BAD = {
    "unknown_key.toml": [("profiles.prod.pol_interval", "did you mean 'poll_interval'")],
    "bad_values.toml": [
        ("profiles.prod.poll_interval", "must be a number of seconds between 0.1 and 300, not 'often'"),
        ("profiles.prod.hung_after", "between 1 and 86400 seconds, not 0"),
        ("profiles.prod.importer", "must be \"course\""),
    ],
    "plain_http.toml": [("profiles.prod.base_url", "Refusing plain http:// to lms.example.org")],
    "token_in_file.toml": [("profiles.prod.token", "the API token never goes in the config file")],
    "missing_username.toml": [("profiles.prod.username", "missing")],
    "bad_default.toml": [("default_profile", "names 'production', which is not a profile; the profiles are: prod")],
    "not_toml.toml": [("", "not valid TOML")],
    "unset_variable.toml": [("profiles.prod.base_url", "environment variable IMPORTCONSOLE_TEST_UNSET_HOST is not set")],
    "profile_at_top.toml": [("prod", "a profile goes under [profiles.prod]")],
    "missing_ca_bundle.toml": [("profiles.prod.ca_bundle", "no file at /nonexistent/importconsole/ca.pem")],
}


def test_every_fixture_has_an_expected_message():
    assert sorted(p.name for p in FIXTURES.glob("*.toml")) == sorted(BAD)


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_config_names_file_key_and_what_is_allowed(name):
    with pytest.raises(ConfigError) as err:
        load_config(FIXTURES / name)
    problems = err.value.problems
    for key, words in BAD[name]:
        hits = [p for p in problems if p.key == key and words in p.message]
        assert hits, f"{name}: expected {key!r} with {words!r}, got {[str(p) for p in problems]}"
        assert str(FIXTURES / name) in str(hits[0])
    assert len(problems) == len(BAD[name])


def test_a_token_in_the_config_is_never_echoed():
    with pytest.raises(ConfigError) as err:
        load_config(FIXTURES / "token_in_file.toml")
    assert "tok-in-config-file" not in str(err.value)


def test_config_validate_lists_every_problem_and_exits_1(capsys):
    code = main(["config", "validate", "--config", str(FIXTURES / "bad_values.toml")])
    out = capsys.readouterr()
    assert code == 1
    text = out.out + out.err
    for key in ("poll_interval", "hung_after", "importer"):
        assert f"profiles.prod.{key}" in text
    assert "Traceback" not in text


def test_the_example_config_is_valid_and_documents_every_key(monkeypatch, tmp_path):
    monkeypatch.setenv("LMS_HOST", "lms.example.org")
    bundle = tmp_path / "ca.pem"
    bundle.write_text("not needed for parsing\n")
    text = EXAMPLE.read_text(encoding="utf-8").replace("/etc/ssl/certs/my-lms-ca.pem", str(bundle))
    target = tmp_path / "example.toml"
    target.write_text(text, encoding="utf-8")
    config = load_config(target)
    assert config.default_profile in config.profiles
    from importconsole.config import PROFILE_KEYS

    for key in PROFILE_KEYS:
        assert f"# {key}" in text or f"{key} =" in text
        assert any(line.startswith("#") and key in line for line in text.splitlines()), f"{key} has no comment"


def test_variables_are_interpolated_in_memory_and_never_written_back(tmp_path):
    original = '[profiles.prod]\nbase_url = "https://${LMS_HOST}/ce"\nusername = "${LMS_USER}"\n'
    path = tmp_path / "config.toml"
    path.write_text(original)
    config = load_config(path, environ={"LMS_HOST": "lms.example.org", "LMS_USER": "jdoe"})
    assert config.profile().base_url == "https://lms.example.org/ce"
    assert config.profile().username == "jdoe"
    assert path.read_text() == original


def test_profile_selection(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[profiles.a]\nbase_url = "https://a.example.org"\nusername = "u"\n'
                    '[profiles.b]\nbase_url = "https://b.example.org"\nusername = "u"\n')
    config = load_config(path)
    assert config.profile("b").base_url == "https://b.example.org"
    with pytest.raises(ConfigError, match="pass --profile NAME"):
        config.profile()
    with pytest.raises(ConfigError, match="no profile named 'c'; the profiles are: a, b"):
        config.profile("c")


def test_missing_config_says_how_to_create_one(tmp_path):
    with pytest.raises(ConfigMissing, match="importconsole config init"):
        load_config(tmp_path / "absent.toml")
    assert validate_config(tmp_path / "absent.toml")[0].message.startswith("no config file")


def test_config_path_comes_from_the_environment(tmp_path, monkeypatch):
    path = tmp_path / "env.toml"
    path.write_text('[profiles.p]\nbase_url = "https://x.example.org"\nusername = "u"\n')
    monkeypatch.setenv("IMPORTCONSOLE_CONFIG", str(path))
    assert load_config().path == path


def test_init_writes_a_first_config_and_never_overwrites(tmp_path, capsys):
    path = tmp_path / "sub" / "config.toml"
    assert main(["config", "init", "--config", str(path), "--profile", "prod",
                 "--base-url", "https://lms.example.org", "--username", "jdoe"]) == 0
    assert load_config(path).profile().username == "jdoe"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    before = path.read_bytes()
    assert main(["config", "init", "--config", str(path), "--profile", "x",
                 "--base-url", "https://other.example.org", "--username", "someone"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert path.read_bytes() == before
    with pytest.raises(ConfigError, match="Refusing plain http://"):
        init_config(tmp_path / "new.toml", profile="p", base_url="http://lms.example.org", username="u")
    assert not (tmp_path / "new.toml").exists()


def test_state_file_round_trips_and_survives_damage(tmp_path):
    state = State(last_profile="prod", theme="dark")
    for i in range(15):
        state.remember_file(tmp_path / f"f{i}.csv")
    saved = save_state(state)
    assert saved.parent == tmp_path / "state"
    again = load_state()
    assert again.last_profile == "prod" and again.theme == "dark"
    assert len(again.recent_files) == 10 and again.recent_files[0].endswith("f14.csv")
    saved.write_text("this is [ not toml")
    assert load_state() == State()


def test_the_token_variable_cannot_be_interpolated_into_the_config(tmp_path, capsys):
    token = "tok-SECRET-config-91d3"
    path = tmp_path / "config.toml"
    path.write_text('[profiles.prod]\nbase_url = "${IMPORTCONSOLE_TOKEN}"\nusername = "jdoe"\npoll_interval = "${IMPORTCONSOLE_TOKEN}"\n')
    problems = validate_config(path, environ={"IMPORTCONSOLE_TOKEN": token})
    assert {p.key for p in problems} >= {"profiles.prod.base_url", "profiles.prod.poll_interval"}
    assert all(token not in str(p) for p in problems)
    assert any("never part of the config" in str(p) for p in problems)
