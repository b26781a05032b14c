"""What the LMS will record for a row, and to whom it reports it: the one answer.

Validate's findings, `fix --completion-only` and its manifest, the submit confirmation, the
recover plan and credit-fix proposals all read `award_for_row` (or `completion_award`, the same
answer for a completion-only row); none of them words this on its own.

The LMS (DOMAIN.md, "How the LMS behaves"):
- credit on a row of a non-variable type: recorded at the course's MAXIMUM (behaviour 1), source
  `import`, never reported (behaviour 6; page: "Reporting credit").
- credit on a variable type: recorded as the row gives it, source `import`, never reported.
- a course shell (global importer, unknown course; behaviour 2): no credit settings, the row's
  credit is recorded as given, never reported.
- a completion without credit, the user exists (behaviour 6): every NON-variable credit type of
  the course at its maximum, source `awarded`, queued to each entity the type reports to, except
  PARS for the global importer (behaviour 7). Variable types are not awarded.
- the user does not exist (behaviour 3): the row waits in the holding table; when the account
  appears it is applied as above, except that a course with 0 required objects completes at once
  and awards EVERY credit type at its maximum.
- an enrollment that is already complete: the row is refused (behaviour 5): nothing recorded.

Pure: no Textual, no httpx. Amounts are Decimal.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from collections.abc import Mapping

from .facts import CourseFact, CreditTypeFact, EnrollmentFact

# Outcomes of a row.
RECORDED = "recorded"  # the LMS records the credits below (possibly none)
HELD = "held"  # user not found: waits in the holding table; `credits` is what is recorded when the account appears
REFUSED = "refused"  # the LMS refuses the row: nothing recorded
UNKNOWN = "unknown"  # not enough facts to say (offline, unknown credit type...)

ENTITY_NAMES = {"pars": "PARS", "cpe_monitor": "CPE Monitor", "ams": "the AMS"}


def _amount(value: Decimal) -> str:
    """1.50 -> 1.5, 2.00 -> 2 (the way the LMS shows decimal(6,2))."""
    return format(value.normalize(), "f")


def entities(reported_to: tuple[str, ...]) -> str:
    """("pars", "ams") -> "PARS and the AMS"; () -> "nobody"."""
    names = [ENTITY_NAMES.get(e, e) for e in reported_to]
    if not names:
        return "nobody"
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


@dataclass(frozen=True)
class RecordedCredit:
    """One credit record the LMS will hold."""

    credit_type: str
    amount: Decimal
    source: str  # "import" (from the row: never reported) or "awarded" (by the LMS on completion)
    reported_to: tuple[str, ...] = ()  # entities it is queued for; () = reported to nobody

    @property
    def short(self) -> str:
        """`1.5 ama`"""
        return f"{_amount(self.amount)} {self.credit_type}"

    def describe(self) -> str:
        """`1.5 ama (awarded, reported to PARS)` / `0.5 ama (imported, reported to nobody)`."""
        how = "awarded" if self.source == "awarded" else "imported"
        return f"{self.short} ({how}, reported to {entities(self.reported_to)})"


@dataclass(frozen=True)
class Award:
    """What the LMS will record for one row in one course, and why."""

    outcome: str  # RECORDED, HELD, REFUSED or UNKNOWN
    credits: tuple[RecordedCredit, ...] = ()
    why: str = ""  # a sentence when the outcome or the amounts are not the obvious ones

    def amounts(self) -> dict[str, Decimal]:
        """{credit type: amount} the LMS records (empty when refused or unknown)."""
        return {c.credit_type: c.amount for c in self.credits} if self.outcome in (RECORDED, HELD) else {}

    @property
    def reported(self) -> tuple[RecordedCredit, ...]:
        return tuple(c for c in self.credits if c.reported_to)

    def will_record(self) -> str:
        """`1.5 ama and 1.5 moc_abim` / `no credit`."""
        if self.outcome == REFUSED:
            return "nothing (the row is refused)"
        if self.outcome == UNKNOWN:
            return "an amount the console cannot tell"
        return and_list([c.short for c in self.credits]) or "no credit"

    def describe(self) -> str:
        """The whole answer in one sentence: what is recorded, and who it is reported to."""
        if self.outcome in (REFUSED, UNKNOWN):
            return f"the LMS records {self.will_record()}" + (f": {self.why}" if self.why else "")
        if not self.credits:
            text = "the LMS records no credit"
        else:
            text = "the LMS will record " + and_list([c.describe() for c in self.credits])
        if self.outcome == HELD:
            text = "the row waits in the holding table until the account exists; then " + text
        return text + (f" ({self.why})" if self.why else "")

    def differs_from(self, file_credit: Mapping[str, Decimal]) -> bool:
        """True when the LMS would record other types or amounts than `file_credit` says."""
        if self.outcome not in (RECORDED, HELD):
            return bool(file_credit)
        return self.amounts() != {t: Decimal(a) for t, a in file_credit.items()}


def and_list(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def file_says(file_credit: Mapping[str, Decimal | str]) -> str:
    """`the file says 0.50 ama` (amounts as written in the file when given as text)."""
    parts = [f"{a} {t}" if str(a).strip() else f"{t} (no amount)" for t, a in file_credit.items()]
    return "the file says " + (and_list(parts) or "no credit")


def parse_credits(text: str | Decimal | None) -> Decimal | None:
    if text is None or isinstance(text, Decimal):
        return text
    try:
        value = Decimal(text.strip())
    except (InvalidOperation, AttributeError):
        return None
    return value if value.is_finite() else None


def _reported(credit_type: str, credit_types: Mapping[str, CreditTypeFact], importer: str) -> tuple[str, ...]:
    fact = credit_types.get(credit_type)
    to = tuple(fact.reports_to) if fact is not None else ()
    # Behaviour 7: the global importer's records are left out of PARS.
    return tuple(e for e in to if not (e == "pars" and importer == "global"))


def completion_award(course: CourseFact, credit_types: Mapping[str, CreditTypeFact], *, importer: str = "course",
                     every_type: bool = False) -> tuple[RecordedCredit, ...]:
    """A completion without credit (user exists; behaviour 6): every non-variable credit type of
    the course at its maximum, awarded and queued for reporting. `every_type`: a new user in a
    course with 0 required objects (behaviour 3) gets variable types too."""
    return tuple(
        RecordedCredit(t, c.max, "awarded", _reported(t, credit_types, importer))
        for t, c in sorted(course.credits.items()) if every_type or not c.enable_variable_credit
    )


def award_for_row(*, course: CourseFact | None, credit_types: Mapping[str, CreditTypeFact], importer: str = "course",
                  complete: bool, credit_type: str = "", credits: str | Decimal | None = None,
                  user_exists: bool | None = True, enrollment: EnrollmentFact | None = None,
                  course_external_id: str = "") -> Award:
    """What the LMS will record for one row (or a completion-only row: `credit_type=""`,
    `credits=None`, `complete=True`) in `course`, and to whom each credit is reported.

    course: the course's facts, None when the course does not exist (the global importer then
    makes a shell; the course-level importer refuses). user_exists: None = not known (offline).
    enrollment: the learner's enrollment in the course now, if any.
    """
    credit_type = (credit_type or "").strip()
    amount = parse_credits(credits) if credits not in (None, "") else None
    name = course.external_id if course is not None else course_external_id
    if enrollment is not None and enrollment.complete:
        return Award(REFUSED, why=f"the enrollment in {name} is already complete and the importer cannot update it")
    if course is None and importer != "global":
        return Award(REFUSED, why=f"course {name} does not exist on the LMS")
    if course is None:
        course = CourseFact(name, name, False, 0, is_shell=True)  # behaviour 2: the shell the row makes
    if user_exists is False:
        inner = award_for_row(course=course, credit_types=credit_types, importer=importer, complete=complete,
                              credit_type=credit_type, credits=amount, user_exists=True)
        if course.required_objects == 0:
            # Behaviour 3: completes at once, every credit type at its max, whatever the row says.
            return Award(HELD, completion_award(course, credit_types, importer=importer, every_type=True),
                         why=f"{name} has no required objects: the learner completes at once with every credit")
        return Award(HELD if inner.outcome == RECORDED else inner.outcome, inner.credits, inner.why)
    if credit_type:
        return _imported(course, credit_types, credit_type, amount, credits)
    if not complete:
        return Award(RECORDED)  # an enrollment without credit
    awarded = completion_award(course, credit_types, importer=importer)
    if user_exists is None:  # offline: no telling whether the account exists
        return Award(RECORDED, awarded, "if the learner's account exists; else the row waits in the holding table")
    return Award(RECORDED, awarded)


def _imported(course: CourseFact, credit_types: Mapping[str, CreditTypeFact], credit_type: str, amount: Decimal | None,
              raw: object) -> Award:
    """The row's own credit: recorded, never reported (behaviour 6)."""
    if credit_type not in credit_types and credit_types:
        return Award(REFUSED, why=f"{credit_type} is not a credit type of the site")
    offered = course.credits.get(credit_type)
    if offered is None:
        if course.is_shell and amount is not None:
            return Award(RECORDED, (RecordedCredit(credit_type, amount, "import"),),
                         why=f"{course.external_id} is a course shell: the credit is recorded as the file gives it")
        return Award(REFUSED, why=f"course {course.external_id} does not offer {credit_type} credit")
    if not offered.enable_variable_credit:
        # Behaviour 1: any amount on a non-variable type records the maximum.
        why = "" if amount == offered.max else (f"Variable is off for {credit_type} on {course.external_id}, "
                                                "so the maximum is recorded")
        return Award(RECORDED, (RecordedCredit(credit_type, offered.max, "import"),), why)
    if amount is None:
        return Award(REFUSED, why=f"{credit_type} credit is variable on {course.external_id} and credits is empty")
    if amount < offered.min or amount > offered.max:
        return Award(REFUSED, why=f"{raw} is outside {offered.min}-{offered.max} {credit_type}")
    return Award(RECORDED, (RecordedCredit(credit_type, amount.quantize(Decimal("0.01")), "import"),))


__all__ = ["Award", "RecordedCredit", "award_for_row", "completion_award", "entities", "file_says",
           "parse_credits", "and_list", "RECORDED", "HELD", "REFUSED", "UNKNOWN"]
