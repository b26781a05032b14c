"""What went wrong on an EthosCE (Drupal + Feeds) site, as sentences an admin can act on.

Each class extends the reference client's `LmsError` family, so code that already catches
`Unauthorized`, `Forbidden`, `ImporterLocked` or `ServerError` handles an EthosCE site the same way.
No message ever holds a password or the session cookie: they are built from page texts, statuses and paths.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from importconsole.lms.errors import Forbidden, ImporterLocked, LmsError, LockMismatch, ServerError, Unauthorized, Unreachable

if TYPE_CHECKING:
    from importconsole.lms.ethosce.feeds import BatchOutcome


class LoginRefused(Unauthorized):
    """Drupal's login form came back: wrong name or password, a blocked account, or flood control.
    Never retried (Drupal locks an account after 5 failed logins)."""


class SiteForbidden(Forbidden):
    """Logged in, yet the site answers "Access denied" for an admin page."""


class RestwsRefused(Unauthorized):
    """The restws web service refused the restws account (401)."""


class RestwsForbidden(Forbidden):
    """The restws web service answered 403 (a name not starting with restws, or no permission)."""


class UnexpectedPage(ServerError):
    """A page did not have what the console reads on it (the site's markup differs or an error page came)."""


class UploadRefused(ImporterLocked):
    """The import form came back with no batch and no "Import scheduled.": nothing was imported."""

    def __init__(self, message: str, *, percent: int | None = None, site_messages: tuple[str, ...] = (), **kw: Any):
        super().__init__(message, **kw)
        self.percent = percent
        self.site_messages = site_messages


class BatchNotOurs(LmsError):
    """The batch page did not answer to this session (another session started it, or it is gone)."""


class ImportDied(ServerError):
    """A batch step answered HTTP 500: the import died on the site. `outcome` is the `BatchOutcome`."""

    def __init__(self, message: str, *, outcome: BatchOutcome | None = None, **kw: Any):
        super().__init__(message, **kw)
        self.outcome = outcome


class UnlockRefused(LockMismatch):
    """Compare-and-unlock: the importer's progress moved since it was read, so nothing was unlocked."""


class BatchInterrupted(Unreachable):
    """The connection failed while driving a batch: the import stays where it was (locked, not dead) until this
    session drives the batch again (`FeedsSite.drive_batch(..., started=True)`) or the importer is unlocked."""

    def __init__(self, message: str, *, batch_id: int, percentage: float, steps: int, reason: str = "", **kw: Any):
        super().__init__(message, **kw)
        self.reason = reason or message  # the connection failure alone, without what it means for the importer
        self.batch_id = batch_id
        self.percentage = percentage
        self.steps = steps
