"""How the console talks HTTP to any LMS: the reference API client, the Drupal session and the restws reader.

Why it looks the way it does:
- One URL rule (`check_site_url`): https, or plain http:// only to this machine (loopback), no
  credentials in the address. A secret is never sent anywhere else.
- TLS verification is always on; a CA bundle can be configured. There is no switch to turn it off.
- No redirect is followed (it could carry the token somewhere else), and plain http never goes
  through a proxy from the environment.
- Retries: capped exponential backoff with full jitter; `Retry-After` (seconds or HTTP date) is
  honoured, clamped.
- A secret lives in a `Secret`: never in a repr, a URL, a log line or an exception message.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import random
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Self

import httpx

from importconsole import __version__
from importconsole.lms.backoff import capped_delay
from importconsole.lms.errors import CertificateInvalid, InsecureUrl, LmsError, Unreachable

API_PREFIX = "/api/v1"
RETRY_STATUSES = frozenset({429, 502, 503, 504})


# ---- the URL rule -------------------------------------------------------------------------------

def is_loopback(host: str) -> bool:
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_site_url(base_url: str, secret: str = "the API token", *, place: str = "LMS",
                   example: str = "https://lms.example.org") -> httpx.URL:
    """The site's address if it is safe to send a secret to (https, or http to this machine only).
    One rule for the reference API and the EthosCE site (`place`, `example` only word it)."""
    try:
        url = httpx.URL(base_url.strip())
    except Exception:
        raise InsecureUrl(f"The {place} address {base_url!r} is not a URL; use {example}") from None
    if url.scheme not in ("https", "http") or not url.host:
        raise InsecureUrl(f"The {place} address {base_url!r} must start with https:// and name a host, e.g. {example}")
    if url.userinfo:
        raise InsecureUrl(f"Put no user name or password in the {place} address; {secret} comes from the keyring or the environment.")
    if url.scheme == "http" and not is_loopback(url.host):
        raise InsecureUrl(
            f"Refusing plain http:// to {url.host}: {secret} would cross the network unencrypted. "
            f"Use https://{url.host}{url.path if url.path != '/' else ''} (plain http is allowed only to this machine)."
        )
    return url.copy_with(query=None, fragment=None)


def check_base_url(base_url: str) -> httpx.URL:
    """The base URL as the API root (`.../api/v1`), or InsecureUrl with what to do."""
    url = check_site_url(base_url)
    path = url.path.rstrip("/")
    if not path.endswith(API_PREFIX):
        path = path + API_PREFIX
    return url.copy_with(path=path)


# ---- TLS -----------------------------------------------------------------------------------------

def tls_context(ca_bundle: str | os.PathLike[str] | None) -> ssl.SSLContext:
    """The system's certificates, or the profile's CA bundle; a bundle that cannot be read is a sentence."""
    if ca_bundle is None:
        return ssl.create_default_context()
    path = Path(ca_bundle).expanduser()
    if not path.is_file():
        raise CertificateInvalid(f"The CA bundle {path} does not exist; fix ca_bundle in the profile or remove it to use the system's certificates.")
    try:
        return ssl.create_default_context(cafile=str(path))
    except ssl.SSLError as exc:
        raise CertificateInvalid(f"The CA bundle {path} could not be read as PEM certificates ({exc.reason or exc}); fix ca_bundle in the profile.") from None


def tls_failure(exc: BaseException) -> str | None:
    """Why the certificate was not trusted, when that is what `exc` (or one of its causes) says."""
    seen = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, ssl.SSLCertVerificationError):
            return cur.verify_message or str(cur)
        if isinstance(cur, ssl.SSLError):
            return cur.reason or str(cur)
        if "CERTIFICATE_VERIFY_FAILED" in str(cur):
            return "certificate verify failed"
        cur = cur.__cause__ or cur.__context__
    return None


def http_client(url: httpx.URL, *, ca_bundle: str | os.PathLike[str] | None, timeout: float | httpx.Timeout,
                transport: httpx.AsyncBaseTransport | None, headers: Mapping[str, str] | None = None,
                auth: httpx.Auth | None = None) -> httpx.AsyncClient:
    """An httpx client with the project's rules: verified TLS, no redirects followed, no proxy for http."""
    if not isinstance(timeout, httpx.Timeout):
        timeout = httpx.Timeout(timeout, connect=min(10.0, timeout))
    return httpx.AsyncClient(
        base_url=url,
        headers={"User-Agent": f"importconsole/{__version__}", **(headers or {})},
        timeout=timeout,
        verify=tls_context(ca_bundle),
        transport=transport,
        auth=auth,
        follow_redirects=False,  # a redirect could carry a secret somewhere else, or be the login page: read, never followed
        # Plain http is for this machine only: an HTTP_PROXY from the environment would carry the
        # secret across the network unencrypted. https may use a proxy (a CONNECT tunnel).
        trust_env=url.scheme == "https",
    )


