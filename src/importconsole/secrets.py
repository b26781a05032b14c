"""The API token: $IMPORTCONSOLE_TOKEN, else the OS keyring, else a prompt on a terminal.
An EthosCE profile has two passwords instead (the site admin's, the restws account's), found the
same way: $IMPORTCONSOLE_PASSWORD / $IMPORTCONSOLE_RESTWS_PASSWORD, keyring, prompt.

Most SSH jump hosts have no Secret Service, so keyring has no working backend there; we say so in
one sentence and offer the environment variable. A locked keyring can block forever waiting for
an unlock dialog nobody sees over SSH, so every keyring call runs in a thread with a time limit.
The token is registered with the crash handler so no crash text can carry it.
"""

from __future__ import annotations

import getpass as _getpass
import os
import sys
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from collections.abc import Callable, Mapping

from importconsole import crash

if TYPE_CHECKING:  # config imports nothing from here, but the profile is only a type to the secrets
    from importconsole.config import Profile

SERVICE = "importconsole"
ENV_VAR = "IMPORTCONSOLE_TOKEN"
PASSWORD_ENV = "IMPORTCONSOLE_PASSWORD"
RESTWS_PASSWORD_ENV = "IMPORTCONSOLE_RESTWS_PASSWORD"
KEYRING_TIMEOUT = 5.0


class TokenError(Exception):
    """Base: str() is the sentence to show."""


class NoKeyringBackend(TokenError):
    pass


class KeyringUnavailable(TokenError):
    """A backend exists but failed or did not answer (locked)."""


class NoToken(TokenError):
    pass


def _profile_parts(profile: Profile | str, username: str | None) -> tuple[str, str]:
    """(profile name, user): `profile` is a config Profile, or a profile's name given with `username`."""
    name = profile if isinstance(profile, str) else profile.name
    user = username or (None if isinstance(profile, str) else profile.username)
    if not user:
        raise NoToken(f"profile {name!r} has no username; add username to [profiles.{name}] in the config")
    return str(name), str(user)


def _env_hint(env_var: str = ENV_VAR, what: str = "the token") -> str:
    return f"set {what} for this session with: read -rs {env_var} && export {env_var}"


def _backend() -> Any:  # a keyring backend or None
    import keyring
    from keyring.backends import fail, null

    backend = keyring.get_keyring()
    chained = getattr(backend, "backends", None)
    if chained is not None and not chained:
        return None
    if isinstance(backend, (fail.Keyring, null.Keyring)):
        return None
    return backend


def _find_backend(timeout: float) -> Any:
    """The working backend or None. Finding it can itself block (D-Bus asking a Secret Service that
    never answers), so it is bounded too: KeyringUnavailable after `timeout`."""
    try:
        return _bounded(_backend, "find the system keyring", timeout)
    except NoKeyringBackend:
        return None


def keyring_available(timeout: float = KEYRING_TIMEOUT) -> bool:
    try:
        return _find_backend(timeout) is not None
    except TokenError:
        return False


