"""The rules that need the LMS's facts (courses, credit types, users, enrollments), fetched
through `LmsFacts` for at most 1,000 records at a time and cached for the run."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from decimal import Decimal
from typing import TYPE_CHECKING, TypeAlias

from .. import safe_text
from ..award import Award, award_for_row, entities, parse_credits
from ..facts import MAX_KEYS, CourseFact, EnrollmentFact, LmsFacts, UserKey, chunks
from .report import Columns, Where
from .values import CREDIT_TYPE_SEPARATORS, _parse_number

if TYPE_CHECKING:
    from .rows import _RowChecks

# A kind of row, as importfile.award weighs it: (course, complete, credit type, credits, user exists, enrollment).
AwardKey: TypeAlias = "tuple[str, bool, str, str, bool, EnrollmentFact | None]"

# LMS rules that need the course's facts (credit settings, required objects, enrollments).
COURSE_RULES = ("partial-credit-not-variable", "credits-out-of-range", "new-user-no-required-objects",
                "would-update-existing", "variable-credit-without-amount", "unknown-course")


class _LmsChecks:
    """Rules that need the LMS: facts fetched for <= 1000 records at a time, cached for the run."""

    def __init__(self, checks: _RowChecks, facts: LmsFacts, importer: str, course: str | None):
        self.checks = checks
        self.facts = facts
        self.importer = importer
        self.course = course
        self.credit_types = facts.credit_types()
        self.courses: dict[str, CourseFact | None] = {}
        self.course_reported: set[str] = set()
        self.awards: dict[AwardKey, Award] = {}  # memo of importfile.award answers
        self.award_rows: Counter[AwardKey] = Counter()  # rows per kind, turned into report.awards at the end
        self.fix_sentences: dict[tuple[str, str, str, bool, bool], str] = {}

    def _courses(self, ids: Iterable[str]) -> None:
        missing = [c for c in dict.fromkeys(ids) if c and c not in self.courses]
        for batch in chunks(missing, MAX_KEYS):
            answer = self.facts.courses(batch)
            for c in batch:
                self.courses[c] = answer.get(c)

    def check(self, columns: Columns, where: Where) -> None:
        cols = self.checks.cols
        out = self.checks.out
        n = len(columns[0])
        empty = ("",) * n
        pick: Callable[[str], Sequence[str]] = lambda name: columns[cols[name]] if name in cols else empty  # noqa: E731
        users, emails, course_col = pick("external_user_id"), pick("external_email"), pick("external_course_id")
        ctype, credits, complete = pick("credit_type"), pick("credits"), pick("complete")
        for start in range(0, n, MAX_KEYS):
            stop = min(n, start + MAX_KEYS)
            rng = range(start, stop)
            course_of = [self.course if self.importer == "course" and self.course else course_col[i].strip() for i in rng]
            self._courses(course_of)
            keys = [UserKey.for_row(users[i], emails[i]) for i in rng]
            ids = sorted({k.external_user_id for k in keys if k and k.external_user_id})
            mails = sorted({k.email for k in keys if k and k.email})
            user_facts = self.facts.users(ids, mails) if (ids or mails) else {}
            enroll_keys = sorted({(k, c) for k, c in zip(keys, course_of) if k and c and self.courses.get(c)},
                                 key=lambda kc: (str(kc[0]), kc[1]))
            enrollments = self.facts.enrollments(enroll_keys) if enroll_keys else {}
            for off, i in enumerate(rng):
                row, line = where(i)
                course_id = course_of[off]
                course = self.courses.get(course_id) if course_id else None
                key = keys[off]
                if course_id and course is None:
                    self._missing_course(row, line, course_id)
                user = user_facts.get(key) if key else None
                if key and user is None and (course is None and course_id and self.importer == "global"
                                             or course is not None and course.required_objects == 0):
                    held = self._award(course, course_id, complete[i] == "1", "", "", False, None)
                    out.add("new-user-no-required-objects", row=row, line=line,
                            column=cols.get("external_user_id", cols.get("external_email")), value=str(key),
                            message=f"learner {safe_text.visible(str(key))!r} does not exist yet and the course has no "
                                    f"required objects: whatever the row says, {held.describe()}")
                enrollment = enrollments.get((key, course_id)) if key and course_id else None
                if enrollment is not None and enrollment.complete:
                    out.add("would-update-existing", row=row, line=line,
                            column=cols.get("external_user_id", cols.get("external_email")), value=str(key),
                            message=f"learner {safe_text.visible(str(key))!r} already has a COMPLETE enrollment in "
                                    f"{safe_text.visible(course_id)!r}: the LMS refuses the row (cannot update)")
                t = ctype[i].strip()
                if course_id and key and not CREDIT_TYPE_SEPARATORS.search(t):
                    # The enrollment without its id: one kind per kind of enrollment, not one per learner.
                    kind = enrollment if enrollment is None or enrollment.id is None else replace(enrollment, id=None)
                    self.award_rows[(course_id, complete[i] == "1", t, credits[i].strip(), user is not None, kind)] += 1
                if not t or CREDIT_TYPE_SEPARATORS.search(t):
                    continue
                self._check_credit(row, line, course, course_id, t, credits[i].strip(), user is not None,
                                   complete[i] == "1")

    def _missing_course(self, row: int | None, line: int | None, course_id: str) -> None:
        out, cols = self.checks.out, self.checks.cols
        if self.importer == "global":
            out.add("course-shell-no-certificate", row=row, line=line, column=cols.get("external_course_id"),
                    value=course_id, message=f"course {safe_text.visible(course_id)!r} does not exist: a course "
                    "shell is made, with no certificate and no required objects")
        elif course_id not in self.course_reported:
            self.course_reported.add(course_id)
            from_file = not (self.importer == "course" and self.course)  # else --course named it
            out.add("unknown-course", row=row if from_file else None, line=line if from_file else None,
                    column=cols.get("external_course_id") if from_file else None, value=course_id,
                    message=f"course {safe_text.visible(course_id)!r} does not exist on the LMS"
                            + (" (its first row here; every row naming it is refused)" if from_file else ""))

    def _check_credit(self, row: int | None, line: int | None, course: CourseFact | None, course_id: str, t: str,
                      amount_text: str, user_exists: bool, complete: bool) -> None:
        """The credit rules of one row whose credit_type names one type."""
        out, cols = self.checks.out, self.checks.cols
        type_fact = self.credit_types.get(t)
        if type_fact is None:
            out.add("unknown-credit-type", row=row, line=line, column=cols.get("credit_type"), value=t,
                    message=f"credit type {safe_text.visible(t)!r} is not one of the site's "
                            f"({', '.join(sorted(self.credit_types)) or 'none'})")
            return
        if self.importer == "global" and "pars" in type_fact.reports_to:
            out.add("global-importer-pars", row=row, line=line, column=cols.get("credit_type"), value=t,
                    message=f"{t} reports to PARS, but global-importer records are left out of PARS reports",
                    fix="use the course-level importer for this course")
        offered = course.credits.get(t) if course is not None else None
        if course is not None and offered is None:
            out.add("unknown-credit-type", row=row, line=line, column=cols.get("credit_type"), value=t,
                    message=f"course {course_id!r} does not offer credit type {t!r}")
        if amount_text and type_fact.reports_to:
            out.add("imported-credit-not-reported", row=row, line=line, column=cols.get("credits"),
                    value=amount_text, message=f"imported {t} credit is never reported to "
                    f"{entities(type_fact.reports_to)}",
                    fix=self._completion_only_fix(course, course_id, t, amount_text, user_exists,
                                                  complete))
        if not amount_text and offered is not None and offered.enable_variable_credit:
            out.add("variable-credit-without-amount", row=row, line=line, column=cols.get("credits",
                    cols.get("credit_type")), value=t,
                    message=f"{t} credit is Variable on {safe_text.visible(course_id)}, but credits is empty: "
                            "the LMS refuses the row")
        if not amount_text or offered is None or not _parse_number(amount_text):
            return
        amount = Decimal(amount_text)
        if amount > offered.max or amount < offered.min or (
                offered.increments and (amount - offered.min) % offered.increments != 0):
            out.add("credits-out-of-range", row=row, line=line, column=cols.get("credits"), value=amount_text,
                    message=f"{amount_text} {t} is outside {course_id}'s range {offered.min}-{offered.max} "
                            f"in steps of {offered.increments}")
        elif amount < offered.max and not offered.enable_variable_credit:
            award = self._award(course, course_id, complete, t, amount_text, True, None)
            out.add("partial-credit-not-variable", row=row, line=line, column=cols.get("credits"),
                    value=amount_text, message=f"{amount_text} is less than the maximum {offered.max} {t} and "
                    f"Variable is off on {course_id}: the LMS records {award.will_record()}")

    def _award(self, course: CourseFact | None, course_id: str, complete: bool, credit_type: str, credits: str,
               user_exists: bool, enrollment: EnrollmentFact | None) -> Award:
        """importfile.award's answer, memoised: rows repeat a few kinds (course, type, amount...)."""
        key = (course_id, complete, credit_type, credits, user_exists, enrollment)
        award = self.awards.get(key)
        if award is None:
            award = self.awards[key] = award_for_row(
                course=course, credit_types=self.credit_types, importer=self.importer, complete=complete,
                credit_type=credit_type, credits=credits or None, user_exists=user_exists, enrollment=enrollment,
                course_external_id=course_id)
        return award

    def _completion_only_fix(self, course: CourseFact | None, course_id: str, credit_type: str, amount: str, user_exists: bool,
                             complete: bool) -> str:
        """The fix sentence, from what the LMS would record for the completion-only row (importfile.award)."""
        key = (course_id, credit_type, amount, user_exists, complete)
        if key not in self.fix_sentences:
            self.fix_sentences[key] = self._fix_sentence(course, course_id, credit_type, amount, user_exists, complete)
        return self.fix_sentences[key]

    def _fix_sentence(self, course: CourseFact | None, course_id: str, credit_type: str, amount: str, user_exists: bool,
                      complete: bool) -> str:
        offered = course.credits.get(credit_type) if course is not None else None
        if not user_exists or offered is None or offered.enable_variable_credit or not complete:
            return ("report this credit by hand, or have the LMS award it (completion-only import where the user "
                    "exists and variable credit is off)")
        award = self._award(course, course_id, True, "", "", True, None)
        fix = f"import the completion without credit: {award.describe()} (`importconsole fix --completion-only`)"
        value = parse_credits(amount)
        if value is None or award.differs_from({credit_type: value}):
            fix += (f"; this row says {amount} {credit_type}: the fix changes it only where the learner's rows say "
                    "what the LMS records, or you accept that award")
        return fix

    def finish(self) -> None:
        """What the LMS will record, per kind of row (the submit confirmation reads it)."""
        report = self.checks.out.report
        for (course_id, complete, t, credits, user_exists, enrollment), n in self.award_rows.items():
            course = self.courses.get(course_id)
            report.awards[self._award(course, course_id, complete, t, credits, user_exists, enrollment)] += n
