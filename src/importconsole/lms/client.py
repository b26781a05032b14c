"""The LMS API client (docs/api.md): one async client per run.

Why it looks the way it does:
- TLS verification is always on; a CA bundle can be configured. There is no switch to turn it
  off, and plain http:// is allowed only to this machine (loopback).
- Reads are retried on connection failures, timeouts, 429, 5xx, with capped exponential backoff
  and full jitter; `Retry-After` (seconds or HTTP date) is honoured, clamped.
- POST /imports is only ever retried with the SAME Idempotency-Key, and after an unknown outcome
  (500, dropped connection, unreadable 200) the client asks the server what exists before it
  sends anything again. That is what makes "exactly one import" hold whatever the network does.
- The token lives in one header. It is never part of a URL, a log line or an exception message.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import json
import logging
import os
import random
import ssl
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Self

import httpx

from importconsole import __version__
from importconsole.lms.backoff import capped_delay
from importconsole.lms.errors import (
    CertificateInvalid,
    FileChangedDuringUpload,
    Forbidden,
    IdempotencyInFlight,
    IdempotencyMismatch,
    ImporterLocked,
    InsecureUrl,
    InvalidRequest,
    LmsError,
    LockMismatch,
    NotFound,
    RateLimited,
    ServerError,
    TooManyKeys,
    FileTooLarge,
    Unauthorized,
    UnknownOutcome,
    Unreachable,
)
from importconsole.lms.port import REFERENCE_CAPABILITIES, Capabilities
from importconsole.lms.models import (
    Course,
    CourseLookup,
    CreditRecord,
    CreditType,
    Enrollment,
    Import,
    Lock,
    Me,
    Page,
    ParsRecord,
    QueueEntry,
    Remaining,
    RowResult,
    ServerEvent,
    UnlockResult,
    User,
    UserLookup,
)

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
MAX_KEYS = 1000  # the API's batch limit for lookups
RETRY_STATUSES = frozenset({429, 502, 503, 504})
UPLOAD_CHUNK = 64 * 1024

ProgressCallback = Callable[[int, int], None]  # (bytes sent, bytes total)


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


def is_loopback(host: str) -> bool:
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_base_url(base_url: str) -> httpx.URL:
    """The base URL as the API root (`.../api/v1`), or InsecureUrl with what to do."""
    url = check_site_url(base_url)
    path = url.path.rstrip("/")
    if not path.endswith(API_PREFIX):
        path = path + API_PREFIX
    return url.copy_with(path=path)


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


def _tls_context(ca_bundle: str | os.PathLike | None) -> ssl.SSLContext:
    if ca_bundle is None:
        return ssl.create_default_context()
    path = Path(ca_bundle).expanduser()
    if not path.is_file():
        raise CertificateInvalid(f"The CA bundle {path} does not exist; fix ca_bundle in the profile or remove it to use the system's certificates.")
    try:
        return ssl.create_default_context(cafile=str(path))
    except ssl.SSLError as exc:
        raise CertificateInvalid(f"The CA bundle {path} could not be read as PEM certificates ({exc.reason or exc}); fix ca_bundle in the profile.") from None


def _tls_failure(exc: BaseException) -> str | None:
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


class _Secret:
    """Keeps the token out of reprs, tracebacks with locals and debuggers' pretty-printers."""

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


@dataclass
class SubmitReceipt:
    """What happened to one POST /imports: the import, and how we know it is the only one."""

    import_: Import
    idempotency_key: str
    created: bool  # 201 on our request (False: the server already had it, or we found it)
    reconciled: bool = False  # found by asking GET /imports?idempotency_key= after an unknown outcome
    attempts: int = 1
    notes: list[str] = field(default_factory=list)


