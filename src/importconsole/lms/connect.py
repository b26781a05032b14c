"""One place turns a profile into a connected LMS backend, for the CLI and the TUI alike.

- `open_backend(profile, credentials)` builds the backend the profile's `kind` names (no I/O);
- `connect(profile, credentials=None)` finds the credentials (environment, keyring, prompt),
  builds the backend and asks the LMS who we are: a refused password or token, an unreachable
  host or an unsafe address all become `ConnectFailed`, whose `str()` is the sentence and whose
  `exit_code` is 3 (the LMS could not be reached or refused us), or 2 when this host holds no
  token or password (`EXIT_NO_SECRET`), wherever it is shown.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from importconsole.lms.errors import LmsError, Unauthorized
from importconsole.lms.models import Me
from importconsole.lms.port import KIND_ETHOSCE, LmsBackend

if TYPE_CHECKING:
    from importconsole.config import Profile
    from importconsole.lms.transport import RetryPolicy
    from importconsole.secrets import Credentials

EXIT_LMS = 3
# No token or password on this host (no keyring entry, no variable, no terminal to ask on): one place
# says which exit code that is, for every command. 2 (a setup problem on this host): 3 is the LMS's
# (README: "the LMS could not be reached or refused us"), and the LMS was not asked.
EXIT_NO_SECRET = 2


class ConnectFailed(Exception):
    """Could not connect: no credentials, an unsafe address, unreachable, refused. str() says
    what and what to do; the CLI exits with `exit_code`."""

    exit_code = EXIT_LMS

    def __init__(self, message: str, *, cause: BaseException | None = None, exit_code: int | None = None):
        super().__init__(message)
        self.cause = cause
        if exit_code is not None:
            self.exit_code = exit_code


def open_backend(profile: Profile, credentials: Credentials, *, retry: RetryPolicy | None = None) -> LmsBackend:
    """The backend for `profile`, not yet connected. Raises ConnectFailed."""
    try:
        if profile.kind == KIND_ETHOSCE:
            return _ethosce_backend(profile, credentials, retry=retry)
        from importconsole.lms.client import LmsClient

        # No token (never from find_credentials) is sent as an empty one: the LMS refuses it (401), a sentence.
        return LmsClient(profile.base_url, credentials.token or "", ca_bundle=profile.ca_bundle,
                         profile=profile.name, retry=retry)
    except LmsError as error:  # an unsafe address, an unreadable CA bundle
        raise ConnectFailed(str(error), cause=error) from None


def _ethosce_backend(profile: Profile, credentials: Credentials, *, retry: RetryPolicy | None = None) -> LmsBackend:
    try:
        from importconsole.lms.ethosce.backend import EthosceBackend
    except ImportError as error:
        raise ConnectFailed(f"Profile {profile.name} is an EthosCE profile, but this build of importconsole cannot "
                            f"speak to EthosCE sites ({error.name} is missing).") from None
    return EthosceBackend(profile, credentials, retry=retry)


def find_credentials(profile: Profile, *, prompt: bool = True, environ: Mapping[str, str] | None = None,
                     ask: Callable[[str], str] | None = None) -> Credentials:
    """The profile's token or passwords: environment, keyring, then a prompt. ConnectFailed if none."""
    from importconsole.secrets import TokenError, get_credentials

    try:
        return get_credentials(profile, prompt=prompt, environ=environ, ask=ask)
    except TokenError as error:
        raise ConnectFailed(str(error), cause=error, exit_code=EXIT_NO_SECRET) from None


async def connect(profile: Profile, credentials: Credentials | None = None, *, prompt: bool = True, retry: RetryPolicy | None = None,
                  check: bool = True) -> LmsBackend:
    """A backend for `profile`, logged in and asked who we are (`check`). Close it with
    `aclose()` or use it with `async with`. Raises ConnectFailed (a sentence, exit code 3)."""
    if credentials is None:
        credentials = find_credentials(profile, prompt=prompt)
    backend = open_backend(profile, credentials, retry=retry)
    if not check:
        return backend
    try:
        await who_am_i(backend)
    except BaseException:
        await backend.aclose()
        raise
    return backend


async def who_am_i(backend: LmsBackend) -> Me:
    """Ask the LMS who we are (an EthosCE backend logs in here). ConnectFailed on any LmsError."""
    try:
        return await backend.me()
    except LmsError as error:
        raise ConnectFailed(str(error) + env_hint(error), cause=error) from None


def env_hint(error: BaseException) -> str:
    """`login` cannot help while a secret comes from the environment: that wins over the keyring.
    Names only the variable of the secret the LMS refused (admin password, restws password, token)."""
    from importconsole.lms.ethosce.errors import LoginRefused, RestwsRefused
    from importconsole.secrets import ENV_VAR, PASSWORD_ENV, RESTWS_PASSWORD_ENV

    if not isinstance(error, Unauthorized):
        return ""
    name = PASSWORD_ENV if isinstance(error, LoginRefused) else RESTWS_PASSWORD_ENV if isinstance(error, RestwsRefused) else ENV_VAR
    if not (os.environ.get(name) or "").strip():
        return ""
    return (f" The secret came from {name}, which wins over the keyring: set a fresh one "
            f"(read -rs {name} && export {name}) or unset it.")


def failure_sentence(error: BaseException) -> tuple[int, str]:
    """(exit code, sentence) for a failure to connect or an LMS error met later on."""
    if isinstance(error, ConnectFailed):
        return error.exit_code, str(error)
    if isinstance(error, LmsError):
        return EXIT_LMS, str(error) + env_hint(error)
    raise TypeError(f"not a connection failure: {type(error).__name__}")
