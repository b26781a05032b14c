"""`ApiFacts`: the import-file rules' `LmsFacts`, answered by the LMS API.

Validation runs in a worker thread; the client lives on an event loop. Each call hops onto that
loop with `run_coroutine_threadsafe` and waits. Answers are kept for the run, so validating the
same file twice (validate, then submit) asks the LMS once; they are kept as compact values in a
`FactStore` (bounded memory, then a temporary file), and made facts again when asked for.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Sequence
from decimal import Decimal
from typing import Any, TypeVar

from importconsole.importfile.facts import (
    MAX_KEYS,
    CourseCreditFact,
    CourseFact,
    CreditRecordFact,
    CreditTypeFact,
    EnrollmentFact,
    EnrollmentKey,
    UserFact,
    UserKey,
    chunks,
    to_decimal,
)
from importconsole.lms.client import LmsClient
from importconsole.lms.fact_store import IN_MEMORY, FactStore, enrollment_name, look_up, user_name
from importconsole.lms.models import Course, Enrollment, User

T = TypeVar("T")
Value = tuple[Any, ...]  # a fact as the FactStore keeps it


def course_fact(course: Course) -> CourseFact:
    return CourseFact(
        external_id=course.external_id,
        title=course.title,
        has_certificate=course.has_certificate,
        required_objects=course.required_objects,
        credits={
            c.credit_type: CourseCreditFact(to_decimal(c.min), to_decimal(c.max), to_decimal(c.increments), c.enable_variable_credit)
            for c in course.credits
        },
        id=course.id,
        is_shell=course.is_shell,
    )


def user_fact(user: User) -> UserFact:
    return UserFact(user.id, user.external_user_id, user.email, user.first_name or "", user.last_name or "")


def enrollment_fact(enrollment: Enrollment) -> EnrollmentFact:
    return EnrollmentFact(
        status=enrollment.status,
        credits=tuple(CreditRecordFact(c.credit_type, to_decimal(c.amount), c.source) for c in enrollment.credits),
        id=enrollment.id,
    )


# Compact values (tuples of str, int, bool, None) of the facts, for the FactStore; amounts as decimal strings.

def course_value(course: Course) -> Value:
    fact = course_fact(course)
    credits = tuple((t, str(c.min), str(c.max), str(c.increments), c.enable_variable_credit) for t, c in fact.credits.items())
    return (fact.external_id, fact.title, fact.has_certificate, fact.required_objects, credits, fact.id, fact.is_shell)


def from_course_value(value: Value) -> CourseFact:
    external_id, title, has_certificate, required_objects, credits, id_, is_shell = value
    return CourseFact(external_id, title, has_certificate, required_objects,
                      {t: CourseCreditFact(Decimal(lo), Decimal(hi), Decimal(step), var) for t, lo, hi, step, var in credits},
                      id_, is_shell)


def user_value(user: User) -> Value:
    fact = user_fact(user)
    return (fact.id, fact.external_user_id, fact.email, fact.first_name, fact.last_name)


def enrollment_value(enrollment: Enrollment) -> Value:
    fact = enrollment_fact(enrollment)
    return (fact.status, tuple((c.credit_type, str(c.amount), c.source) for c in fact.credits), fact.id)


def from_enrollment_value(value: Value) -> EnrollmentFact:
    status, credits, id_ = value
    return EnrollmentFact(status=status, credits=credits, id=id_)


class ApiFacts:
    """`LmsFacts` over an `LmsClient` running on `loop` (not the calling thread's loop)."""

    online = True

    def __init__(self, client: LmsClient, loop: asyncio.AbstractEventLoop, *, timeout: float | None = 300.0,
                 in_memory: int = IN_MEMORY):
        self.client = client
        self.loop = loop
        self.timeout = timeout
        self._lock = threading.Lock()
        self._credit_types: dict[str, CreditTypeFact] | None = None
        # Answers as compact values (fact_store.py): memory stays bounded however many learners the file names.
        self._courses = FactStore(in_memory)
        self._users = FactStore(in_memory)
        self._enrollments = FactStore(in_memory)
        self.calls = 0  # requests made (tests check batching and caching)

    def _run(self, coro: Coroutine[object, None, T]) -> T:
        self.calls += 1
        return look_up(self.loop, coro, self.timeout, "ApiFacts")

    def credit_types(self) -> dict[str, CreditTypeFact]:
        with self._lock:
            if self._credit_types is None:
                types = self._run(self.client.credit_types())
                self._credit_types = {t.machine_name: CreditTypeFact(t.machine_name, t.label, t.reports_to) for t in types}
            return dict(self._credit_types)

    def courses(self, external_ids: Sequence[str]) -> dict[str, CourseFact | None]:
        with self._lock:
            known = self._courses.known(external_ids)
            for batch in chunks([x for x in dict.fromkeys(external_ids) if x not in known], MAX_KEYS):
                found = self._run(self.client.lookup_courses(batch))
                by_id = {c.external_id: c for c in found.items}
                new = [(ext, course_value(by_id[ext]) if ext in by_id else None) for ext in batch]
                self._courses.put_many(new)
                known.update(new)
            return {x: None if known[x] is None else from_course_value(known[x]) for x in external_ids}

    def users(self, external_user_ids: Sequence[str], emails: Sequence[str]) -> dict[UserKey, UserFact | None]:
        with self._lock:
            asked = [UserKey(external_user_id=x) for x in external_user_ids] + [UserKey(email=e) for e in emails]
            names = [user_name(k) for k in asked]
            named = dict(zip(asked, names))
            known = self._users.known(names)
            for batch in chunks([k for k, n in named.items() if n not in known], MAX_KEYS):
                ids = [k.external_user_id for k in batch if k.external_user_id is not None]
                mails = [k.email for k in batch if k.email is not None]
                found = self._run(self.client.lookup_users(ids, mails))
                answers: dict[str, Value] = {}
                for user in found.items:
                    value = user_value(user)
                    if user.external_user_id:
                        answers[user_name(UserKey(external_user_id=user.external_user_id))] = value
                    if user.email:
                        answers[user_name(UserKey(email=user.email))] = value
                new = [(named[k], answers.get(named[k])) for k in batch]
                self._users.put_many(new)
                known.update(new)
            return {k: None if known[n] is None else UserFact(*known[n]) for k, n in zip(asked, names)}

    def enrollments(self, keys: Sequence[EnrollmentKey]) -> dict[EnrollmentKey, EnrollmentFact | None]:
        with self._lock:
            names = [enrollment_name(k) for k in keys]
            named = dict(zip(keys, names))
            known = self._enrollments.known(names)
            for batch in chunks([k for k, n in named.items() if n not in known], MAX_KEYS):
                body: list[dict[str, str]] = []
                for user, course in batch:
                    who = "external_user_id" if user.external_user_id is not None else "email"
                    body.append({who: str(user), "course_external_id": course})  # a UserKey holds exactly one
                found = self._run(self.client.lookup_enrollments(body))
                answers: dict[str, Value] = {}
                for enrollment in found:
                    value = enrollment_value(enrollment)
                    if enrollment.external_user_id:
                        answers[enrollment_name((UserKey(external_user_id=enrollment.external_user_id),
                                                 enrollment.course_external_id))] = value
                    if enrollment.email:
                        answers[enrollment_name((UserKey(email=enrollment.email), enrollment.course_external_id))] = value
                new = [(named[k], answers.get(named[k])) for k in batch]
                self._enrollments.put_many(new)
                known.update(new)
            return {k: None if known[n] is None else from_enrollment_value(known[n]) for k, n in zip(keys, names)}