def unreachable(host: str, exc: BaseException, action: str, *, place: str = "LMS") -> LmsError:
    """The sentence for a request that got no answer: an untrusted certificate, or no connection."""
    tls = tls_failure(exc)
    if tls:
        return CertificateInvalid(
            f"Refusing to talk to {host}: its TLS certificate is not trusted ({tls}). "
            f"Verification cannot be turned off. If your {place} uses its own certificate authority, "
            "set ca_bundle = \"/path/to/ca.pem\" in the profile."
        )
    if isinstance(exc, httpx.TimeoutException):
        why = "it did not answer in time"
    elif isinstance(exc, httpx.ConnectError):
        why = "the connection was refused or the host could not be found"
    else:
        why = "the connection kept dropping"
    return Unreachable(f"Could not reach the {place} at {host} to {action}: {why}. Check the address and your network, then try again.")


# ---- secrets and the owned client ---------------------------------------------------------------

class Secret:
    """Keeps a token or password out of reprs, tracebacks with locals and debuggers' pretty-printers."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "<token hidden>"

    __str__ = __repr__


class OwnsHttpClient:
    """Owns one httpx client (`self._http`): `async with` closes it. The reference client, the
    Drupal session and the restws reader each hold one."""

    _http: httpx.AsyncClient

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()


# ---- the retry policy -----------------------------------------------------------------------------

@dataclass
class RetryPolicy:
    """Capped exponential backoff with full jitter. `sleep` and `random` are injectable so tests
    can run the retry paths in milliseconds."""

    attempts: int = 6
    base: float = 0.5
    cap: float = 10.0
    retry_after_cap: float = 60.0
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    random: Callable[[], float] = random.random
    # Told (seconds, refused) before each wait: `refused` when the connection was refused (the site
    # may be down), not an LMS that is busy or slow; the CLI says which on stderr.
    announce: Callable[[float, bool], None] | None = None

    async def wait(self, seconds: float, failure: BaseException | None = None) -> None:
        if self.announce is not None:
            self.announce(seconds, connection_refused(failure))
        await self.sleep(seconds)

    def backoff(self, attempt: int) -> float:
        return capped_delay(attempt, base=self.base, cap=self.cap, jitter=self.random())

    def delay(self, attempt: int, retry_after: str | None) -> float:
        honoured = parse_retry_after(retry_after, self.retry_after_cap)
        return honoured if honoured is not None else self.backoff(attempt)


def connection_refused(error: BaseException | None) -> bool:
    """The connection was refused (nothing listens: the site may be down); httpx hides the OS's
    ConnectionRefusedError a few causes deep ("All connection attempts failed")."""
    seen = 0
    while error is not None and seen < 10:
        if isinstance(error, ConnectionRefusedError):
            return True
        error, seen = error.__cause__ or error.__context__, seen + 1
    return False


def parse_retry_after(value: str | None, cap: float, *, now: float | None = None) -> float | None:
    """Seconds to wait, clamped to [0, cap]; None for a missing or unreadable value (the caller
    falls back to backoff)."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None or when.tzinfo is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return None
    return max(0.0, min(cap, seconds))
