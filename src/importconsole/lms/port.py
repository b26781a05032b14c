"""The one interface the operations speak to an LMS through, and what each backend can do.

Two backends implement `LmsBackend`:
- `lms.client.LmsClient`: the console's own API (`/api/v1`, the reference LMS);
- the EthosCE backend (Drupal 7 + Feeds admin pages, restws web services).

They do not offer the same things. Feeds has no import ids, no idempotency key, no per-row
results, one job per importer and no record of who started it (the console's journal is the only
one). `Capabilities` says so up front, and an operation that needs what a backend lacks raises
`CapabilityMissing`, whose `str()` is the sentence the admin reads: never an AttributeError.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Protocol, runtime_checkable

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
    Remaining,
    ServerEvent,
    UnlockResult,
    UserLookup,
)

if TYPE_CHECKING:
    import asyncio
    import os

    from importconsole.importfile.facts import LmsFacts

    from importconsole.lms.upload import SubmitReceipt

KIND_ETHOSCE = "ethosce"


@dataclass(frozen=True)
class Capabilities:
    """What a backend can and cannot do. Operations ask before they lean on one."""

    name: str  # how sentences name the LMS: "the LMS", "EthosCE (Drupal Feeds)"
    idempotency_key: bool = True  # a retried upload carries a key the LMS recognises
    per_row_results: bool = True  # the LMS says, row by row, what it did with the file
    remaining_rows: bool = True  # the LMS hands back the rows an import never reached
    submitted_file: bool = True  # the LMS hands back the file it was given
    event_stream: bool = True  # the LMS pushes changes (else: polling only)
    several_jobs_per_importer: bool = True  # imports queue up behind a locked importer
    who_started: bool = True  # the LMS records who started an import
    import_history: bool = True  # the LMS lists earlier imports (by file hash)
    import_ids: bool = True  # each import has its own id (else: named by its importer)
    credit_records: bool = True  # the LMS lists credit records with their source
    unlock_names_import: bool = True  # Unlock compares against the import the caller expects

    def missing(self) -> list[str]:
        return [f.name for f in fields(self) if f.type in ("bool", bool) and not getattr(self, f.name)]


REFERENCE_CAPABILITIES = Capabilities(name="the LMS")

# What the LMS lacks, in words; the operation adds what it was doing and what the admin can do.
LACKS = {
    "idempotency_key": "keeps no idempotency key for an upload",
    "per_row_results": "does not say what it did with each row",
    "remaining_rows": "cannot hand back the rows an import did not reach",
    "submitted_file": "does not hand back the file it was given",
    "event_stream": "does not push changes (the console polls instead)",
    "several_jobs_per_importer": "runs one import per importer at a time",
    "who_started": "does not record who started an import (the console's journal is the only record)",
    "import_history": "keeps no list of earlier imports",
    "import_ids": "gives imports no id (an import is named by its importer)",
    "credit_records": "does not list credit records with their source",
    "unlock_names_import": "unlocks an importer without naming the import that held it",
}


class CapabilityMissing(Exception):
    """An operation needs something this LMS does not offer. `str()` is the whole sentence:
    what the LMS lacks, what could not be done, and what the admin can do instead."""

    def __init__(self, capabilities: Capabilities, capability: str, doing: str, instead: str = ""):
        self.capability = capability
        self.backend = capabilities.name
        lacks = LACKS.get(capability, f"does not offer {capability.replace('_', ' ')}")
        text = f"{capabilities.name[0].upper()}{capabilities.name[1:]} {lacks}, so the console cannot {doing}."
        if instead:
            text += f" {instead[0].upper()}{instead[1:]}" + ("" if instead.endswith((".", "?", "!")) else ".")
        super().__init__(text)


def capabilities_of(backend: LmsBackend) -> Capabilities:
    """What a backend can do (every backend says: `LmsBackend.capabilities`)."""
    return backend.capabilities


def require(backend: LmsBackend, capability: str, doing: str, instead: str = "") -> None:
    """Raise CapabilityMissing (a sentence) unless the backend offers `capability`."""
    caps = capabilities_of(backend)
    if not getattr(caps, capability):  # a field of Capabilities, named by the operation
        raise CapabilityMissing(caps, capability, doing, instead)


ProgressCallback = Callable[[int, int], None]


@runtime_checkable
class LmsBackend(Protocol):
    """What operations/ need from an LMS. Every method raises `lms.errors.LmsError` (a sentence)
    for what went wrong over the wire, and `CapabilityMissing` for what this LMS cannot do."""

    base_url: str  # names the LMS in the journal (a "sending" entry is settled against it)
    profile: str | None
    username: str | None  # who the console acts as, once known

    @property
    def capabilities(self) -> Capabilities: ...

    async def __aenter__(self) -> LmsBackend: ...
    async def __aexit__(self, *exc: object) -> None: ...
    async def aclose(self) -> None: ...

    # -- who, and the facts the rules need
    async def me(self) -> Me: ...
    async def credit_types(self) -> list[CreditType]: ...
    async def courses(self, external_id: str | None = None, *, offset: int = 0, limit: int = 100) -> Page[Course]: ...
    async def course(self, course_id: int) -> Course: ...
    async def lookup_courses(self, external_ids: Iterable[str]) -> CourseLookup: ...
    async def lookup_users(self, external_user_ids: Iterable[str] = (), emails: Iterable[str] = ()) -> UserLookup: ...
    async def lookup_enrollments(self, keys: Sequence[dict[str, str]]) -> list[Enrollment]: ...
    async def credit_records(self, *, course_external_id: str | None = None, source: str | None = None,
                             complete: bool | None = None, user_id: int | None = None,
                             offset: int = 0, limit: int = 1000) -> Page[CreditRecord]: ...

    # -- imports and locks
    async def list_imports(self, *, state: str | None = None, idempotency_key: str | None = None,
                           file_sha256: str | None = None, offset: int = 0, limit: int = 100) -> Page[Import]: ...
    async def find_import_by_key(self, idempotency_key: str) -> Import | None: ...
    async def get_import(self, import_id: int) -> Import: ...
    async def import_remaining(self, import_id: int) -> Remaining: ...
    async def import_file(self, import_id: int) -> bytes: ...
    async def locks(self) -> list[Lock]: ...
    async def lock(self, importer: str) -> Lock: ...
    async def unlock(self, importer: str, import_id: int) -> UnlockResult: ...
    def events(self) -> AsyncIterator[ServerEvent]: ...
    def facts(self, loop: asyncio.AbstractEventLoop) -> LmsFacts:
        """The validation rules' facts from this LMS, for a worker thread while the backend runs on `loop`."""
        ...

    async def submit_import_detailed(self, path: str | os.PathLike[str], *, importer: str,
                                     course_external_id: str | None = None, idempotency_key: str | None = None,
                                     file_name: str | None = None, progress: ProgressCallback | None = None,
                                     expected_sha256: str | None = None) -> SubmitReceipt: ...


def facts_for(backend: LmsBackend, loop: asyncio.AbstractEventLoop) -> LmsFacts:
    """The validation rules' `LmsFacts` for this backend (run from a worker thread): restws on an EthosCE
    site, the reference API's look-ups (`lms.facts.ApiFacts`) on the console's own."""
    return backend.facts(loop)