class LmsClient(OwnsHttpClient):
    """`async with LmsClient(base_url, token) as lms: await lms.me()`."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        ca_bundle: str | os.PathLike | None = None,
        timeout: float | httpx.Timeout = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy | None = None,
        profile: str | None = None,
        upload_timeout: float | None = None,
    ):
        self.api_url = check_base_url(base_url)
        self.base_url = str(self.api_url)
        self.profile = profile
        self.username: str | None = None  # the LMS user, once me() has asked
        self.retry = retry or RetryPolicy()
        self._token = _Secret(token)
        from importconsole import crash

        crash.register_secret(token)  # whoever built the client, crash text never shows the token
        if isinstance(timeout, httpx.Timeout):
            self._timeout = timeout
        else:
            self._timeout = httpx.Timeout(timeout, connect=min(10.0, timeout))
        self._upload_timeout = upload_timeout
        verify = _tls_context(ca_bundle)
        self._http = httpx.AsyncClient(
            base_url=self.api_url,
            headers={"Authorization": f"Bearer {token}", "User-Agent": f"importconsole/{__version__}", "Accept": "application/json"},
            timeout=self._timeout,
            verify=verify,
            transport=transport,
            follow_redirects=False,  # a redirect could carry the token somewhere else
            # Plain http is for this machine only: an HTTP_PROXY from the environment would carry the
            # token across the network unencrypted. https may use a proxy (a CONNECT tunnel).
            trust_env=self.api_url.scheme == "https",
        )

    def __repr__(self) -> str:
        return f"LmsClient({self.base_url!r}, profile={self.profile!r})"

    @property
    def capabilities(self) -> Capabilities:
        """The console's own API offers everything the operations use (lms.port)."""
        return REFERENCE_CAPABILITIES

    @property
    def host(self) -> str:
        return self.api_url.host

    # ---- the error sentences -------------------------------------------------------------

    def _login_hint(self) -> str:
        profile = f" --profile {self.profile}" if self.profile else ""
        return f"importconsole login{profile}"

    def _error_for(self, resp: httpx.Response, action: str) -> LmsError:
        try:
            body = resp.json()
            if not isinstance(body, dict):
                body = {}
        except Exception:
            body = {}
        server_msg = str(body.get("message") or "").strip()
        code = body.get("error")
        status = resp.status_code
        said = f" The LMS said: {server_msg}" if server_msg else ""
        if 300 <= status < 400:
            where = resp.headers.get("Location", "another address")
            return ServerError(f"The LMS redirected the request to {where} while trying to {action}; the token is not sent "
                               "after a redirect. Set base_url in the profile to the LMS's final https:// address.",
                               status=status, code=code, detail=body)
        if status == 401:
            return Unauthorized(
                f"The LMS at {self.host} did not accept the API token (401) while trying to {action}. "
                f"Log in again: {self._login_hint()}",
                status=status, code=code, detail=body,
            )
        if status == 403:
            role = body.get("role_needed")
            need = f"it needs the {role} role" if role else "your role may not do it"
            return Forbidden(f"Your LMS account may not {action}: {need}. Ask a site admin.{said}", role_needed=role, status=status, code=code, detail=body)
        if status == 404:
            return NotFound(f"Not found while trying to {action}.{said}", status=status, code=code, detail=body)
        if status == 423:
            lock = Lock.from_json(body["lock"]) if isinstance(body.get("lock"), dict) else None
            if lock is not None and lock.import_id is not None:
                who = f" (started by {lock.held_by}" + (f" at {lock.since})" if lock.since else ")") if lock.held_by else ""
                msg = (f"The {lock.importer} importer is locked by import {lock.import_id}{who}. "
                       f"Wait for it to finish, or if it is hung, unlock it (importconsole unlock {lock.import_id}) and submit again.")
            else:
                msg = f"The importer is locked by another import; wait for it to finish or unlock it.{said}"
            return ImporterLocked(msg, lock=lock, status=status, code=code, detail=body)
        if status == 409 and code == "lock_mismatch":
            lock = Lock.from_json(body["lock"]) if isinstance(body.get("lock"), dict) else None
            now = lock.describe() if lock else "the lock changed"
            return LockMismatch(f"Unlock refused: that import does not hold the lock now ({now}). Nothing was unlocked.", lock=lock, status=status, code=code, detail=body)
        if status == 409:
            return IdempotencyInFlight(f"The LMS is still handling the same upload; waiting.{said}", status=status, code=code, detail=body)
        if status == 422 and code == "idempotency_mismatch":
            return IdempotencyMismatch(
                "The LMS says this upload's idempotency key was already used for a different file. "
                "Nothing new was sent. This is a bug in importconsole: please report it with the journal entry (importconsole journal).",
                status=status, code=code, detail=body,
            )
        if status == 422:
            fld = body.get("field")
            where = f" (field {fld})" if fld else ""
            return InvalidRequest(f"The LMS refused the request to {action}{where}.{said}", status=status, code=code, detail=body)
        if status == 413 and code == "file_too_large":
            return FileTooLarge(f"The LMS refused the file for its size; nothing was imported.{said}",
                                status=status, code=code, detail=body)
        if status == 413:
            return TooManyKeys(f"Too many keys in one request to {action} (the limit is {MAX_KEYS}).{said}", status=status, code=code, detail=body)
        if status == 429:
            return RateLimited(f"The LMS kept asking us to slow down (429) while trying to {action}; try again in a few minutes.", status=status, code=code, detail=body)
        return ServerError(f"The LMS answered {status} while trying to {action}; try again later, and tell the LMS team if it persists.{said}", status=status, code=code, detail=body)

    def _unreachable(self, exc: BaseException, action: str) -> LmsError:
        tls = _tls_failure(exc)
        if tls:
            return CertificateInvalid(
                f"Refusing to talk to {self.host}: its TLS certificate is not trusted ({tls}). "
                "Verification cannot be turned off. If your LMS uses its own certificate authority, "
                "set ca_bundle = \"/path/to/ca.pem\" in the profile."
            )
        if isinstance(exc, httpx.TimeoutException):
            why = "it did not answer in time"
        elif isinstance(exc, httpx.ConnectError):
            why = "the connection was refused or the host could not be found"
        else:
            why = "the connection kept dropping"
        return Unreachable(f"Could not reach the LMS at {self.host} to {action}: {why}. Check the address and your network, then try again.")

    # ---- the request loop for reads (safe to repeat) -------------------------------------

    async def _get_json(self, path: str, action: str, *, params: dict | None = None) -> Any:
        return await self._safe("GET", path, action, params=params)

    async def _safe(self, method: str, path: str, action: str, *, params: dict | None = None, json_body: Any = None, raw: bool = False):
        """A request that changes nothing on the LMS (GETs and the lookups): retried freely."""
        params = {k: v for k, v in (params or {}).items() if v is not None}
        last_exc: LmsError | None = None
        for attempt in range(self.retry.attempts):
            retry_after, failure = None, None
            try:
                resp = await self._http.request(method, path, params=params, json=json_body)
            except httpx.RequestError as exc:
                failure, last_exc = exc, self._unreachable(exc, action)
                if isinstance(last_exc, CertificateInvalid):
                    raise last_exc from None
            else:
                if resp.status_code < 300:
                    if raw:
                        return resp
                    try:
                        return resp.json()
                    except ValueError:
                        last_exc = ServerError(f"The LMS sent an answer that could not be read while trying to {action}; try again later.")
                elif resp.status_code in RETRY_STATUSES or resp.status_code >= 500:
                    last_exc = self._error_for(resp, action)
                    retry_after = resp.headers.get("Retry-After")
                else:
                    raise self._error_for(resp, action)
            if attempt + 1 < self.retry.attempts:
                wait = self.retry.delay(attempt, retry_after)
                log.debug("%s %s: attempt %d failed (%s); retrying in %.2f s", method, path, attempt + 1, last_exc.status or "no answer", wait)
                await self.retry.wait(wait, failure)
        assert last_exc is not None
        raise last_exc

    # ---- endpoints -----------------------------------------------------------------------

    async def me(self) -> Me:
        me = Me.from_json(await self._get_json("/me", "check who you are logged in as"))
        self.username = me.username  # the journal records who acted
        return me

    async def credit_types(self) -> list[CreditType]:
        data = await self._get_json("/credit-types", "read the credit types")
        return [CreditType.from_json(x) for x in data.get("items", [])]

    async def courses(self, external_id: str | None = None, *, offset: int = 0, limit: int = 100) -> Page[Course]:
        data = await self._get_json("/courses", "list courses", params={"external_id": external_id, "offset": offset, "limit": limit})
        return Page([Course.from_json(x) for x in data.get("items", [])], data.get("next_offset"))

    async def course(self, course_id: int) -> Course:
        return Course.from_json(await self._get_json(f"/courses/{int(course_id)}", f"read course {course_id}"))

    async def lookup_courses(self, external_ids: Iterable[str]) -> CourseLookup:
        ids = list(dict.fromkeys(external_ids))
        items: list[Course] = []
        missing: list[str] = []
        for i in range(0, len(ids), MAX_KEYS):
            data = await self._safe("POST", "/courses/lookup", "look up courses", json_body={"external_ids": ids[i : i + MAX_KEYS]})
            items += [Course.from_json(x) for x in data.get("items", [])]
            missing += list(data.get("missing", []))
        return CourseLookup(tuple(items), tuple(missing))

    async def lookup_users(self, external_user_ids: Iterable[str] = (), emails: Iterable[str] = ()) -> UserLookup:
        keys = [("id", k) for k in dict.fromkeys(external_user_ids)] + [("email", e) for e in dict.fromkeys(emails)]
        items: list[User] = []
        miss_ids: list[str] = []
        miss_emails: list[str] = []
        for i in range(0, max(len(keys), 1) if keys else 0, MAX_KEYS):
            chunk = keys[i : i + MAX_KEYS]
            body = {"external_user_ids": [v for k, v in chunk if k == "id"], "emails": [v for k, v in chunk if k == "email"]}
            data = await self._safe("POST", "/users/lookup", "look up users", json_body=body)
            items += [User.from_json(x) for x in data.get("items", [])]
            miss_ids += list(data.get("missing_external_user_ids", []))
            miss_emails += list(data.get("missing_emails", []))
        return UserLookup(tuple(items), tuple(miss_ids), tuple(miss_emails))

    async def lookup_enrollments(self, keys: Sequence[dict[str, str]]) -> list[Enrollment]:
        """keys: `{"external_user_id"|"email": ..., "course_external_id": ...}`."""
        out: list[Enrollment] = []
        keys = list(keys)
        for i in range(0, len(keys), MAX_KEYS):
            data = await self._safe("POST", "/enrollments/lookup", "look up enrollments", json_body={"keys": keys[i : i + MAX_KEYS]})
            out += [Enrollment.from_json(x) for x in data.get("items", [])]
        return out

    async def create_user(self, *, external_user_id: str | None = None, email: str | None = None,
                          first_name: str | None = None, last_name: str | None = None) -> User:
        """Changes the LMS. Retried only when nothing was sent; after an unknown outcome the user is
        looked up before anything is sent again."""
        body = {k: v for k, v in {"external_user_id": external_user_id, "email": email, "first_name": first_name, "last_name": last_name}.items() if v is not None}
        action = "create the user"

        async def find() -> User | None:
            found = await self.lookup_users([external_user_id] if external_user_id else [], [email] if email else [])
            return found.items[0] if found.items else None

        return await self._post_at_most_once("/users", body, action, parse=User.from_json, settle=find)

    async def list_imports(self, *, state: str | None = None, idempotency_key: str | None = None,
                           file_sha256: str | None = None, offset: int = 0, limit: int = 100) -> Page[Import]:
        data = await self._get_json("/imports", "list imports", params={
            "state": state, "idempotency_key": idempotency_key, "file_sha256": file_sha256, "offset": offset, "limit": limit,
        })
        server_time = data.get("server_time")
        return Page([Import.from_json(x) for x in data.get("items", [])], data.get("next_offset"),
                    server_time if isinstance(server_time, str) else None)

    async def find_import_by_key(self, idempotency_key: str) -> Import | None:
        page = await self.list_imports(idempotency_key=idempotency_key, limit=10)
        return page.items[0] if page.items else None

    async def get_import(self, import_id: int) -> Import:
        return Import.from_json(await self._get_json(f"/imports/{int(import_id)}", f"read import {import_id}"))

    async def import_rows(self, import_id: int, *, status: str | None = None, offset: int = 0, limit: int = 1000) -> Page[RowResult]:
        data = await self._get_json(f"/imports/{int(import_id)}/rows", f"read the rows of import {import_id}",
                                    params={"status": status, "offset": offset, "limit": limit})
        return Page([RowResult.from_json(x) for x in data.get("items", [])], data.get("next_offset"))

    async def import_remaining(self, import_id: int) -> Remaining:
        resp = await self._safe("GET", f"/imports/{int(import_id)}/remaining", f"read the unprocessed rows of import {import_id}", raw=True)
        first = resp.headers.get("X-First-Row")
        return Remaining(resp.content, int(first) if first and first.strip().isdigit() else None)

    async def import_file(self, import_id: int) -> bytes:
        resp = await self._safe("GET", f"/imports/{int(import_id)}/file", f"download the file of import {import_id}", raw=True)
        return resp.content

    async def locks(self) -> list[Lock]:
        data = await self._get_json("/locks", "read the importer locks")
        return [Lock.from_json(x) for x in data.get("items", [])]

    async def lock(self, importer: str) -> Lock:
        return Lock.from_json(await self._get_json(f"/locks/{importer}", f"read the {importer} importer's lock"))

    async def unlock(self, importer: str, import_id: int) -> UnlockResult:
        """Compare-and-unlock. After an unknown outcome, the import's state says whether it worked."""
        action = f"unlock import {import_id}"

        async def unlocked() -> UnlockResult | None:
            imp = await self.get_import(import_id)
            return UnlockResult(await self.lock(importer), imp) if imp.state == "unlocked" else None

        return await self._post_at_most_once(f"/locks/{importer}/unlock", {"import_id": int(import_id)}, action,
                                             parse=UnlockResult.from_json, settle=unlocked)

    async def _post_at_most_once(self, path: str, body: dict, action: str, *, parse, settle):
        """POST a change that must happen at most once. A refused connection is retried (nothing was
        sent); after an unknown outcome (dropped, unreadable answer, 5xx, 429) `settle()` asks the LMS
        whether it happened before anything is sent again."""
        for attempt in range(self.retry.attempts):
            try:
                resp = await self._http.post(path, json=body)
            except httpx.ConnectError as exc:
                err = self._unreachable(exc, action)
                if isinstance(err, CertificateInvalid) or attempt + 1 == self.retry.attempts:
                    raise err from None
                await self.retry.wait(self.retry.backoff(attempt), exc)
                continue
            except httpx.TransportError:
                resp = None
            if resp is not None and resp.status_code in (200, 201):
                try:
                    return parse(resp.json())
                except (ValueError, KeyError, TypeError):
                    resp = None
            if resp is not None and resp.status_code < 500 and resp.status_code not in RETRY_STATUSES:
                raise self._error_for(resp, action)
            done = await settle()
            if done is not None:
                return done
            await self.retry.wait(self.retry.delay(attempt, resp.headers.get("Retry-After") if resp is not None else None))
        raise ServerError(f"Could not {action} after {self.retry.attempts} tries; the LMS says it has not happened (checked).")

    async def credit_records(self, *, course_external_id: str | None = None, source: str | None = None,
                             complete: bool | None = None, user_id: int | None = None,
                             offset: int = 0, limit: int = 1000) -> Page[CreditRecord]:
        params = {"course_external_id": course_external_id, "source": source, "user_id": user_id, "offset": offset, "limit": limit,
                  "complete": None if complete is None else ("true" if complete else "false")}
        data = await self._get_json("/credit-records", "read credit records", params=params)
        return Page([CreditRecord.from_json(x) for x in data.get("items", [])], data.get("next_offset"))

    async def reporting_queue(self, *, entity: str | None = None, course_external_id: str | None = None,
                              user_id: int | None = None) -> list[QueueEntry]:
        """Every entry (all pages)."""
        out: list[QueueEntry] = []
        offset: int | None = 0
        while offset is not None:
            data = await self._get_json("/reporting-queue", "read the reporting queue",
                                        params={"entity": entity, "course_external_id": course_external_id, "user_id": user_id,
                                                "offset": offset, "limit": MAX_KEYS})
            out += [QueueEntry.from_json(x) for x in data.get("items", [])]
            offset = data.get("next_offset") if data.get("next_offset") != offset else None
        return out

    async def pars_report(self, course_external_id: str | None = None) -> list[ParsRecord]:
        data = await self._get_json("/reports/pars", "read the PARS report", params={"course_external_id": course_external_id})
        return [ParsRecord.from_json(x) for x in data.get("items", [])]

    # ---- events (the watcher reconnects; no retry here) ----------------------------------

    async def events(self, *, read_timeout: float = 35.0) -> AsyncIterator[ServerEvent]:
        """Server-sent events, parsed. Ends (or raises Unreachable) when the stream drops; the
        caller (operations.watch) reconnects with backoff."""
        timeout = httpx.Timeout(self._timeout.connect or 10.0, read=read_timeout)
        try:
            async with self._http.stream("GET", "/events", headers={"Accept": "text/event-stream"}, timeout=timeout) as resp:
                if resp.status_code != 200:
                    await resp.aread()
                    raise self._error_for(resp, "follow the imports live")
                data_lines: list[str] = []
                kind = "message"
                async for line in resp.aiter_lines():
                    if line == "":
                        if data_lines:
                            yield _event(kind, "\n".join(data_lines))
                        kind, data_lines = "message", []
                    elif line.startswith(":"):
                        continue
                    elif line.startswith("event:"):
                        kind = line[6:].strip()
                    elif line.startswith("data:"):
                        data_lines.append(line[5:].lstrip(" "))
        except httpx.TransportError as exc:
            raise self._unreachable(exc, "follow the imports live") from None

    # ---- submitting an import ------------------------------------------------------------

    async def submit_import(self, path: str | os.PathLike, *, importer: str, course_external_id: str | None = None,
                            idempotency_key: str | None = None, file_name: str | None = None,
                            progress: ProgressCallback | None = None, expected_sha256: str | None = None) -> Import:
        receipt = await self.submit_import_detailed(path, importer=importer, course_external_id=course_external_id,
                                                    idempotency_key=idempotency_key, file_name=file_name, progress=progress,
                                                    expected_sha256=expected_sha256)
        return receipt.import_

    async def submit_import_detailed(self, path: str | os.PathLike, *, importer: str, course_external_id: str | None = None,
                                     idempotency_key: str | None = None, file_name: str | None = None,
                                     progress: ProgressCallback | None = None, expected_sha256: str | None = None) -> SubmitReceipt:
        """POST /imports, streamed from the file. Every attempt carries the same Idempotency-Key;
        after an unknown outcome the server is asked for that key before anything is sent again.
        With `expected_sha256` (the validated file's hash), a file that changes during the upload
        is cut off before the body ends and FileChangedDuringUpload says nothing was imported."""
        if importer not in ("course", "global"):
            raise ValueError(f"importer must be 'course' or 'global', not {importer!r}")
        key = idempotency_key or str(uuid.uuid4())
        path = Path(path)
        fields_ = {"importer": importer}
        if course_external_id:
            fields_["course"] = course_external_id
        action = f"submit {path.name}"
        notes: list[str] = []
        timeout = self._timeout if self._upload_timeout is None else httpx.Timeout(self._upload_timeout, connect=self._timeout.connect)

        async def ask_server(why: str) -> SubmitReceipt | None:
            try:
                found = await self.find_import_by_key(key)
            except LmsError as exc:
                raise UnknownOutcome(
                    f"The upload of {path.name} may or may not have reached the LMS ({why}), and the LMS could not be asked "
                    f"({exc}). Nothing more was sent. Run `importconsole journal --reconcile` when the LMS is reachable.",
                    idempotency_key=key,
                ) from None
            if found is not None:
                notes.append(f"{why}; the LMS already held import {found.id} for this upload, so nothing was sent again")
                return SubmitReceipt(found, key, created=False, reconciled=True, attempts=attempt + 1, notes=notes)
            notes.append(f"{why}; the LMS held no import for this upload, so it was sent again with the same key")
            return None

        attempt = 0
        maybe_sent = False  # only connect failures so far: the LMS cannot have the upload
        last: LmsError | None = None
        for attempt in range(self.retry.attempts):
            retry_after = None
            failure: BaseException | None = None  # what the announcement of the wait names
            try:
                body, headers = _multipart(path, fields_, file_name or path.name, progress, expected_sha256)
            except OSError as exc:
                raise FileChangedDuringUpload(f"{path} cannot be read any more ({exc.strerror}). Nothing more was sent.") from None
            headers["Idempotency-Key"] = key
            try:
                resp = await self._http.post("/imports", content=body, headers=headers, timeout=timeout)
                maybe_sent = True
            except _Changed as changed:
                # The body was cut before its end, so the LMS cannot have made an import of it; ask anyway.
                maybe_sent = True
                found = await ask_server(f"{path.name} changed on disk during the upload")
                if found:
                    return found
                raise FileChangedDuringUpload(
                    f"{path} changed on disk during the upload ({changed}). The upload was stopped before its end "
                    "and the LMS holds no import for it (checked): nothing was imported. Validate the file again, then submit."
                ) from None
            except httpx.ConnectError as exc:
                # Nothing was sent (connect refused / TLS / DNS): safe to try again with the key.
                failure = exc
                last = self._unreachable(exc, action)
                if isinstance(last, CertificateInvalid):
                    raise last from None
                notes.append("could not connect")
            except httpx.ConnectTimeout as exc:
                last = self._unreachable(exc, action)
                notes.append("connect timed out")
            except httpx.TransportError as exc:
                maybe_sent = True
                last = self._unreachable(exc, action)
                why = "the answer did not arrive in time" if isinstance(exc, httpx.TimeoutException) else "the connection dropped before the answer"
                found = await ask_server(why)
                if found:
                    return found
            else:
                status = resp.status_code
                if status in (200, 201):
                    try:
                        imp = Import.from_json(resp.json())
                    except (ValueError, KeyError, TypeError):
                        last = UnknownOutcome(f"The LMS's answer to the upload of {path.name} could not be read.", idempotency_key=key)
                        found = await ask_server("the answer could not be read")
                        if found:
                            return found
                    else:
                        if status == 200:
                            notes.append(f"the LMS already held import {imp.id} for this upload")
                        return SubmitReceipt(imp, key, created=status == 201, attempts=attempt + 1, notes=notes)
                elif status == 409 and _code(resp) != "lock_mismatch":
                    last = self._error_for(resp, action)
                    notes.append("the LMS was still handling the same upload")
                elif status in RETRY_STATUSES:
                    last = self._error_for(resp, action)
                    retry_after = resp.headers.get("Retry-After")
                    notes.append(f"the LMS answered {status}")
                elif status >= 500:
                    last = self._error_for(resp, action)
                    found = await ask_server(f"the LMS answered {status}")
                    if found:
                        return found
                else:
                    raise self._error_for(resp, action)
            if attempt + 1 < self.retry.attempts:
                wait = self.retry.delay(attempt, retry_after)
                log.debug("POST /imports key %s: attempt %d: %s; retrying in %.2f s", key, attempt + 1, notes[-1] if notes else "", wait)
                await self.retry.wait(wait, failure)
        assert last is not None
        if not maybe_sent:
            raise Unreachable(f"{last} Nothing was sent, so nothing was imported.")
        # Out of tries: say for certain whether an import exists.
        found = await ask_server("the retries ran out")
        if found:
            return found
        if isinstance(last, IdempotencyInFlight):
            raise UnknownOutcome(f"The LMS was still handling the upload of {path.name} after {self.retry.attempts} tries; "
                                 "it may yet create the import. Nothing more was sent. Check with `importconsole journal --reconcile` "
                                 "in a minute.", idempotency_key=key)
        raise type(last)(f"{last} No import was created: the LMS holds none for this upload (checked).",
                         status=last.status) if type(last) in (Unreachable, ServerError) else last


