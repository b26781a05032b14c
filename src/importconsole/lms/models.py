"""Typed views of the objects in docs/api.md. Each has `from_json`; unknown keys are ignored so a
newer server does not break an older console."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime, UTC
from enum import StrEnum
from typing import Any, Generic, TypeVar

T = TypeVar("T")
JsonObject = dict[str, Any]  # a JSON object as the LMS sent it; `from_json` picks the fields it knows


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _pick(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in names}


@dataclass(frozen=True)
class Me:
    username: str
    role: str
    display_name: str = ""

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Me:
        return cls(**_pick(cls, data))


@dataclass(frozen=True)
class CreditType:
    machine_name: str
    label: str = ""
    reports_to: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CreditType:
        return cls(data["machine_name"], data.get("label") or data["machine_name"], tuple(data.get("reports_to") or ()))


@dataclass(frozen=True)
class CourseCredit:
    credit_type: str
    min: float
    max: float
    increments: float
    enable_variable_credit: bool

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CourseCredit:
        return cls(
            credit_type=data["credit_type"],
            min=float(data.get("min") or 0),
            max=float(data.get("max") or 0),
            increments=float(data.get("increments") or 0),
            enable_variable_credit=bool(data.get("enable_variable_credit")),
        )


@dataclass(frozen=True)
class Course:
    id: int
    external_id: str
    title: str = ""
    has_certificate: bool = False
    required_objects: int = 0
    is_shell: bool = False
    credits: tuple[CourseCredit, ...] = ()

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Course:
        base = _pick(cls, data)
        base["credits"] = tuple(CourseCredit.from_json(c) for c in data.get("credits") or ())
        return cls(**base)


@dataclass(frozen=True)
class User:
    id: int
    external_user_id: str | None = None
    email: str | None = None
    first_name: str = ""
    last_name: str = ""
    assigned_rows: int | None = None  # only on POST /users

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> User:
        return cls(**_pick(cls, data))


@dataclass(frozen=True)
class CreditRecord:
    id: int
    enrollment_id: int
    user_id: int
    course_id: int
    credit_type: str
    amount: float
    source: str
    importer: str | None = None
    import_id: int | None = None
    created_at: str | None = None
    # Only GET /credit-records sends these (who and which course; docs/api.md).
    course_external_id: str | None = None
    external_user_id: str | None = None
    email: str | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CreditRecord:
        base = _pick(cls, data)
        base["amount"] = float(base.get("amount") or 0)
        return cls(**base)


@dataclass(frozen=True)
class Enrollment:
    id: int
    user_id: int
    course_id: int
    course_external_id: str
    status: str
    external_user_id: str | None = None
    email: str | None = None
    date_completed: str | None = None
    enrollment_start: str | None = None
    importer: str | None = None
    import_id: int | None = None
    credits: tuple[CreditRecord, ...] = ()

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Enrollment:
        base = _pick(cls, data)
        base["credits"] = tuple(CreditRecord.from_json(c) for c in data.get("credits") or ())
        return cls(**base)


class ImportState(StrEnum):
    """An import's state as the reference LMS reports it (docs/api.md). A StrEnum: equal to its text, and
    written as its text in JSON and the journal."""

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    COMPLETED_WITH_ERRORS = "completed_with_errors"
    FAILED = "failed"
    UNLOCKED = "unlocked"
    # Never sent by the LMS (its state says "running"): the console's own verdict (operations.hung), shown instead.
    HUNG = "hung"


IMPORT_STATES = tuple(s for s in ImportState if s is not ImportState.HUNG)  # what the LMS may say
ACTIVE_STATES = frozenset({ImportState.QUEUED, ImportState.RUNNING})
FINISHED_STATES = frozenset({ImportState.COMPLETED, ImportState.COMPLETED_WITH_ERRORS, ImportState.FAILED,
                             ImportState.UNLOCKED})


class Importer(StrEnum):
    """The reference LMS's two importers (an EthosCE profile maps each to a Feeds importer id)."""

    COURSE = "course"  # course-level: one course (named by --course or the rows), counts in PARS
    GLOBAL = "global"  # legacy: many courses, never reported to PARS


class FeedsState(StrEnum):
    """An EthosCE (Drupal Feeds) importer's state, read from its import page (`ethosce.feeds.ImporterStatus`)."""

    IDLE = "idle"  # the import button is enabled
    IMPORTING = "importing"  # the button says `Importing (N %)`: a batch moving, or an import that died locked
    QUEUED = "queued"  # locked, waiting for the site's cron (background mode)
    DELETING = "deleting"  # Delete items running


@dataclass(frozen=True)
class Import:
    id: int
    importer: str
    state: str
    file_name: str = ""
    file_sha256: str = ""
    file_size: int = 0
    course_external_id: str | None = None
    idempotency_key: str | None = None
    rows_total: int = 0
    rows_processed: int = 0
    rows_failed: int = 0
    rows_held: int = 0
    created_by: str = ""
    created_at: str | None = None
    started_at: str | None = None
    last_progress_at: str | None = None
    finished_at: str | None = None
    error: str | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Import:
        return cls(**_pick(cls, data))

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STATES


@dataclass(frozen=True)
class RowResult:
    row: int
    line: int
    status: str
    message: str | None = None
    enrollment_id: int | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RowResult:
        return cls(**_pick(cls, data))


@dataclass(frozen=True)
class Lock:
    importer: str
    locked: bool
    import_id: int | None = None
    held_by: str | None = None
    since: str | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Lock:
        return cls(**_pick(cls, data))

    def describe(self) -> str:
        if not self.locked:
            return f"the {self.importer} importer is free"
        who = f" by {self.held_by}" if self.held_by else ""
        since = f" since {self.since}" if self.since else ""
        return f"the {self.importer} importer is locked by import {self.import_id}{who}{since}"


@dataclass(frozen=True)
class UnlockResult:
    lock: Lock
    import_: Import

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> UnlockResult:
        return cls(Lock.from_json(data["lock"]), Import.from_json(data["import"]))


@dataclass(frozen=True)
class QueueEntry:
    id: int
    entity: str
    credit_record_id: int
    user_id: int
    course_id: int
    credit_type: str
    amount: float
    queued_at: str | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> QueueEntry:
        base = _pick(cls, data)
        base["amount"] = float(base.get("amount") or 0)
        return cls(**base)


@dataclass(frozen=True)
class ParsRecord:
    user_id: int
    course_external_id: str
    credit_type: str
    amount: float
    external_user_id: str | None = None
    email: str | None = None
    participant_category: str | None = None
    enrollment_start: str | None = None
    date_completed: str | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ParsRecord:
        base = _pick(cls, data)
        base["amount"] = float(base.get("amount") or 0)
        return cls(**base)


@dataclass(frozen=True)
class CourseLookup:
    items: tuple[Course, ...]
    missing: tuple[str, ...]


@dataclass(frozen=True)
class UserLookup:
    items: tuple[User, ...]
    missing_external_user_ids: tuple[str, ...]
    missing_emails: tuple[str, ...]


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T] = field(default_factory=list)
    next_offset: int | None = None
    server_time: str | None = None  # GET /imports only: the server's clock when it read the list


@dataclass(frozen=True)
class Remaining:
    """GET /imports/{id}/remaining: the header plus unprocessed rows, as submitted."""

    content: bytes
    first_row: int | None


@dataclass(frozen=True)
class ServerEvent:
    """One item of GET /events: `kind` is "import" or "lock"; `data` the parsed object."""

    kind: str
    data: Import | Lock | dict[str, Any]
