"""Turning a config profile into a session, without ever prompting on a terminal the console is
about to take over: a missing token or password opens the Connect screen instead."""

from __future__ import annotations

from pathlib import Path

from importconsole.tui.session import LmsSession


def session_from_config(config_path: str | None, profile_name: str | None) -> tuple[LmsSession | None, str | None]:
    """(session, None) when a profile and its secrets are at hand, else (None, why not)."""
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
    credentials, why = credentials_for(profile)
    if credentials is None:
        return None, why
    return session_for(profile, name, credentials), None


def session_for(profile, name: str, credentials) -> LmsSession:
    """`credentials`: secrets.Credentials, or the API token as a string."""
    from importconsole.config import state_dir
    from importconsole.secrets import Credentials

    if isinstance(credentials, str):
        credentials = Credentials(token=credentials)
    return LmsSession(profile=name, base_url=str(profile.base_url).rstrip("/"), token=credentials.token or "",
                      ca_bundle=getattr(profile, "ca_bundle", None), journal_path=state_dir() / "journal.jsonl",
                      hung_after=getattr(profile, "hung_after", None), profile_config=profile, credentials=credentials)


def credentials_for(profile):
    """(Credentials, None) from the environment or the keyring; never a terminal prompt here."""
    from importconsole import secrets

    try:
        return secrets.get_credentials(profile, prompt=False), None
    except Exception as error:  # NoToken, NoKeyringBackend and friends: their str() is the sentence to show
        kind = "passwords" if getattr(profile, "kind", "") == "ethosce" else "API token"
        return None, f"{error} Or enter the {kind} on the Connect screen." if str(error) else f"enter the {kind} on the Connect screen"
