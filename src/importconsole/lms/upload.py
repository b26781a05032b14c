"""POST /imports: one file streamed to the reference API, imported exactly once whatever the network does.

Why it looks the way it does:
- The body is streamed from disk in 64 KiB chunks (memory stays flat for a 1 GB file) with an exact
  Content-Length, and exactly the bytes measured at the start are sent: a file that changes during the
  upload is cut off before the body ends, so the LMS never gets the changed file.
- Every attempt carries the SAME Idempotency-Key, and after an unknown outcome (500, dropped
  connection, unreadable 200) the LMS is asked what exists for that key before anything is sent again.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from importconsole.lms.errors import (
    CertificateInvalid,
    FileChangedDuringUpload,
    IdempotencyInFlight,
    LmsError,
    ServerError,
    UnknownOutcome,
    Unreachable,
)
from importconsole.lms.models import Import
from importconsole.lms.port import ProgressCallback
from importconsole.lms.transport import RETRY_STATUSES, RetryPolicy

log = logging.getLogger(__name__)

UPLOAD_CHUNK = 64 * 1024


@dataclass
class SubmitReceipt:
    """What happened to one POST /imports: the import, and how we know it is the only one."""

    import_: Import
    idempotency_key: str
    created: bool  # 201 on our request (False: the server already had it, or we found it)
    reconciled: bool = False  # found by asking GET /imports?idempotency_key= after an unknown outcome
    attempts: int = 1
    notes: list[str] = field(default_factory=list)


class FileChanged(Exception):
    """Raised inside the body generator: the file no longer matches; httpx aborts the request."""


@dataclass
class Upload:
    """One submission of `path` under one Idempotency-Key, across its attempts. The client that builds
    it lends its HTTP client, its retry policy and its sentences (`error_for`, `unreachable`)."""

    http: httpx.AsyncClient
    retry: RetryPolicy
    path: Path
    form: dict[str, str]
    file_name: str
    key: str
    timeout: httpx.Timeout
    find: Callable[[str], Awaitable[Import | None]]  # the import the LMS holds for a key, if any
    error_for: Callable[[httpx.Response, str], LmsError]
    unreachable: Callable[[BaseException, str], LmsError]
    progress: ProgressCallback | None = None
    expected_sha256: str | None = None
    notes: list[str] = field(default_factory=list)
    attempt: int = 0
    maybe_sent: bool = False  # False while only connect failures happened: the LMS cannot have the upload
    last: LmsError | None = None

    @property
    def action(self) -> str:
        return f"submit {self.path.name}"

    async def run(self) -> SubmitReceipt:
        for attempt in range(self.retry.attempts):
            self.attempt = attempt
            outcome = await self._one_attempt()
            if isinstance(outcome, SubmitReceipt):
                return outcome
            retry_after, failure = outcome
            if self.attempt + 1 < self.retry.attempts:
                wait = self.retry.delay(self.attempt, retry_after)
                log.debug("POST /imports key %s: attempt %d: %s; retrying in %.2f s", self.key, self.attempt + 1,
                          self.notes[-1] if self.notes else "", wait)
                await self.retry.wait(wait, failure)
        return await self._out_of_tries()

    async def ask_server(self, why: str) -> SubmitReceipt | None:
        """After an unknown outcome: the import the LMS holds for this key, or None (noted either way)."""
        try:
            found = await self.find(self.key)
        except LmsError as exc:
            raise UnknownOutcome(
                f"The upload of {self.path.name} may or may not have reached the LMS ({why}), and the LMS could not be asked "
                f"({exc}). Nothing more was sent. Run `importconsole journal --reconcile` when the LMS is reachable.",
                idempotency_key=self.key,
            ) from None
        if found is not None:
            self.notes.append(f"{why}; the LMS already held import {found.id} for this upload, so nothing was sent again")
            return SubmitReceipt(found, self.key, created=False, reconciled=True, attempts=self.attempt + 1, notes=self.notes)
        self.notes.append(f"{why}; the LMS held no import for this upload, so it was sent again with the same key")
        return None

    async def _one_attempt(self) -> SubmitReceipt | tuple[str | None, BaseException | None]:
        """One POST: the receipt, or (Retry-After, the failure the wait names) to try again."""
        try:
            body, headers = multipart_body(self.path, self.form, self.file_name, self.progress, self.expected_sha256)
        except OSError as exc:
            raise FileChangedDuringUpload(f"{self.path} cannot be read any more ({exc.strerror}). Nothing more was sent.") from None
        headers["Idempotency-Key"] = self.key
        try:
            resp = await self.http.post("/imports", content=body, headers=headers, timeout=self.timeout)
            self.maybe_sent = True
        except FileChanged as changed:
            # The body was cut before its end, so the LMS cannot have made an import of it; ask anyway.
            self.maybe_sent = True
            found = await self.ask_server(f"{self.path.name} changed on disk during the upload")
            if found:
                return found
            raise FileChangedDuringUpload(
                f"{self.path} changed on disk during the upload ({changed}). The upload was stopped before its end "
                "and the LMS holds no import for it (checked): nothing was imported. Validate the file again, then submit."
            ) from None
        except httpx.ConnectError as exc:
            # Nothing was sent (connect refused / TLS / DNS): safe to try again with the key.
            self.last = self.unreachable(exc, self.action)
            if isinstance(self.last, CertificateInvalid):
                raise self.last from None
            self.notes.append("could not connect")
            return None, exc
        except httpx.ConnectTimeout as exc:
            self.last = self.unreachable(exc, self.action)
            self.notes.append("connect timed out")
            return None, None
        except httpx.TransportError as exc:
            self.maybe_sent = True
            self.last = self.unreachable(exc, self.action)
            why = "the answer did not arrive in time" if isinstance(exc, httpx.TimeoutException) else "the connection dropped before the answer"
            return await self.ask_server(why) or (None, None)
        return await self._read_answer(resp)

    async def _read_answer(self, resp: httpx.Response) -> SubmitReceipt | tuple[str | None, BaseException | None]:
        status = resp.status_code
        if status in (200, 201):
            try:
                imp = Import.from_json(resp.json())
            except (ValueError, KeyError, TypeError):
                self.last = UnknownOutcome(f"The LMS's answer to the upload of {self.path.name} could not be read.",
                                           idempotency_key=self.key)
                return await self.ask_server("the answer could not be read") or (None, None)
            if status == 200:
                self.notes.append(f"the LMS already held import {imp.id} for this upload")
            return SubmitReceipt(imp, self.key, created=status == 201, attempts=self.attempt + 1, notes=self.notes)
        if status == 409 and error_code(resp) != "lock_mismatch":
            self.last = self.error_for(resp, self.action)
            self.notes.append("the LMS was still handling the same upload")
            return None, None
        if status in RETRY_STATUSES:
            self.last = self.error_for(resp, self.action)
            self.notes.append(f"the LMS answered {status}")
            return resp.headers.get("Retry-After"), None
        if status >= 500:
            self.last = self.error_for(resp, self.action)
            return await self.ask_server(f"the LMS answered {status}") or (None, None)
        raise self.error_for(resp, self.action)

    async def _out_of_tries(self) -> SubmitReceipt:
        """Out of tries: say for certain whether an import exists."""
        last = self.last
        assert last is not None
        if not self.maybe_sent:
            raise Unreachable(f"{last} Nothing was sent, so nothing was imported.")
        found = await self.ask_server("the retries ran out")
        if found:
            return found
        if isinstance(last, IdempotencyInFlight):
            raise UnknownOutcome(f"The LMS was still handling the upload of {self.path.name} after {self.retry.attempts} tries; "
                                 "it may yet create the import. Nothing more was sent. Check with `importconsole journal --reconcile` "
                                 "in a minute.", idempotency_key=self.key)
        if type(last) in (Unreachable, ServerError):
            raise type(last)(f"{last} No import was created: the LMS holds none for this upload (checked).", status=last.status)
        raise last


def error_code(resp: httpx.Response) -> str | None:
    """The `error` code of an LMS answer's JSON body, if it has one."""
    try:
        body = resp.json()
    except ValueError:
        return None
    code = body.get("error") if isinstance(body, dict) else None
    return code if isinstance(code, str) else None


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


