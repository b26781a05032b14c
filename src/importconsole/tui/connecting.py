"""Turning a config profile into a session, without ever prompting on a terminal the console is
about to take over: a missing token opens the Connect screen instead."""

from __future__ import annotations

import os
from pathlib import Path

from importconsole.tui.session import LmsSession


def session_from_config(config_path: str | None, profile_name: str | None) -> tuple[LmsSession | None, str | None]:
    """(session, None) when a profile and its token are at hand, else (None, why not)."""
    from importconsole.config import ConfigError, ConfigMissing, load_config

    try:
        config = load_config(Path(config_path) if config_path else None)
    except ConfigMissing:
        return None, None  # first run: Connect creates the first profile
    except ConfigError as error:
        return None, str(error)
    name = profile_name or getattr(config, "default_profile", None)
    profiles = getattr(config, "profiles", {}) or {}
    if not profiles:
        return None, None
    if name is None:
        name = next(iter(profiles))
    profile = profiles.get(name)
    if profile is None:
        return None, f"no profile named {name!r} in the config; pick one on the Connect screen"
    token, why = token_for(profile)
    if token is None:
        return None, why
    return session_for(profile, name, token), None


def session_for(profile, name: str, token: str) -> LmsSession:
    from importconsole.config import state_dir

    return LmsSession(profile=name, base_url=str(profile.base_url).rstrip("/"), token=token,
                      ca_bundle=getattr(profile, "ca_bundle", None), journal_path=state_dir() / "journal.jsonl",
                      hung_after=getattr(profile, "hung_after", None))


def token_for(profile) -> tuple[str | None, str | None]:
    """The token from IMPORTCONSOLE_TOKEN or the keyring; never a terminal prompt here."""
    if os.environ.get("IMPORTCONSOLE_TOKEN"):
        return os.environ["IMPORTCONSOLE_TOKEN"], None
    from importconsole import secrets

    try:
        token = secrets.get_token(profile, prompt=False)
    except TypeError:  # a get_token without the prompt switch: only ask it when no terminal prompt can happen
        return None, "enter the API token on the Connect screen"
    except Exception as error:  # NoKeyringBackend and friends: their str() is the sentence to show
        return None, str(error)
    return (token, None) if token else (None, "no token stored for this profile; enter it on the Connect screen")
