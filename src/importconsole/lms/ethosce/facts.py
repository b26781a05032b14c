"""`RestwsFacts`: the import-file rules' `LmsFacts` (importfile/facts.py), answered by EthosCE's restws.

restws filters are exact matches, so every fact is looked up by key, and the number of requests grows with
the distinct learners and courses of the file, never with its rows. For each resource the first page of the
whole table is read once (its `last` link says how many pages the table has); when a look-up would need at
least that many requests, the whole table is paged instead. Everything is cached for the run (learners and
enrollments as their few fields read, in a `FactStore`: bounded memory), at most 4 requests are in flight
(`RestwsClient`).

Mapping (the kit's resources; EthosCE's own property names may differ, see docs/ethosce.md):
- credit types: the distinct `course_credit.type` of the site, `reports_to` from the same rows. restws has
  no credit-type resource, so the whole `course_credit` table is read once; it also gives every course's credits.
- courses: `course.external_course_id`; a course's credits are its ACTIVE `course_credit` rows.
- users: `user.external_user_id`, else `user.mail`. Drupal matches e-mails case-insensitively and restws
  compares exactly, so an e-mail not found by the exact look-up is only called unknown after the whole user
  table was read (never a false "unknown learner").
- enrollments: `course_enrollment` by the learner's uid (one listing per learner), matched on the course's nid.
  `EnrollmentFact.credits` stays empty: restws gives only `imported_credit`, with no credit type.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

from importconsole.importfile.facts import (
    CourseCreditFact,
    CourseFact,
    CreditTypeFact,
    EnrollmentFact,
    EnrollmentKey,
    UserFact,
    UserKey,
)
from importconsole.lms.ethosce.restws import RestwsClient, page_number
from importconsole.lms.fact_store import IN_MEMORY, FactStore, look_up, user_name
from importconsole.lms.models import JsonObject

T = TypeVar("T")


def ref_id(value: Any) -> int:  # Any: a JSON value, a number or a reference object
    """An id as the kit gives it (a number) or as real restws renders a reference ({"uri", "id", "resource"})."""
    return int(value["id"] if isinstance(value, dict) else value)


def _user_fact(u: JsonObject) -> UserFact:
    return UserFact(ref_id(u["uid"]), u.get("external_user_id") or None, u.get("mail") or None, u.get("name") or "", "")


USER_FIELDS = ("uid", "external_user_id", "mail", "name")
ENROLLMENT_FIELDS = ("eid", "uid", "nid", "status", "date_completed")


def _trim(row: JsonObject, fields: tuple[str, ...]) -> JsonObject:
    return {f: row[f] for f in fields if f in row}


class RestwsLookups:
    """The async half: cached look-ups over a `RestwsClient` (usable directly from async code)."""

    def __init__(self, client: RestwsClient, *, in_memory: int = IN_MEMORY):
        self.client = client
        self._pages: dict[str, int] = {}
        self._first: dict[str, JsonObject] = {}
        self._whole: dict[str, list[JsonObject]] = {}
        self._credit_rows: list[JsonObject] | None = None
        self.courses: dict[str, JsonObject | None] = {}  # external_course_id -> course row
        # Learners and their enrollments, kept for the run with bounded memory (lms/fact_store.py): only the
        # fields the console reads.
        self.users = FactStore(in_memory)  # user_name(key) -> user row, or None
        self._enrollments = FactStore(in_memory)  # str(uid) -> the learner's enrollment rows

    async def table_pages(self, resource: str) -> int:
        if resource not in self._pages:
            self._first[resource] = first = await self.client.first_page(resource)
            self._pages[resource] = page_number(first.get("last"), 0) + 1
        return self._pages[resource]

    async def whole(self, resource: str) -> list[JsonObject]:
        """The whole table, once; its first page is reused when it was read to count the pages."""
        if resource not in self._whole:
            first = self._first.get(resource)
            self._whole[resource] = (await self.client.rest_of(resource, first) if first is not None
                                     else (await self.client.list_all(resource)).items)
        return self._whole[resource]

    async def _cheaper_whole(self, resource: str, keys: int) -> bool:
        return resource in self._whole or keys >= await self.table_pages(resource)

    async def credit_rows(self) -> list[JsonObject]:
        if self._credit_rows is None:
            self._credit_rows = await self.whole("course_credit")
        return self._credit_rows

    async def credit_types(self) -> dict[str, CreditTypeFact]:
        # Validation asks this first and needs the other tables' sizes next: read their first pages at the
        # same time (they are read anyway, so this costs no request, only waiting).
        await asyncio.gather(self.credit_rows(), *(self.table_pages(r) for r in ("course", "user", "course_enrollment")))
        reports: dict[str, set[str]] = {}
        for row in await self.credit_rows():
            reports.setdefault(row["type"], set()).update([row["reports_to"]] if row.get("reports_to") else [])
        return {t: CreditTypeFact(t, t, tuple(sorted(r))) for t, r in reports.items()}

    async def course_rows(self, external_ids: Sequence[str]) -> dict[str, JsonObject | None]:
        wanted = [x for x in dict.fromkeys(external_ids) if x not in self.courses]
        if wanted and await self._cheaper_whole("course", len(wanted)):
            by_ext = {c["external_course_id"]: c for c in await self.whole("course")}
            for x in wanted:
                self.courses[x] = by_ext.get(x)
        elif wanted:
            found = await asyncio.gather(*(self.client.courses(external_course_id=x) for x in wanted))
            for x, rows in zip(wanted, found):
                self.courses[x] = rows[0] if rows else None
        return {x: self.courses[x] for x in external_ids}

    async def course_facts(self, external_ids: Sequence[str]) -> dict[str, CourseFact | None]:
        rows = await self.course_rows(external_ids)
        credits: dict[int, dict[str, CourseCreditFact]] = {}
        for c in await self.credit_rows():
            if c.get("active"):
                credits.setdefault(ref_id(c["nid"]), {})[c["type"]] = CourseCreditFact(
                    c["min"], c["max"], c["increments"], bool(c.get("enable_variable_credit")))
        return {x: None if r is None else CourseFact(
            external_id=x, title=r.get("title") or "", has_certificate=bool(r.get("has_certificate")),
            required_objects=int(r.get("required_objects") or 0), credits=credits.get(ref_id(r["nid"]), {}),
            id=ref_id(r["nid"])) for x, r in rows.items()}

    async def user_rows(self, keys: Sequence[UserKey]) -> dict[UserKey, JsonObject | None]:
        names = {k: user_name(k) for k in keys}
        known = self.users.known(names.values())
        wanted = [k for k in names if names[k] not in known]
        if wanted and not await self._cheaper_whole("user", len(wanted)):
            found = await asyncio.gather(*(
                self.client.users(external_user_id=k.external_user_id) if k.external_user_id is not None
                else self.client.users(mail=str(k)) for k in wanted))  # str(k): its e-mail
            new = [(names[k], _trim(rows[0], USER_FIELDS) if rows else None)
                   for k, rows in zip(wanted, found) if rows or k.external_user_id is not None]
            self.users.put_many(new)
            known.update(new)
            wanted = [k for k in wanted if names[k] not in known]  # e-mails in another case: the whole table decides
        if wanted:
            by_id: dict[str, JsonObject] = {}
            by_mail: dict[str | None, JsonObject] = {}  # get(None) when the key has no e-mail
            for u in await self.whole("user"):
                if u.get("external_user_id"):
                    by_id[u["external_user_id"]] = u
                if u.get("mail"):
                    by_mail.setdefault(u["mail"].lower(), u)
            answers = [(k, by_id.get(k.external_user_id) if k.external_user_id is not None else by_mail.get(k.email))
                       for k in wanted]
            new = [(names[k], None if u is None else _trim(u, USER_FIELDS)) for k, u in answers]
            self.users.put_many(new)
            known.update(new)
        return {k: known[names[k]] for k in keys}

    async def enrollment_rows(self, keys: Sequence[EnrollmentKey]) -> dict[EnrollmentKey, JsonObject | None]:
        users = await self.user_rows([k for k, _ in keys])
        courses = await self.course_rows([c for _, c in keys])
        uids = [str(ref_id(u["uid"])) for u in users.values() if u is not None]
        known = self._enrollments.known(uids)
        wanted = [int(u) for u in dict.fromkeys(uids) if u not in known]
        if wanted and await self._cheaper_whole("course_enrollment", len(wanted)):
            table: dict[int, list[JsonObject]] = {}
            for e in await self.whole("course_enrollment"):
                table.setdefault(ref_id(e["uid"]), []).append(_trim(e, ENROLLMENT_FIELDS))
            new = [(str(uid), tuple(table.get(uid, ()))) for uid in wanted]
        elif wanted:
            found = await asyncio.gather(*(self.client.enrollments(uid=uid) for uid in wanted))
            new = [(str(uid), tuple(_trim(e, ENROLLMENT_FIELDS) for e in rows)) for uid, rows in zip(wanted, found)]
        else:
            new = []
        self._enrollments.put_many(new)
        known.update(new)
        # A learner's enrollments by course (the last row of a course wins, as before).
        by_uid = {uid: {ref_id(e["nid"]): e for e in rows} for uid, rows in known.items()}
        out: dict[EnrollmentKey, JsonObject | None] = {}
        for key in keys:
            user, course = users.get(key[0]), courses.get(key[1])
            out[key] = None if user is None or course is None else by_uid[str(ref_id(user["uid"]))].get(ref_id(course["nid"]))
        return out


class RestwsFacts:
    """`LmsFacts` over a `RestwsClient` running on `loop`, for validation in a worker thread."""

    online = True

    def __init__(self, client: RestwsClient, loop: asyncio.AbstractEventLoop, *, timeout: float | None = 300.0,
                 in_memory: int = IN_MEMORY):
        self.lookups = RestwsLookups(client, in_memory=in_memory)
        self.loop = loop
        self.timeout = timeout
        self._lock = threading.Lock()

    @property
    def requests(self) -> int:
        return self.lookups.client.requests

    def _run(self, coro: Coroutine[object, None, T]) -> T:
        with self._lock:
            return look_up(self.loop, coro, self.timeout, "RestwsFacts")

    def credit_types(self) -> dict[str, CreditTypeFact]:
        return self._run(self.lookups.credit_types())

    def courses(self, external_ids: Sequence[str]) -> dict[str, CourseFact | None]:
        return self._run(self.lookups.course_facts(external_ids))

    def users(self, external_user_ids: Sequence[str], emails: Sequence[str]) -> dict[UserKey, UserFact | None]:
        asked = [UserKey(external_user_id=x) for x in external_user_ids] + [UserKey(email=e) for e in emails]
        rows = self._run(self.lookups.user_rows(asked))
        return {k: None if r is None else _user_fact(r) for k, r in rows.items()}

    def enrollments(self, keys: Sequence[EnrollmentKey]) -> dict[EnrollmentKey, EnrollmentFact | None]:
        rows = self._run(self.lookups.enrollment_rows(keys))
        return {k: None if r is None else EnrollmentFact(status=r["status"], id=ref_id(r["eid"])) for k, r in rows.items()}

    def describe(self) -> dict[str, int]:
        return {"requests": self.requests}
