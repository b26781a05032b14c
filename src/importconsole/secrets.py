"""The API token: $IMPORTCONSOLE_TOKEN, else the OS keyring, else a prompt on a terminal.

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
from typing import Any, Callable

from importconsole import crash

SERVICE = "importconsole"
ENV_VAR = "IMPORTCONSOLE_TOKEN"
KEYRING_TIMEOUT = 5.0


class TokenError(Exception):
    """Base: str() is the sentence to show."""


class NoKeyringBackend(TokenError):
    pass


class KeyringUnavailable(TokenError):
    """A backend exists but failed or did not answer (locked)."""


class NoToken(TokenError):
    pass


def _profile_parts(profile: Any, username: str | None) -> tuple[str, str]:
    name = getattr(profile, "name", profile)
    user = username or getattr(profile, "username", None)
    if not user:
        raise NoToken(f"profile {name!r} has no username; add username to [profiles.{name}] in the config")
    return str(name), str(user)


def keyring_username(profile: Any, username: str | None = None) -> str:
    """One keyring entry per profile and LMS user: `PROFILE:USER`."""
    name, user = _profile_parts(profile, username)
    return f"{name}:{user}"


def _env_hint() -> str:
    return f"set the token for this session with: read -rs {ENV_VAR} && export {ENV_VAR}"


def _backend():
    import keyring
    from keyring.backends import fail, null

    backend = keyring.get_keyring()
    chained = getattr(backend, "backends", None)
    if chained is not None and not chained:
        return None
    if isinstance(backend, (fail.Keyring, null.Keyring)):
        return None
    return backend


def _find_backend(timeout: float):
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


def _no_backend_sentence() -> str:
    return (f"This machine has no working keyring (common on SSH hosts), so the token cannot be stored; "
            f"instead {_env_hint()}.")


def get_token(profile: Any, *, username: str | None = None, prompt: bool = True,
              environ: dict | None = None, timeout: float = KEYRING_TIMEOUT,
              ask: Callable[[str], str] | None = None) -> str:
    """The token for `profile` (a config.Profile, or a name with `username`).

    NoToken when there is none and no terminal to ask on (or prompt=False)."""
    env = os.environ if environ is None else environ
    token = (env.get(ENV_VAR) or "").strip()
    if token:
        crash.register_secret(token)
        return token
    name, user = _profile_parts(profile, username)
    why_not_keyring = ""
    try:
        backend = _find_backend(timeout)
    except TokenError as exc:
        backend, why_not_keyring = None, f" {exc}"
    if backend is not None:
        import keyring

        try:
            token = _bounded(lambda: keyring.get_password(SERVICE, f"{name}:{user}"), "read the token", timeout) or ""
        except TokenError as exc:
            why_not_keyring = f" {exc}"
        if token:
            crash.register_secret(token)
            return token
    elif not why_not_keyring:
        why_not_keyring = " This machine has no working keyring (common on SSH hosts)."
    if prompt and (ask is not None or (sys.stdin.isatty() and sys.stderr.isatty())):
        reader = ask or (lambda text: _getpass.getpass(text, stream=sys.stderr))
        token = (reader(f"API token for {user} on profile {name} (not shown): ") or "").strip()
        if token:
            crash.register_secret(token)
            return token
    if backend is None and not why_not_keyring.startswith(" The system keyring"):
        # No keyring at all: `login` could not store anything, so only the variable is offered.
        raise NoToken(f"No API token for profile {name!r} (user {user}).{why_not_keyring} Instead, {_env_hint()}.")
    raise NoToken(
        f"No API token for profile {name!r} (user {user}).{why_not_keyring} "
        f"Run `importconsole login --profile {name}`, or {_env_hint()}."
    )


def store_token(profile: Any, token: str, *, username: str | None = None, timeout: float = KEYRING_TIMEOUT) -> str:
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


def delete_token(profile: Any, *, username: str | None = None, timeout: float = KEYRING_TIMEOUT) -> bool:
    """Remove the keyring entry; False when there was none."""
    name, user = _profile_parts(profile, username)
    if _find_backend(timeout) is None:
        raise NoKeyringBackend(_no_backend_sentence())
    import keyring
    from keyring.errors import PasswordDeleteError

    def delete() -> bool:
        try:
            keyring.delete_password(SERVICE, f"{name}:{user}")
            return True
        except PasswordDeleteError:
            return False

    return bool(_bounded(delete, "remove the token", timeout))
