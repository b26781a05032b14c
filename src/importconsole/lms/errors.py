"""What went wrong talking to the LMS, as sentences an admin can act on.

`str(error)` is the sentence. No error ever carries the API token: messages are built from the
server's JSON `message`, the status and the URL path, never from request headers.
"""

from __future__ import annotations

from typing import Any

from importconsole.lms.models import Lock


class LmsError(Exception):
    """Base class; `status` is the HTTP status when there was one."""

    status: int | None = None
    code: str | None = None

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None, detail: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code
        self.detail = detail or {}

    def __str__(self) -> str:
        return self.message


class InsecureUrl(LmsError):
    """Plain http:// to a host that is not this machine."""


class Unreachable(LmsError):
    """Could not connect, or the connection kept failing after the retries."""


class CertificateInvalid(Unreachable):
    """TLS verification failed. There is deliberately no switch to turn verification off."""


class Unauthorized(LmsError):
    status = 401
    code = "unauthorized"


class Forbidden(LmsError):
    status = 403
    code = "forbidden"

    def __init__(self, message: str, *, role_needed: str | None = None, **kw: Any):
        super().__init__(message, **kw)
        self.role_needed = role_needed


class NotFound(LmsError):
    status = 404
    code = "not_found"


class ImporterLocked(LmsError):
    status = 423
    code = "importer_locked"

    def __init__(self, message: str, *, lock: Lock | None = None, **kw: Any):
        super().__init__(message, **kw)
        self.lock = lock


class LockMismatch(LmsError):
    status = 409
    code = "lock_mismatch"

    def __init__(self, message: str, *, lock: Lock | None = None, **kw: Any):
        super().__init__(message, **kw)
        self.lock = lock


class IdempotencyInFlight(LmsError):
    status = 409
    code = "idempotency_in_flight"


class IdempotencyMismatch(LmsError):
    """Same key, other payload: the console generated a key twice. Never retried."""

    status = 422
    code = "idempotency_mismatch"


class InvalidRequest(LmsError):
    status = 422
    code = "invalid"


class TooManyKeys(LmsError):
    status = 413
    code = "too_many_keys"


class FileTooLarge(LmsError):
    """The LMS refused the upload for its size: nothing was imported."""
    status = 413
    code = "file_too_large"


class UnknownOutcome(LmsError):
    """The request may or may not have changed the LMS; ask the server before doing anything new."""

    def __init__(self, message: str, *, idempotency_key: str | None = None, **kw: Any):
        super().__init__(message, **kw)
        self.idempotency_key = idempotency_key


class FileChangedDuringUpload(LmsError):
    """The file on disk stopped matching what was validated while it was being sent; the upload was
    cut before its end, so the LMS cannot have taken it."""


class ServerError(LmsError):
    """5xx (or an answer we cannot read) after the retries."""


class RateLimited(ServerError):
    status = 429
