"""The LMS API client (docs/api.md): one async client per run, and its endpoints.

Why it looks the way it does:
- The transport rules (`lms.transport`): TLS verification always on, plain http:// only to this
  machine, no redirect followed; reads retried on connection failures, timeouts, 429, 5xx with capped
  exponential backoff and full jitter, `Retry-After` honoured.
- A change (POST /users, an unlock) happens at most once: after an unknown outcome the client asks
  the LMS whether it happened before it sends anything again. The upload (`lms.upload`) does the
  same with its Idempotency-Key: that is what makes "exactly one import" hold whatever the network does.
- The token lives in one header. It is never part of a URL, a log line or an exception message.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import httpx

from importconsole.lms.errors import (
    CertificateInvalid,
    FileTooLarge,
    Forbidden,
    IdempotencyInFlight,
    IdempotencyMismatch,
    ImporterLocked,
    InvalidRequest,
    LmsError,
    LockMismatch,
    NotFound,
    RateLimited,
    ServerError,
    TooManyKeys,
    Unauthorized,
)
from importconsole.lms.models import (
    Course,
    CourseLookup,
    CreditRecord,
    CreditType,
    Enrollment,
    Import,
    Importer,
    ImportState,
    JsonObject,
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
from importconsole.lms.port import REFERENCE_CAPABILITIES, Capabilities, ProgressCallback
# Re-exported: callers (the CLI, the operations, tests) import these from here.
from importconsole.lms.transport import (
    API_PREFIX as API_PREFIX,
    RETRY_STATUSES as RETRY_STATUSES,
    OwnsHttpClient as OwnsHttpClient,
    RetryPolicy as RetryPolicy,
    Secret,
    check_base_url as check_base_url,
    check_site_url as check_site_url,
    http_client,
    is_loopback as is_loopback,
    parse_retry_after as parse_retry_after,
    unreachable,
)
from importconsole.lms.upload import SubmitReceipt as SubmitReceipt
from importconsole.lms.upload import Upload

if TYPE_CHECKING:
    from importconsole.lms.facts import ApiFacts

log = logging.getLogger(__name__)

T = TypeVar("T")
Params = Mapping[str, str | int | float | bool | None]  # a query; None values are left out

MAX_KEYS = 1000  # the API's batch limit for lookups


class LmsClient(OwnsHttpClient):
    """`async with LmsClient(base_url, token) as lms: await lms.me()`."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        ca_bundle: str | os.PathLike[str] | None = None,
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
        self._token = Secret(token)
        from importconsole import crash

        crash.register_secret(token)  # whoever built the client, crash text never shows the token
        if isinstance(timeout, httpx.Timeout):
            self._timeout = timeout
        else:
            self._timeout = httpx.Timeout(timeout, connect=min(10.0, timeout))
        self._upload_timeout = upload_timeout
        self._http = http_client(self.api_url, ca_bundle=ca_bundle, timeout=self._timeout, transport=transport,
                                 headers={"Authorization": f"Bearer {token}", "Accept": "application/json"})

    def __repr__(self) -> str:
        return f"LmsClient({self.base_url!r}, profile={self.profile!r})"

    @property
    def capabilities(self) -> Capabilities:
        """The console's own API offers everything the operations use (lms.port)."""
        return REFERENCE_CAPABILITIES

    @property
    def host(self) -> str:
        return self.api_url.host

    def facts(self, loop: asyncio.AbstractEventLoop) -> ApiFacts:
        """The validation rules' facts from this API (`lms.facts.ApiFacts`), for a worker thread."""
        from importconsole.lms.facts import ApiFacts

        return ApiFacts(self, loop)

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
        return unreachable(self.host, exc, action)

    # ---- the request loop for reads (safe to repeat) -------------------------------------

    async def _get_json(self, path: str, action: str, *, params: Params | None = None) -> JsonObject:
        return await self._safe("GET", path, action, json_object, params=params)

    async def _safe(self, method: str, path: str, action: str, parse: Callable[[httpx.Response], T], *,
                    params: Params | None = None, json_body: object = None) -> T:
        """A request that changes nothing on the LMS (GETs and the lookups): retried freely. `parse` reads
        the answer; one it cannot read (ValueError) is retried like a 5xx."""
        query = {k: v for k, v in (params or {}).items() if v is not None}
        last_exc: LmsError | None = None
        for attempt in range(self.retry.attempts):
            retry_after, failure = None, None
            try:
                resp = await self._http.request(method, path, params=query, json=json_body)
            except httpx.RequestError as exc:
                failure, last_exc = exc, self._unreachable(exc, action)
                if isinstance(last_exc, CertificateInvalid):
                    raise last_exc from None
            else:
                if resp.status_code < 300:
                    try:
                        return parse(resp)
                    except ValueError:
                        last_exc = ServerError(f"The LMS sent an answer that could not be read while trying to {action}; try again later.")
                elif resp.status_code in RETRY_STATUSES or resp.status_code >= 500:
                    last_exc = self._error_for(resp, action)
                    retry_after = resp.headers.get("Retry-After")
                else:
                    raise self._error_for(resp, action)
            if attempt + 1 < self.retry.attempts:
                wait = self.retry.delay(attempt, retry_after)
                log.debug("%s %s: attempt %d failed (%s); retrying in %.2f s", method, path, attempt + 1,
                          last_exc.status if last_exc is not None and last_exc.status else "no answer", wait)
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
            data = await self._safe("POST", "/courses/lookup", "look up courses", json_object,
                                    json_body={"external_ids": ids[i : i + MAX_KEYS]})
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
            data = await self._safe("POST", "/users/lookup", "look up users", json_object, json_body=body)
            items += [User.from_json(x) for x in data.get("items", [])]
            miss_ids += list(data.get("missing_external_user_ids", []))
            miss_emails += list(data.get("missing_emails", []))
        return UserLookup(tuple(items), tuple(miss_ids), tuple(miss_emails))

    async def lookup_enrollments(self, keys: Sequence[dict[str, str]]) -> list[Enrollment]:
        """keys: `{"external_user_id"|"email": ..., "course_external_id": ...}`."""
        out: list[Enrollment] = []
        keys = list(keys)
        for i in range(0, len(keys), MAX_KEYS):
            data = await self._safe("POST", "/enrollments/lookup", "look up enrollments", json_object,
                                    json_body={"keys": keys[i : i + MAX_KEYS]})
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
        resp = await self._safe("GET", f"/imports/{int(import_id)}/remaining", f"read the unprocessed rows of import {import_id}", answer)
        first = resp.headers.get("X-First-Row")
        return Remaining(resp.content, int(first) if first and first.strip().isdigit() else None)

    async def import_file(self, import_id: int) -> bytes:
        resp = await self._safe("GET", f"/imports/{int(import_id)}/file", f"download the file of import {import_id}", answer)
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
            return UnlockResult(await self.lock(importer), imp) if imp.state == ImportState.UNLOCKED else None

        return await self._post_at_most_once(f"/locks/{importer}/unlock", {"import_id": int(import_id)}, action,
                                             parse=UnlockResult.from_json, settle=unlocked)

    async def _post_at_most_once(self, path: str, body: JsonObject, action: str, *, parse: Callable[[JsonObject], T],
                                 settle: Callable[[], Awaitable[T | None]]) -> T:
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
                    return parse(json_object(resp))
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

    async def submit_import(self, path: str | os.PathLike[str], *, importer: str, course_external_id: str | None = None,
                            idempotency_key: str | None = None, file_name: str | None = None,
                            progress: ProgressCallback | None = None, expected_sha256: str | None = None) -> Import:
        receipt = await self.submit_import_detailed(path, importer=importer, course_external_id=course_external_id,
                                                    idempotency_key=idempotency_key, file_name=file_name, progress=progress,
                                                    expected_sha256=expected_sha256)
        return receipt.import_

    async def submit_import_detailed(self, path: str | os.PathLike[str], *, importer: str, course_external_id: str | None = None,
                                     idempotency_key: str | None = None, file_name: str | None = None,
                                     progress: ProgressCallback | None = None, expected_sha256: str | None = None) -> SubmitReceipt:
        """POST /imports, streamed from the file (`lms.upload`). Every attempt carries the same Idempotency-Key;
        after an unknown outcome the server is asked for that key before anything is sent again.
        With `expected_sha256` (the validated file's hash), a file that changes during the upload
        is cut off before the body ends and FileChangedDuringUpload says nothing was imported."""
        if importer not in tuple(Importer):
            raise ValueError(f"importer must be 'course' or 'global', not {importer!r}")
        path = Path(path)
        form = {"importer": importer}
        if course_external_id:
            form["course"] = course_external_id
        timeout = self._timeout if self._upload_timeout is None else httpx.Timeout(self._upload_timeout, connect=self._timeout.connect)
        upload = Upload(self._http, self.retry, path, form, file_name or path.name, idempotency_key or str(uuid.uuid4()),
                        timeout, find=self.find_import_by_key, error_for=self._error_for, unreachable=self._unreachable,
                        progress=progress, expected_sha256=expected_sha256)
        return await upload.run()


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


def json_object(resp: httpx.Response) -> JsonObject:
    """An answer's JSON object; anything else (not JSON, a list) is an answer that could not be read."""
    data = resp.json()
    if not isinstance(data, dict):
        raise ValueError("the answer is not a JSON object")
    return data


def answer(resp: httpx.Response) -> httpx.Response:
    """The answer itself (a file, the remaining rows): read by the caller."""
    return resp
