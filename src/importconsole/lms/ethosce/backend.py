"""`EthosceBackend`: an EthosCE site (Drupal 7 + Feeds admin pages, restws web services) behind the
operations' port (`lms.port.LmsBackend`).

What maps, maps: who we are (the admin logs in, the restws account is checked), the facts the rules
need (restws), each importer's lock. What Feeds does not have (import ids, an idempotency key, per-row
results, the remainder, an event stream, who started an import) raises `CapabilityMissing`, a sentence;
the importer-level workflows that replace them (submit with a driven batch, watch, diagnose, compare-and-
unlock, re-import) are in `operations.ethosce`, over `FeedsSite` and `RestwsClient` here.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import TYPE_CHECKING, NoReturn

import httpx

from importconsole.lms.ethosce.facts import RestwsFacts, RestwsLookups, ref_id
from importconsole.lms.ethosce.feeds import FeedsSite, ImporterStatus
from importconsole.lms.ethosce.restws import RestwsClient
from importconsole.lms.ethosce.session import DrupalSession
from importconsole.importfile.facts import UserKey
from importconsole.lms.models import (
    Course,
    CourseCredit,
    CourseLookup,
    CreditRecord,
    CreditType,
    Enrollment,
    Import,
    Importer,
    JsonObject,
    Lock,
    Me,
    Page,
    Remaining,
    ServerEvent,
    UnlockResult,
    User,
    UserLookup,
)
from importconsole.lms.port import Capabilities, CapabilityMissing, ProgressCallback
from importconsole.lms.transport import RetryPolicy

if TYPE_CHECKING:
    from importconsole.config import Profile
    from importconsole.lms.upload import SubmitReceipt
    from importconsole.secrets import Credentials

FEEDS_CAPABILITIES = Capabilities(
    name="EthosCE (Drupal Feeds)", idempotency_key=False, per_row_results=False, remaining_rows=False,
    submitted_file=False, event_stream=False, several_jobs_per_importer=False, who_started=False,
    import_history=False, import_ids=False, credit_records=False, unlock_names_import=False)

BY_IMPORTER = "name the importer instead (importconsole imports lists them), e.g. `importconsole watch course_record_import`"


class EthosceBackend:
    """`async with EthosceBackend(profile, credentials) as site: await site.me()`."""

    def __init__(self, profile: Profile, credentials: Credentials, *, retry: RetryPolicy | None = None,
                 transport: httpx.AsyncBaseTransport | None = None):
        self.profile_config = profile
        self.profile: str | None = profile.name
        self.username: str | None = None
        # A missing password or restws user name never gets here (find_credentials refuses first): sent empty, refused.
        self.session = DrupalSession(profile.base_url, profile.username, credentials.password or "", ca_bundle=profile.ca_bundle,
                                     profile=profile.name, retry=retry, transport=transport)
        self.restws = RestwsClient(profile.base_url, profile.restws_username or "", credentials.restws_password or "",
                                   ca_bundle=profile.ca_bundle, profile=profile.name, retry=retry, transport=transport)
        self.feeds = FeedsSite(self.session)
        self.base_url: str = self.session.base_url
        self.lookups = RestwsLookups(self.restws)  # cached for the run (credit fixes, recover)

    def __repr__(self) -> str:
        return f"EthosceBackend({self.base_url!r}, profile={self.profile!r})"

    @property
    def capabilities(self) -> Capabilities:
        return FEEDS_CAPABILITIES

    async def __aenter__(self) -> EthosceBackend:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await asyncio.gather(self.session.aclose(), self.restws.aclose())

    # -- who, and the facts -------------------------------------------------------------------

    async def me(self) -> Me:
        """Logs the admin in (once; a refusal is never retried) and checks the restws account with
        one read: a wrong password of either is said before anything else happens."""
        if not self.session.logged_in:
            await self.session.login()
        await self.restws.last_transcript_id()
        self.username = self.session.username
        return Me(username=self.session.username, role="site admin", display_name=self.session.username)

    def facts(self, loop: asyncio.AbstractEventLoop) -> RestwsFacts:
        """The validation rules' `LmsFacts` from restws (requests grow with learners and courses, not rows)."""
        return RestwsFacts(self.restws, loop)

    def importer_ids(self) -> list[str]:
        """The profile's importers: the course-level one, then the global one if configured."""
        p = self.profile_config
        return [p.course_importer] + ([p.global_importer] if p.global_importer else [])

    def importer_id(self, importer: str) -> str:
        """"course"/"global" (the reference API's names) or a Feeds importer id, as the id."""
        if importer in tuple(Importer):
            found: str | None = self.profile_config.importer_id(importer)
            if not found:
                raise CapabilityMissing(FEEDS_CAPABILITIES, "import_ids", "find the global importer",
                                        f"set global_importer in [profiles.{self.profile}]")
            return found
        return importer

    async def status(self, importer_id: str) -> ImporterStatus:
        return await self.feeds.status(importer_id)

    async def background_mode(self, importer_id: str) -> bool | None:
        """Whether the importer runs in background mode (cron): its settings page's "Process in background"
        checkbox. The import page cannot say while the importer is locked. None: the page could not be read."""
        from importconsole.lms.errors import LmsError

        try:
            page = await self.session.get_page(f"/admin/structure/feeds/{importer_id}/settings",
                                               f"read the settings of importer {importer_id}")
        except LmsError:
            return None
        box = page.root.find("input", id="edit-process-in-background")
        return None if box is None else box.get("checked") is not None

    async def locks(self) -> list[Lock]:
        return [await self.lock(i) for i in self.importer_ids()]

    async def lock(self, importer: str) -> Lock:
        status = await self.status(self.importer_id(importer))
        return Lock(importer=status.importer_id, locked=status.locked)

    async def credit_types(self) -> list[CreditType]:
        rows = await self.restws.course_credits()
        seen: dict[str, CreditType] = {}
        for row in rows:
            name = str(row.get("type") or "")
            reports = str(row.get("reports_to") or "")
            if name and name not in seen:
                seen[name] = CreditType(name, name, (reports,) if reports else ())
        return list(seen.values())

    async def courses(self, external_id: str | None = None, *, offset: int = 0, limit: int = 100) -> Page[Course]:
        """The site's courses (restws `course`), each with its active credit types (`course_credit`)."""
        rows = await self.restws.courses(**({"external_course_id": external_id} if external_id else {}))
        credits = await self._active_credits()
        items = [_course(r, credits) for r in rows]
        page = items[offset:offset + limit]
        return Page(page, offset + limit if offset + limit < len(items) else None)

    # -- look-ups by key (credit fixes, recover), from restws, cached for the run ---------------

    def _lacks(self, capability: str, doing: str, instead: str = "") -> NoReturn:
        raise CapabilityMissing(FEEDS_CAPABILITIES, capability, doing, instead)

    async def course(self, course_id: int) -> Course:
        self._lacks("credit_records", f"read course {course_id} by its id")

    async def lookup_courses(self, external_ids: Iterable[str]) -> CourseLookup:
        wanted = list(dict.fromkeys(external_ids))
        rows = await self.lookups.course_rows(wanted)
        credits = await self._active_credits()
        return CourseLookup(tuple(_course(r, credits) for r in rows.values() if r is not None),
                            tuple(x for x, r in rows.items() if r is None))

    async def lookup_users(self, external_user_ids: Iterable[str] = (), emails: Iterable[str] = ()) -> UserLookup:
        keys = [UserKey(external_user_id=x) for x in dict.fromkeys(external_user_ids)]
        keys += [UserKey(email=e) for e in dict.fromkeys(emails)]
        rows = await self.lookups.user_rows(keys)
        found = {ref_id(r["uid"]): _user(r) for r in rows.values() if r is not None}
        return UserLookup(tuple(found.values()),
                          tuple(k.external_user_id for k, r in rows.items() if r is None and k.external_user_id),
                          tuple(k.email for k, r in rows.items() if r is None and k.email))

    async def lookup_enrollments(self, keys: Sequence[dict[str, str]]) -> list[Enrollment]:
        """keys: `{"external_user_id"|"email": ..., "course_external_id": ...}` (the reference API's shape)."""
        asked = [(UserKey(external_user_id=k["external_user_id"]) if k.get("external_user_id") else UserKey(email=k["email"]),
                  k["course_external_id"]) for k in keys]
        rows = await self.lookups.enrollment_rows(asked)
        users = await self.lookups.user_rows([u for u, _ in asked])
        out = []
        for (user, course), e in rows.items():
            if e is not None:
                u = users.get(user) or {}
                out.append(Enrollment(id=ref_id(e["eid"]), user_id=ref_id(e["uid"]), course_id=ref_id(e["nid"]),
                                      course_external_id=course, status=str(e.get("status") or ""),
                                      external_user_id=u.get("external_user_id") or None, email=u.get("mail") or None,
                                      date_completed=e.get("date_completed") or None))
        return out

    async def _active_credits(self) -> dict[int, list[CourseCredit]]:
        credits: dict[int, list[CourseCredit]] = {}
        for c in await self.lookups.credit_rows():
            if int(c.get("active") or 0):
                credits.setdefault(ref_id(c["nid"]), []).append(CourseCredit(
                    str(c["type"]), float(c.get("min") or 0), float(c.get("max") or 0),
                    float(c.get("increments") or 0), bool(int(c.get("enable_variable_credit") or 0))))
        return credits

    # -- what Feeds does not have: a sentence each ---------------------------------------------

    async def credit_records(self, *, course_external_id: str | None = None, source: str | None = None,
                             complete: bool | None = None, user_id: int | None = None,
                             offset: int = 0, limit: int = 1000) -> Page[CreditRecord]:
        self._lacks("credit_records", "find imported credit that is never reported",
                    "give the import file with --file: its rows are checked against the site's facts instead")

    async def list_imports(self, *, state: str | None = None, idempotency_key: str | None = None,
                           file_sha256: str | None = None, offset: int = 0, limit: int = 100) -> Page[Import]:
        self._lacks("import_ids", "list imports", BY_IMPORTER)

    async def find_import_by_key(self, idempotency_key: str) -> Import | None:
        self._lacks("idempotency_key", "find an upload by its key", "look at the importer's page and its stored rows")

    async def get_import(self, import_id: int) -> Import:
        self._lacks("import_ids", f"read import {import_id}", BY_IMPORTER)

    async def import_remaining(self, import_id: int) -> Remaining:
        self._lacks("remaining_rows", f"work out which rows of import {import_id} are left",
                    "give the file that was uploaded with --file")

    async def import_file(self, import_id: int) -> bytes:
        self._lacks("submitted_file", f"read the file of import {import_id}", "give the file that was uploaded with --file")

    async def unlock(self, importer: str, import_id: int) -> UnlockResult:
        self._lacks("unlock_names_import", f"unlock import {import_id} by its id",
                    f"`importconsole unlock {self.importer_id(importer)}` compares progress and stored rows instead")

    def events(self) -> AsyncIterator[ServerEvent]:
        self._lacks("event_stream", "follow the imports live", "the console polls the importer's page instead")

    async def submit_import_detailed(self, path: str | os.PathLike[str], *, importer: str, course_external_id: str | None = None,
                                     idempotency_key: str | None = None, file_name: str | None = None,
                                     progress: ProgressCallback | None = None, expected_sha256: str | None = None) -> SubmitReceipt:
        self._lacks("idempotency_key", "send an upload that a retry could not import twice",
                    f"`importconsole submit FILE --profile {self.profile}` uploads it through the import form once")


def _course(row: JsonObject, credits: dict[int, list[CourseCredit]]) -> Course:
    nid = ref_id(row["nid"])
    return Course(id=nid, external_id=str(row["external_course_id"]), title=str(row.get("title") or ""),
                  has_certificate=bool(int(row.get("has_certificate") or 0)),
                  required_objects=int(row.get("required_objects") or 0), credits=tuple(credits.get(nid, ())))


def _user(row: JsonObject) -> User:
    return User(id=ref_id(row["uid"]), external_user_id=row.get("external_user_id") or None, email=row.get("mail") or None,
                first_name=str(row.get("name") or ""))
