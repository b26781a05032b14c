"""The admin's config file and environment, as the tests set them up (docs/configuration: one profile a table).

    reference_profile(tmp_path / "config.toml", lms.base_url, hung_after=1.0)   # the console's own API
    ethosce_profile(tmp_path / "config.toml", kit.base_url, poll_interval=0.2)  # a Drupal 7 + Feeds site
    env = profile_env(tmp_path, lms)       # for a subprocess: config, token, private state folder
    cli_env(monkeypatch, tmp_path, lms)    # the same (polling fast), for `main([...])` in this process

The file is written by hand as an admin would (TOML), in the order the settings are given.
"""

from __future__ import annotations

import json
from pathlib import Path


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(str(value))  # a TOML basic string for the plain text used here


def write_profile(config: Path, name: str, settings: dict[str, object], *, default: bool = True) -> Path:
    """A config file holding one profile, `[profiles.NAME]` (and `default_profile = "NAME"` when `default`)."""
    lines = [f'default_profile = "{name}"'] if default else []
    lines.append(f"[profiles.{name}]")
    lines += [f"{key} = {_toml(value)}" for key, value in settings.items()]
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return config


def reference_profile(config: Path, base_url: str, *, name: str = "t", username: str = "admin", default: bool = True,
                      **settings: object) -> Path:
    """A profile for the reference LMS (the console's own API; the token is not in the file)."""
    return write_profile(config, name, {"base_url": base_url, "username": username, **settings}, default=default)


def ethosce_profile(config: Path, base_url: str, *, name: str = "kit", **settings: object) -> Path:
    """A profile for an EthosCE site: the kit's admin and restws accounts (the passwords are not in the file)."""
    return write_profile(config, name, {"kind": "ethosce", "base_url": base_url, "username": "admin",
                                        "restws_username": "restws_console", **settings})


def profile_env(tmp_path: Path, lms, *, token: str | None = None, state: Path | None = None,
                **profile: object) -> dict[str, str]:
    """What points the CLI at this reference LMS: tmp_path/config.toml with one profile (`profile`: see
    reference_profile), the token in IMPORTCONSOLE_TOKEN (the site admin's unless given), a private state
    folder (journal; tmp_path/state unless given)."""
    config = reference_profile(tmp_path / "config.toml", lms.base_url, **profile)
    return {"IMPORTCONSOLE_CONFIG": str(config), "IMPORTCONSOLE_TOKEN": token or lms.admin_token,
            "IMPORTCONSOLE_STATE_DIR": str(state or tmp_path / "state")}


def use_env(monkeypatch, env: dict[str, str]) -> None:
    """Set these variables for this test (monkeypatch undoes them)."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)


def cli_env(monkeypatch, tmp_path: Path, lms, hung_after: float = 1.0, poll: float = 0.2) -> None:
    """Point the CLI at this LMS in this process (`profile_env`), polling fast and calling an import hung after
    `hung_after` seconds."""
    use_env(monkeypatch, profile_env(tmp_path, lms, poll_interval=poll, hung_after=hung_after))
