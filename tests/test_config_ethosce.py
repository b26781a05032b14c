"""An EthosCE profile: kind, the restws account, the Feeds importer ids, checked with sentences;
its two passwords from the environment, the keyring (`login` stores both) or a prompt, never
written anywhere and scrubbed from crash text and log lines."""

import io
import logging
import sys

import keyring
import pytest
from keyring.backends import null

from helpers.keyrings import MemoryKeyring

from importconsole import crash
from importconsole.cli import main
from importconsole.config import ConfigError, load_config
from importconsole.secrets import NoToken, get_credentials

ADMIN_PW = "adm1n-Pw-7c1e5a"
RESTWS_PW = "restws-Pw-93b0d2"
GOOD = """default_profile = "site"
[profiles.site]
kind = "ethosce"
base_url = "https://ce.example.org"
username = "admin"
restws_username = "restws_console"
"""


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("IMPORTCONSOLE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("IMPORTCONSOLE_CONFIG", str(tmp_path / "config.toml"))
    for name in ("IMPORTCONSOLE_TOKEN", "IMPORTCONSOLE_PASSWORD", "IMPORTCONSOLE_RESTWS_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "config.toml").write_text(GOOD)
    before = keyring.get_keyring()
    keyring.set_keyring(null.Keyring())
    yield
    keyring.set_keyring(before)


def profile(tmp_path):
    return load_config(tmp_path / "config.toml").profile()


def test_an_ethosce_profile_has_its_defaults(tmp_path):
    site = profile(tmp_path)
    assert (site.kind, site.restws_username, site.course_importer, site.global_importer) == (
        "ethosce", "restws_console", "course_record_import", None)
    assert site.importer_id("course") == "course_record_import"
    config = tmp_path / "ref.toml"
    config.write_text('[profiles.r]\nbase_url = "https://lms.example.org"\nusername = "jdoe"\n')
    assert load_config(config).profile().kind == "reference"  # the default stays the console's own API


BAD = {
    'kind = "drupal"': ("profiles.site.kind", 'must be "reference"'),
    'restws_username = "console"': ("profiles.site.restws_username", 'must start with "restws"'),
    'restws_username = "restws_admin"\nusername = "restws_admin"': ("profiles.site.restws_username", "another account"),
    'course_importer = "Course Record Import"': ("profiles.site.course_importer", "must be a Feeds importer id"),
    'importer = "global"': ("profiles.site.importer", "global_importer is not set"),
    f'restws_password = "{RESTWS_PW}"': ("profiles.site.restws_password", "passwords never go in the config file"),
}


@pytest.mark.parametrize("line", sorted(BAD))
def test_a_bad_ethosce_profile_is_named_by_key_with_a_sentence(tmp_path, line):
    table = {k: v for k, v in (entry.split(" = ") for entry in GOOD.split("[profiles.site]\n")[1].splitlines())}
    for entry in line.splitlines():
        key, value = entry.split(" = ")
        table[key] = value
    config = tmp_path / "bad.toml"
    config.write_text("[profiles.site]\n" + "\n".join(f"{k} = {v}" for k, v in table.items()) + "\n")
    with pytest.raises(ConfigError) as err:
        load_config(config)
    key, words = BAD[line]
    assert [p.key for p in err.value.problems] == [key] and words in str(err.value)
    assert RESTWS_PW not in str(err.value)


def test_ethosce_keys_on_a_reference_profile_and_a_missing_restws_account(tmp_path, capsys):
    config = tmp_path / "mixed.toml"
    config.write_text('[profiles.r]\nbase_url = "https://lms.example.org"\nusername = "jdoe"\ncourse_importer = "x"\n'
                      '[profiles.e]\nkind = "ethosce"\nbase_url = "http://ce.example.org"\nusername = "admin"\n')
    assert main(["config", "validate", "--config", str(config)]) == 1
    out = capsys.readouterr().out
    assert 'profiles.r.course_importer: is only used by an EthosCE profile; add kind = "ethosce"' in out
    assert "profiles.e.restws_username: missing" in out
    assert "profiles.e.base_url: Refusing plain http:// to ce.example.org: the passwords would cross" in out


def test_both_passwords_come_from_the_environment_and_are_scrubbed(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("IMPORTCONSOLE_PASSWORD", ADMIN_PW)
    monkeypatch.setenv("IMPORTCONSOLE_RESTWS_PASSWORD", RESTWS_PW)
    credentials = get_credentials(profile(tmp_path), prompt=False)
    assert (credentials.password, credentials.restws_password, credentials.token) == (ADMIN_PW, RESTWS_PW, None)
    assert ADMIN_PW not in repr(credentials) and RESTWS_PW not in repr(credentials)
    assert crash.redact(f"login as admin/{ADMIN_PW} then {RESTWS_PW}") == "login as admin/[token hidden] then [token hidden]"
    with caplog.at_level(logging.DEBUG, logger="importconsole"):
        logging.getLogger("importconsole.lms.ethosce").debug("POST /user/login name=admin pass=%s", ADMIN_PW)
        logging.getLogger("httpx").info(f"Basic restws_console:{RESTWS_PW}")
    assert ADMIN_PW not in caplog.text and RESTWS_PW not in caplog.text and "[token hidden]" in caplog.text


def test_a_missing_password_names_both_variables_and_login(tmp_path):
    keyring.set_keyring(MemoryKeyring())
    with pytest.raises(NoToken) as err:
        get_credentials(profile(tmp_path), prompt=False)
    assert "No password of the site admin admin on profile site" in str(err.value)
    assert "importconsole login --profile site" in str(err.value) and "IMPORTCONSOLE_PASSWORD" in str(err.value)


def test_the_prompt_asks_each_password_by_account(tmp_path):
    asked = []
    answers = iter([ADMIN_PW, RESTWS_PW])
    credentials = get_credentials(profile(tmp_path), ask=lambda text: asked.append(text) or next(answers))
    assert (credentials.password, credentials.restws_password) == (ADMIN_PW, RESTWS_PW)
    assert "site admin admin" in asked[0] and "restws_console" in asked[1]


def test_login_stores_both_passwords_and_logout_removes_both(tmp_path, monkeypatch, capsys):
    ring = MemoryKeyring()
    keyring.set_keyring(ring)
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{ADMIN_PW}\n{RESTWS_PW}\n"))
    assert main(["login", "--profile", "site", "--no-check"]) == 0
    assert ring.store == {("importconsole", "site:admin"): ADMIN_PW, ("importconsole", "site:restws_console"): RESTWS_PW}
    credentials = get_credentials(profile(tmp_path), prompt=False)
    assert (credentials.password, credentials.restws_password) == (ADMIN_PW, RESTWS_PW)
    assert main(["logout", "--profile", "site"]) == 0
    assert ring.store == {}
    out = capsys.readouterr()
    assert ADMIN_PW not in out.out + out.err and RESTWS_PW not in out.out + out.err
    assert (tmp_path / "config.toml").read_text() == GOOD  # nothing was written to the config


def test_config_init_writes_a_first_ethosce_profile_and_refuses_one_without_its_restws_account(tmp_path, capsys):
    """A first-time EthosCE admin starts with `config init` too (it could only write a reference profile)."""
    path = tmp_path / "new" / "config.toml"
    base = ["config", "init", "--config", str(path), "--profile", "site", "--kind", "ethosce",
            "--base-url", "https://ce.example.org", "--username", "admin"]
    assert main(base) == 2
    assert "restws_username: missing" in capsys.readouterr().err and not path.exists()
    assert main([*base, "--restws-username", "restws_console"]) == 0
    profile = load_config(path).profile("site")
    assert (profile.kind, profile.username, profile.restws_username) == ("ethosce", "admin", "restws_console")
    assert "importconsole login --profile site" in capsys.readouterr().out
