"""What the rules need to know about the LMS, behind one small interface.

`LmsFacts` is a *sync*, *batched* protocol: validation runs in a worker thread and asks for
everything a chunk of at most 1,000 records needs in one call per kind of fact. Implementations:

- `OfflineFacts` (here): answers nothing; `online` is False, so `validate()` lists the rules that
  need the LMS under `not_checked` instead of calling it.
- `importconsole.lms.facts.ApiFacts` (client area): the LMS API, cached for the run.

Contract for implementers (every method gets at most `MAX_KEYS` keys; callers chunk):

- `online: bool` -- True for a real LMS.
- `credit_types() -> dict[machine_name, CreditTypeFact]` -- every credit type of the site.
- `courses(external_ids) -> dict[external_id, CourseFact | None]` -- one entry per asked id;
  None = no such course.
- `users(external_user_ids, emails) -> dict[UserKey, UserFact | None]` -- one entry per asked
  key: `UserKey(external_user_id=x)` for each id, `UserKey(email=e)` for each email (emails
  compare case-insensitively; `UserKey` lower-cases them). None = not found.
- `enrollments(keys) -> dict[(UserKey, course_external_id), EnrollmentFact | None]` -- keys are
  `(UserKey, course_external_id)` pairs; None = not enrolled.

Numbers are `Decimal` (the LMS stores decimal(6,2)); the dataclasses convert floats and strings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import NamedTuple, Protocol, TypeVar, runtime_checkable
from collections.abc import Iterable, Iterator, Sequence

# The most keys one call may carry (the API refuses more with 413).
MAX_KEYS = 1000


def to_decimal(value: object) -> Decimal:
    """JSON numbers arrive as floats: go through str so 0.1 stays 0.1."""
    if isinstance(value, Decimal):
        return value
    return Decimal(str(value))


@dataclass(frozen=True)
class CreditTypeFact:
    machine_name: str
    label: str
    reports_to: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "reports_to", tuple(self.reports_to))


@dataclass(frozen=True)
class CourseCreditFact:
    """One credit type offered by one course (the page's "Variable" is enable_variable_credit)."""

    min: Decimal
    max: Decimal
    increments: Decimal
    enable_variable_credit: bool

    def __post_init__(self) -> None:
        for name in ("min", "max", "increments"):
            object.__setattr__(self, name, to_decimal(getattr(self, name)))


@dataclass(frozen=True)
class CourseFact:
    external_id: str
    title: str
    has_certificate: bool
    required_objects: int
    credits: dict[str, CourseCreditFact] = field(default_factory=dict)
    id: int | None = None
    is_shell: bool = False


@dataclass(frozen=True)
class UserKey:
    """Who a row names: its external_user_id if it has one, else its email (lower-cased)."""

    external_user_id: str | None = None
    email: str | None = None

    def __post_init__(self) -> None:
        if self.email is not None:
            object.__setattr__(self, "email", self.email.strip().lower())
        if self.external_user_id is not None:
            object.__setattr__(self, "external_user_id", self.external_user_id.strip())
        if (self.external_user_id is None) == (self.email is None):
            raise ValueError("a UserKey holds exactly one of external_user_id or email")

    @classmethod
    def for_row(cls, external_user_id: str | None, email: str | None) -> UserKey | None:
        """The key the LMS matches a row on: the external id first, else the email."""
        if external_user_id and external_user_id.strip():
            return cls(external_user_id=external_user_id)
        if email and email.strip():
            return cls(email=email)
        return None

    def __str__(self) -> str:
        return self.external_user_id if self.external_user_id is not None else str(self.email)


@dataclass(frozen=True)
class UserFact:
    id: int
    external_user_id: str | None = None
    email: str | None = None
    first_name: str = ""
    last_name: str = ""


class CreditRecordFact(NamedTuple):
    credit_type: str
    amount: Decimal
    source: str  # "import" or "awarded"


@dataclass(frozen=True)
class EnrollmentFact:
    status: str  # "incomplete" or "complete"
    credits: tuple[CreditRecordFact, ...] = ()
    id: int | None = None

    def __post_init__(self) -> None:
        if self.status not in ("incomplete", "complete"):
            raise ValueError(f"enrollment status must be incomplete or complete, not {self.status!r}")
        object.__setattr__(
            self,
            "credits",
            tuple(CreditRecordFact(c[0], to_decimal(c[1]), c[2]) for c in self.credits),
        )

    @property
    def complete(self) -> bool:
        return self.status == "complete"


EnrollmentKey = tuple[UserKey, str]


@runtime_checkable
class LmsFacts(Protocol):
    online: bool

    def credit_types(self) -> dict[str, CreditTypeFact]: ...

    def courses(self, external_ids: Sequence[str]) -> dict[str, CourseFact | None]: ...

    def users(
        self, external_user_ids: Sequence[str], emails: Sequence[str]
    ) -> dict[UserKey, UserFact | None]: ...

    def enrollments(self, keys: Sequence[EnrollmentKey]) -> dict[EnrollmentKey, EnrollmentFact | None]: ...


class OfflineFacts:
    """No LMS: the rules that need one are reported as not checked, never guessed."""

    online = False

    def credit_types(self) -> dict[str, CreditTypeFact]:
        return {}

    def courses(self, external_ids: Sequence[str]) -> dict[str, CourseFact | None]:
        return {}

    def users(self, external_user_ids: Sequence[str], emails: Sequence[str]) -> dict[UserKey, UserFact | None]:
        return {}

    def enrollments(self, keys: Sequence[EnrollmentKey]) -> dict[EnrollmentKey, EnrollmentFact | None]:
        return {}


T = TypeVar("T")


def chunks(items: Iterable[T], size: int = MAX_KEYS) -> Iterator[list[T]]:
    """Split look-ups so no call carries more than the API accepts."""
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