def multipart_body(path: Path, form: dict[str, str], file_name: str, progress: ProgressCallback | None,
                   expected_sha256: str | None = None) -> tuple[AsyncIterator[bytes], dict[str, str]]:
    """A multipart/form-data body streamed from disk in 64 KiB chunks: memory stays flat for a
    1 GB file, and Content-Length is exact so the server sees a normal upload.

    Exactly the bytes measured at the start are sent. The last chunk is held back until the whole
    file was read (and, with `expected_sha256`, hashed): a file that changed meanwhile aborts the
    request before the body is complete, so the LMS never gets the changed file."""
    boundary = uuid.uuid4().hex
    head = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in form.items()
    )
    head += (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{_quote(file_name)}"\r\n'
             f"Content-Type: text/csv\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    size = path.stat().st_size
    total = len(head) + size + len(tail)

    async def body() -> AsyncIterator[bytes]:
        digest = hashlib.sha256() if expected_sha256 else None
        sent = 0
        yield head
        held = b""
        try:
            fh = open(path, "rb")
        except OSError as exc:
            raise FileChanged(f"it cannot be read any more: {exc.strerror}") from None
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
            raise FileChanged(f"its size changed from {size} bytes")
        if digest is not None and digest.hexdigest() != expected_sha256:
            raise FileChanged(f"its sha256 is now {digest.hexdigest()[:12]}..., not the validated {(expected_sha256 or '')[:12]}...")
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