def _bounded(call: Callable[[], Any], what: str, timeout: float) -> Any:
    """Run a keyring call in a daemon thread; give up (not hang) after `timeout` seconds."""
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["value"] = call()
        except BaseException as exc:  # reported below, as a sentence
            result["error"] = exc

    worker = threading.Thread(target=run, name="keyring", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise KeyringUnavailable(
            f"The system keyring did not answer within {timeout:g} s while trying to {what} (is it locked?). "
            f"Unlock it, or {_env_hint()}."
        )
    if "error" in result:
        exc = result["error"]
        from keyring.errors import NoKeyringError

        if isinstance(exc, NoKeyringError):
            raise NoKeyringBackend(_no_backend_sentence()) from None
        raise KeyringUnavailable(
            f"The system keyring failed while trying to {what} ({type(exc).__name__}). {'Instead, ' + _env_hint()}."
        ) from None
    return result.get("value")


def _no_backend_sentence(what: str = "the token", hint: str | None = None) -> str:
    return (f"This machine has no working keyring (common on SSH hosts), so {what} cannot be stored; "
            f"instead {hint or _env_hint()}.")


def no_backend_passwords_sentence() -> str:
    """An EthosCE profile's two passwords, where no keyring can hold them: the two variables named."""
    return _no_backend_sentence("the passwords", f"{_env_hint(PASSWORD_ENV, 'the admin password')} and "
                                                 f"{_env_hint(RESTWS_PASSWORD_ENV, 'the restws password')}")


@dataclass(frozen=True)
class SecretSpec:
    """One secret of a profile: where it comes from and how sentences name it."""

    env_var: str
    user: str  # the account it belongs to (the keyring entry is PROFILE:USER)
    what: str  # "API token", "password"
    whose: str  # "for jdoe on profile prod"

    @property
    def the(self) -> str:
        return f"the {self.what}"


def _get_secret(name: str, spec: SecretSpec, *, prompt: bool, environ: Mapping[str, str] | None, timeout: float,
                ask: Callable[[str], str] | None) -> str:
    env = os.environ if environ is None else environ
    value = (env.get(spec.env_var) or "").strip()
    if value:
        crash.register_secret(value)
        return value
    why_not_keyring = ""
    hint = _env_hint(spec.env_var, spec.the)
    try:
        backend = _find_backend(timeout)
    except TokenError as exc:
        backend, why_not_keyring = None, f" {exc}"
    if backend is not None:
        import keyring

        try:
            value = _bounded(lambda: keyring.get_password(SERVICE, f"{name}:{spec.user}"), f"read {spec.the}", timeout) or ""
        except TokenError as exc:
            why_not_keyring = f" {exc}"
        if value:
            crash.register_secret(value)
            return value
    elif not why_not_keyring:
        why_not_keyring = " This machine has no working keyring (common on SSH hosts)."
    if prompt and (ask is not None or (sys.stdin.isatty() and sys.stderr.isatty())):
        reader = ask or (lambda text: _getpass.getpass(text, stream=sys.stderr))
        value = (reader(f"{spec.what[0].upper()}{spec.what[1:]} {spec.whose} (not shown): ") or "").strip()
        if value:
            crash.register_secret(value)
            return value
    missing = f"No {spec.what} {spec.whose}."
    if backend is None and not why_not_keyring.startswith(" The system keyring"):
        # No keyring at all: `login` could not store anything, so only the variable is offered.
        raise NoToken(f"{missing}{why_not_keyring} Instead, {hint}.")
    raise NoToken(f"{missing}{why_not_keyring} Run `importconsole login --profile {name}`, or {hint}.")


def get_token(profile: Profile | str, *, username: str | None = None, prompt: bool = True,
              environ: Mapping[str, str] | None = None, timeout: float = KEYRING_TIMEOUT,
              ask: Callable[[str], str] | None = None) -> str:
    """The token for `profile` (a config.Profile, or a name with `username`).

    NoToken when there is none and no terminal to ask on (or prompt=False)."""
    env = os.environ if environ is None else environ
    token = (env.get(ENV_VAR) or "").strip()
    if token:  # the variable wins even for a profile without a username
        crash.register_secret(token)
        return token
    name, user = _profile_parts(profile, username)
    spec = SecretSpec(ENV_VAR, user, "API token", f"for {user} on profile {name}")
    return _get_secret(name, spec, prompt=prompt, environ=env, timeout=timeout, ask=ask)


def password_specs(profile: Profile) -> tuple[SecretSpec, SecretSpec]:
    """An EthosCE profile's two secrets: the site admin's password, the restws account's."""
    name, user = _profile_parts(profile, None)
    restws = profile.restws_username
    if not restws:
        raise NoToken(f"profile {name!r} has no restws_username; add it to [profiles.{name}] in the config")
    return (SecretSpec(PASSWORD_ENV, user, "password", f"of the site admin {user} on profile {name}"),
            SecretSpec(RESTWS_PASSWORD_ENV, restws, "restws password", f"of the web-services account {restws} on profile {name}"))


@dataclass(frozen=True)
class Credentials:
    """What a profile needs to connect, in memory only (repr hides every value)."""

    token: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    restws_password: str | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        held = [n for n in ("token", "password", "restws_password") if getattr(self, n)]
        return f"Credentials(<{', '.join(held) or 'nothing'} hidden>)"


def get_credentials(profile: Profile, *, prompt: bool = True, environ: Mapping[str, str] | None = None,
                    timeout: float = KEYRING_TIMEOUT, ask: Callable[[str], str] | None = None) -> Credentials:
    """Everything `profile` needs: the API token, or an EthosCE profile's two passwords."""
    if profile.kind != "ethosce":
        return Credentials(token=get_token(profile, prompt=prompt, environ=environ, timeout=timeout, ask=ask))
    admin, restws = password_specs(profile)
    name = profile.name
    first = _get_secret(name, admin, prompt=prompt, environ=environ, timeout=timeout, ask=ask)
    second = _get_secret(name, restws, prompt=prompt, environ=environ, timeout=timeout, ask=ask)
    return Credentials(password=first, restws_password=second)


def store_passwords(profile: Profile, password: str, restws_password: str, *, timeout: float = KEYRING_TIMEOUT) -> str:
    """Save an EthosCE profile's two passwords in the keyring; returns a sentence."""
    admin, restws = password_specs(profile)
    name = profile.name
    for spec, value in ((admin, password), (restws, restws_password)):
        value = value.strip()
        if not value:
            raise NoToken(f"The {spec.what} {spec.whose} was empty; nothing was stored.")
        crash.register_secret(value)
    if _find_backend(timeout) is None:
        raise NoKeyringBackend(no_backend_passwords_sentence())
    import keyring

    for spec, value in ((admin, password), (restws, restws_password)):
        _bounded(lambda: keyring.set_password(SERVICE, f"{name}:{spec.user}", value.strip()), f"store {spec.the}", timeout)
    return f"Passwords for {admin.user} and {restws.user} on profile {name} stored in the system keyring."


def store_token(profile: Profile | str, token: str, *, username: str | None = None, timeout: float = KEYRING_TIMEOUT) -> str:
    """Save in the keyring; returns where it went (a sentence). NoKeyringBackend offers the env var."""
    name, user = _profile_parts(profile, username)
    token = token.strip()
    if not token:
        raise NoToken("The token was empty; nothing was stored.")
    crash.register_secret(token)
    if _find_backend(timeout) is None:
        raise NoKeyringBackend(_no_backend_sentence())
    import keyring

    _bounded(lambda: keyring.set_password(SERVICE, f"{name}:{user}", token), "store the token", timeout)
    return f"Token for {user} on profile {name} stored in the system keyring."


def delete_token(profile: Profile | str, *, username: str | None = None, timeout: float = KEYRING_TIMEOUT) -> bool:
    """Remove the keyring entry; False when there was none."""
    name, user = _profile_parts(profile, username)
    if _find_backend(timeout) is None:
        raise NoKeyringBackend(_no_backend_sentence())
    import keyring
    from keyring.errors import PasswordDeleteError

    restws = profile.restws_username if not isinstance(profile, str) and profile.kind == "ethosce" else None
    users = [user] + ([restws] if restws else [])

    def delete() -> bool:
        removed = False
        for who in users:  # an EthosCE profile keeps two passwords
            try:
                keyring.delete_password(SERVICE, f"{name}:{who}")
                removed = True
            except PasswordDeleteError:
                pass
        return removed

    return bool(_bounded(delete, "remove the token", timeout))
