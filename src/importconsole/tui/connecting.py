"""Turning a config profile into a session, without ever prompting on a terminal the console is
about to take over: a missing token or password opens the Connect screen instead."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from importconsole.tui.session import LmsSession

if TYPE_CHECKING:
    from importconsole.config import Profile
    from importconsole.secrets import Credentials


def session_from_config(config_path: str | None, profile_name: str | None) -> tuple[LmsSession | None, str | None]:
    """(session, None) when a profile and its secrets are at hand, else (None, why not)."""
    from importconsole.config import ConfigError, ConfigMissing, load_config

    try:
        config = load_config(Path(config_path) if config_path else None)
    except ConfigMissing:
        return None, None  # first run: Connect creates the first profile
    except ConfigError as error:
        return None, str(error)
    name = profile_name or config.default_profile
    profiles = config.profiles
    if not profiles:
        return None, None
    if name is None:
        name = next(iter(profiles))
    profile = profiles.get(name)
    if profile is None:
        return None, f"no profile named {name!r} in the config; pick one on the Connect screen"
    credentials, why = credentials_for(profile)
    if credentials is None:
        return None, why
    return session_for(profile, name, credentials), None


def session_for(profile: Profile, name: str, credentials: Credentials | str) -> LmsSession:
    """`credentials`: secrets.Credentials, or the API token as a string."""
    from importconsole.config import state_dir
    from importconsole.secrets import Credentials

    if isinstance(credentials, str):
        credentials = Credentials(token=credentials)
    return LmsSession(profile=name, base_url=str(profile.base_url).rstrip("/"), token=credentials.token or "",
                      ca_bundle=profile.ca_bundle, journal_path=state_dir() / "journal.jsonl",
                      hung_after=profile.hung_after, profile_config=profile, credentials=credentials)


def credentials_for(profile: Profile) -> tuple[Credentials | None, str | None]:
    """(Credentials, None) from the environment or the keyring; never a terminal prompt here."""
    from importconsole import secrets

    try:
        return secrets.get_credentials(profile, prompt=False), None
    except Exception as error:  # NoToken, NoKeyringBackend and friends: their str() is the sentence to show
        kind = "passwords" if profile.kind == "ethosce" else "API token"
        return None, f"{error} Or enter the {kind} on the Connect screen." if str(error) else f"enter the {kind} on the Connect screen"
