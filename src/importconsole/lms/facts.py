"""`ApiFacts`: the import-file rules' `LmsFacts`, answered by the LMS API.

Validation runs in a worker thread; the client lives on an event loop. Each call hops onto that
loop with `run_coroutine_threadsafe` and waits. Answers are cached for the run, so validating the
same file twice (validate, then submit) asks the LMS once.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Sequence
from typing import TypeVar

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
from importconsole.lms.models import Course, Enrollment, User

T = TypeVar("T")


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


class ApiFacts:
    """`LmsFacts` over an `LmsClient` running on `loop` (not the calling thread's loop)."""

    online = True

    def __init__(self, client: LmsClient, loop: asyncio.AbstractEventLoop, *, timeout: float | None = 300.0):
        self.client = client
        self.loop = loop
        self.timeout = timeout
        self._lock = threading.Lock()
        self._credit_types: dict[str, CreditTypeFact] | None = None
        self._courses: dict[str, CourseFact | None] = {}
        self._users: dict[UserKey, UserFact | None] = {}
        self._enrollments: dict[EnrollmentKey, EnrollmentFact | None] = {}
        self.calls = 0  # requests made (tests check batching and caching)

    def _run(self, coro: Coroutine[object, None, T]) -> T:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            coro.close()
            raise RuntimeError("ApiFacts must be called from a worker thread, not from the client's event loop")
        self.calls += 1
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(self.timeout)

    def credit_types(self) -> dict[str, CreditTypeFact]:
        with self._lock:
            if self._credit_types is None:
                types = self._run(self.client.credit_types())
                self._credit_types = {t.machine_name: CreditTypeFact(t.machine_name, t.label, t.reports_to) for t in types}
            return dict(self._credit_types)

    def courses(self, external_ids: Sequence[str]) -> dict[str, CourseFact | None]:
        with self._lock:
            wanted = [x for x in dict.fromkeys(external_ids) if x not in self._courses]
            for batch in chunks(wanted, MAX_KEYS):
                found = self._run(self.client.lookup_courses(batch))
                by_id = {c.external_id: c for c in found.items}
                for ext in batch:
                    self._courses[ext] = course_fact(by_id[ext]) if ext in by_id else None
            return {x: self._courses[x] for x in external_ids}

    def users(self, external_user_ids: Sequence[str], emails: Sequence[str]) -> dict[UserKey, UserFact | None]:
        with self._lock:
            asked = [UserKey(external_user_id=x) for x in external_user_ids] + [UserKey(email=e) for e in emails]
            wanted = [k for k in dict.fromkeys(asked) if k not in self._users]
            for batch in chunks(wanted, MAX_KEYS):
                ids = [k.external_user_id for k in batch if k.external_user_id is not None]
                mails = [k.email for k in batch if k.email is not None]
                found = self._run(self.client.lookup_users(ids, mails))
                answers: dict[UserKey, UserFact] = {}
                for user in found.items:
                    fact = user_fact(user)
                    if user.external_user_id:
                        answers[UserKey(external_user_id=user.external_user_id)] = fact
                    if user.email:
                        answers[UserKey(email=user.email)] = fact
                for key in batch:
                    self._users[key] = answers.get(key)
            return {k: self._users[k] for k in asked}

    def enrollments(self, keys: Sequence[EnrollmentKey]) -> dict[EnrollmentKey, EnrollmentFact | None]:
        with self._lock:
            wanted = [k for k in dict.fromkeys(keys) if k not in self._enrollments]
            for batch in chunks(wanted, MAX_KEYS):
                body: list[dict[str, str]] = []
                for user, course in batch:
                    who = "external_user_id" if user.external_user_id is not None else "email"
                    body.append({who: str(user), "course_external_id": course})  # a UserKey holds exactly one
                found = self._run(self.client.lookup_enrollments(body))
                answers: dict[EnrollmentKey, EnrollmentFact] = {}
                for enrollment in found:
                    fact = enrollment_fact(enrollment)
                    if enrollment.external_user_id:
                        answers[(UserKey(external_user_id=enrollment.external_user_id), enrollment.course_external_id)] = fact
                    if enrollment.email:
                        answers[(UserKey(email=enrollment.email), enrollment.course_external_id)] = fact
                for key in batch:
                    self._enrollments[key] = answers.get(key)
            return {k: self._enrollments[k] for k in keys}