def _code(resp: httpx.Response) -> str | None:
    try:
        body = resp.json()
        return body.get("error") if isinstance(body, dict) else None
    except ValueError:
        return None


def _event(kind: str, raw: str) -> ServerEvent:
    try:
        data = json.loads(raw)
    except ValueError:
        return ServerEvent(kind, {"raw": raw})
    if kind == "import" and isinstance(data, dict):
        return ServerEvent(kind, Import.from_json(data))
    if kind == "lock" and isinstance(data, dict):
        return ServerEvent(kind, Lock.from_json(data))
    return ServerEvent(kind, data if isinstance(data, dict) else {"value": data})


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


class _Changed(Exception):
    """Raised inside the body generator: the file no longer matches; httpx aborts the request."""


def _multipart(path: Path, fields_: dict[str, str], file_name: str, progress: ProgressCallback | None,
               expected_sha256: str | None = None):
    """A multipart/form-data body streamed from disk in 64 KiB chunks: memory stays flat for a
    1 GB file, and Content-Length is exact so the server sees a normal upload.

    Exactly the bytes measured at the start are sent. The last chunk is held back until the whole
    file was read (and, with `expected_sha256`, hashed): a file that changed meanwhile aborts the
    request before the body is complete, so the LMS never gets the changed file."""
    boundary = uuid.uuid4().hex
    head = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields_.items()
    )
    head += (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{_quote(file_name)}"\r\n'
             f"Content-Type: text/csv\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    size = path.stat().st_size
    total = len(head) + size + len(tail)

    async def body():
        digest = hashlib.sha256() if expected_sha256 else None
        sent = 0
        yield head
        held = b""
        try:
            fh = open(path, "rb")
        except OSError as exc:
            raise _Changed(f"it cannot be read any more: {exc.strerror}") from None
        with fh:
            remaining = size
            while remaining > 0:
                chunk = fh.read(min(UPLOAD_CHUNK, remaining))
                if not chunk:
                    break
                remaining -= len(chunk)
                if digest is not None:
                    digest.update(chunk)
                if held:
                    sent += len(held)
                    if progress:
                        progress(sent, size)
                    yield held
                held = chunk
            grown = bool(fh.read(1))
        if remaining or grown:
            raise _Changed(f"its size changed from {size} bytes")
        if digest is not None and digest.hexdigest() != expected_sha256:
            raise _Changed(f"its sha256 is now {digest.hexdigest()[:12]}..., not the validated {expected_sha256[:12]}...")
        if held:
            sent += len(held)
            if progress:
                progress(sent, size)
            yield held
        if progress and size == 0:
            progress(0, 0)
        yield tail

    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}", "Content-Length": str(total)}
    return body(), headers
