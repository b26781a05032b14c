"""Credit that will never be reported, and the completion-only re-imports that fix it.

Page sections: "Reporting credit to external entities" (imported credit never triggers reporting
to PARS, CPE Monitor or an AMS; import completions without credit instead: if the user exists,
is complete and the credit is non-variable, the LMS awards it and reports it) and "Importing
enrollments" 2 (credit on an incomplete record remains; re-import a completion).

What the LMS does with a completion-only row (behaviours 5 and 6): on an incomplete enrollment it
deletes the credit the enrollment carried, then awards every NON-variable credit type of the
course at its maximum and queues it to each entity the type reports to. So a proposal is made
only where that loses nothing: the user exists, the enrollment is not complete, and none of the
learner's credit in that course is of a variable type. Everything else gets "why not" and what
to do by hand.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import os
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, UTC
from pathlib import Path
from typing import TYPE_CHECKING, Any
from collections.abc import Awaitable, Callable, Iterable, Sequence

from importconsole.importfile.award import RecordedCredit, and_list, completion_award
from importconsole.importfile.facts import CreditTypeFact
from importconsole.importfile.safe_text import escape_formula, visible
from importconsole.lms.models import FINISHED_STATES, Course, CreditType, Enrollment, Import, User
from importconsole.lms.port import LmsBackend, ProgressCallback, require
from importconsole.private_files import write_private

if TYPE_CHECKING:
    from importconsole.journal import Journal

KIND_INCOMPLETE = "credit-on-incomplete"  # incomplete enrollment carrying imported credit
KIND_NOT_REPORTED = "imported-credit-not-reported"  # imported credit of a reporting type
KIND_FILE_ROW = "file-row"  # a row of a file whose credit would never be reported

# Columns a completion-only row made from file rows keeps (everything but the credit).
CARRIED_COLUMNS = ("first_name", "last_name", "enrollment_start", "enrollment_end", "participant_category")

# How the completion date of a batch of proposals is chosen (asked once per batch).
DATE_TODAY, DATE_FROM_FILE = "today", "file"


@dataclass(frozen=True)
class CreditAward:
    """Credit the LMS will award on completion, and who it reports to (from importfile.award)."""

    credit_type: str
    amount: float
    reports_to: tuple[str, ...]

    def describe(self) -> str:
        """`1.5 ama (awarded, reported to PARS)`: importfile.award's wording."""
        from decimal import Decimal

        return RecordedCredit(self.credit_type, Decimal(str(self.amount)), "awarded", self.reports_to).describe()


@dataclass(frozen=True)
class CompletionOnlyProposal:
    """One learner in one course: a completion-only row, or why not and what to do by hand."""

    kind: str
    course_external_id: str
    external_user_id: str | None
    email: str | None
    user_id: int | None
    enrollment_status: str | None  # "incomplete", "complete" or None (not enrolled)
    current_credit: tuple[tuple[str, float, str], ...]  # (type, amount, source) now on the enrollment/row
    proposed: bool
    awards: tuple[CreditAward, ...] = ()
    reason: str = ""  # why it is (not) proposed, in a sentence
    by_hand: str = ""  # when not proposed: what the admin must do
    rows: tuple[int, ...] = ()  # file rows it comes from (--file)
    date_completed: str = ""
    carried: tuple[tuple[str, str], ...] = ()  # (column, value) kept from the file rows: names, PARS fields
    date_is_today: bool = False  # date_completed is the day of the fix: the LMS knows no completion date
    file_date: str = ""  # the file's date_completed for these rows (--file), kept whatever date is chosen
    date_source: str = ""  # "today", "file" or "given": how date_completed was chosen for the batch

    @property
    def learner(self) -> str:
        return self.external_user_id or self.email or (f"user {self.user_id}" if self.user_id else "unknown learner")

    def describe(self) -> str:
        where = f"{visible(self.learner)} in {visible(self.course_external_id)}"
        if self.rows:
            where += f" (row{'s' if len(self.rows) > 1 else ''} {', '.join(map(str, self.rows))})"
        now = "; ".join(f"{t} {a:g} ({s})" for t, a, s in self.current_credit) or "no credit"
        if self.proposed:
            will = and_list([a.describe() for a in self.awards]) or "no credit (the course has no non-variable type)"
            if self.date_is_today and self.date_source == DATE_TODAY:
                dated = f"complete on {self.date_completed} (today, as chosen for this batch)"
            elif self.date_is_today:
                dated = (f"complete on {self.date_completed} (today, unless another date is chosen for the batch "
                         "when it is sent: the LMS has no completion date for it)")
            elif self.date_completed and self.date_source == "given":
                dated = f"complete on {self.date_completed} (the date given for this batch)"
            elif self.date_completed and self.date_source == DATE_FROM_FILE:
                dated = f"complete on {self.date_completed} (the file's date)"
            elif self.date_completed:
                dated = f"complete on {self.date_completed}"
            else:
                dated = "complete with no date_completed (the LMS uses the learner's next login date)"
            replacing = ", replacing that credit," if self.enrollment_status == "incomplete" else ""
            beyond = self.beyond_current()
            extra = f" That is more than it holds now: {and_list(beyond)}." if beyond else ""
            return f"{where}: now {now}. Completion-only row: marks it {dated}{replacing} with {will}.{extra}"
        return f"{where}: now {now}. Not proposed: {self.reason} By hand: {self.by_hand}"

    def beyond_current(self) -> list[str]:
        """Awards other than the credit held now (or the file's rows): `+1.5 moc_abim`, `ama 1 -> 1.5`.
        Said in the proposal and counted in the confirmation: never an unannounced over-award."""
        held: dict[str, float] = {}
        for t, a, _ in self.current_credit:
            held[t] = max(held.get(t, 0.0), a)
        out = []
        for award in self.awards:
            if award.credit_type not in held:
                out.append(f"+{award.amount:g} {award.credit_type}")
            elif award.amount != held[award.credit_type]:
                out.append(f"{award.credit_type} {held[award.credit_type]:g} -> {award.amount:g}")
        return out

    def import_row(self) -> dict[str, str]:
        return {
            "external_user_id": self.external_user_id or "",
            "external_email": "" if self.external_user_id else (self.email or ""),
            "complete": "1",
            "date_completed": self.date_completed,
            **dict(self.carried),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "course_external_id": self.course_external_id,
            "external_user_id": self.external_user_id,
            "email": self.email,
            "user_id": self.user_id,
            "enrollment_status": self.enrollment_status,
            "current_credit": [{"credit_type": t, "amount": a, "source": s} for t, a, s in self.current_credit],
            "proposed": self.proposed,
            "awards": [{"credit_type": a.credit_type, "amount": a.amount, "reports_to": list(a.reports_to)} for a in self.awards],
            "reason": self.reason,
            "by_hand": self.by_hand,
            "rows": list(self.rows),
            "date_completed": self.date_completed,
            "carried": dict(self.carried),
            "date_is_today": self.date_is_today,
            "date_source": self.date_source,
        }


@dataclass
class ProposalFiles:
    """What `write_proposal_file` wrote: one import file per course, and a report of everything."""

    import_files: dict[str, Path] = field(default_factory=dict)  # course external id -> file
    report: Path | None = None


# ---------------------------------------------------------------------------------------------
# Deciding


@dataclass
class _Learner:
    kind: str
    course: str
    external_user_id: str | None
    email: str | None
    user_id: int | None
    credit: list[tuple[str, float, str]] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)
    date_completed: str = ""
    carried: dict[str, str] = field(default_factory=dict)
    date_is_today: bool = False


def decide(learner: _Learner, *, user_exists: bool, enrollment_status: str | None,
           enrollment_credit: Iterable[tuple[str, float, str]], course: Course | None,
           credit_types: dict[str, CreditType]) -> CompletionOnlyProposal:
    """The rule for one learner in one course (`course` None: it does not exist in the LMS)."""
    current = tuple(learner.credit)
    base: dict[str, Any] = dict(kind=learner.kind, course_external_id=learner.course, external_user_id=learner.external_user_id,
                email=learner.email, user_id=learner.user_id, enrollment_status=enrollment_status,
                current_credit=current, rows=tuple(learner.rows), date_completed=learner.date_completed,
                carried=tuple((c, learner.carried[c]) for c in CARRIED_COLUMNS if learner.carried.get(c)),
                date_is_today=learner.date_is_today,
                file_date=learner.date_completed if learner.kind == KIND_FILE_ROW else "")
    if course is None:
        return CompletionOnlyProposal(**base, proposed=False,
                                      reason=f"course {learner.course!r} does not exist in the LMS.",
                                      by_hand="check the external_course_id, or create the course first.")
    if not user_exists:
        return CompletionOnlyProposal(**base, proposed=False,
                                      reason="the user does not exist in the LMS, so the credit would not be awarded automatically "
                                             "(the row would wait in the holding table).",
                                      by_hand="create the learner's account first (or fix the user id/email), then run credit-fix again.")
    if enrollment_status == "complete":
        return CompletionOnlyProposal(**base, proposed=False,
                                      reason="the enrollment is already complete and the importer cannot update it (page: Updating enrollments).",
                                      by_hand="report this credit to the board by hand, or have it corrected in the LMS's credit records.")
    offered = {c.credit_type: c for c in course.credits}
    held_types = {t for t, _, _ in current} | {t for t, _, _ in enrollment_credit}
    variable = sorted(t for t in held_types if t in offered and offered[t].enable_variable_credit)
    if variable:
        return CompletionOnlyProposal(**base, proposed=False,
                                      reason=f"variable credit is enabled for {', '.join(variable)} in {course.external_id}: "
                                             "the LMS does not award variable credit automatically, and completing would drop it.",
                                      by_hand="leave the imported credit and report it by hand, or have the learner claim it in the LMS.")
    missing = sorted(t for t in held_types if t not in offered)
    if missing:
        return CompletionOnlyProposal(**base, proposed=False,
                                      reason=f"course {course.external_id} does not offer {', '.join(missing)} credit.",
                                      by_hand="check the credit type, or add it to the course before re-importing.")
    # What the LMS records for the completion-only row: importfile.award, the one answer.
    from importconsole.lms.facts import course_fact

    facts = {name: CreditTypeFact(name, t.label, t.reports_to) for name, t in credit_types.items()}
    awards = tuple(CreditAward(c.credit_type, float(c.amount), c.reported_to)
                   for c in completion_award(course_fact(course), facts, importer="course"))
    return CompletionOnlyProposal(**base, proposed=True, awards=awards,
                                  reason="the user exists, the enrollment is not complete and the credit is not variable: "
                                         "a completion without credit makes the LMS award the course's credit itself.")


def date_proposals(proposals: Iterable[CompletionOnlyProposal], choice: str, *,
                   today: date | None = None) -> list[CompletionOnlyProposal]:
    """One completion date for a whole batch, as the admin chose it: `today`, `file` (each file
    row's own date_completed; blank where the file has none: the LMS then uses the learner's next
    login date) or a date `YYYY-MM-DD`. Raises ValueError with a sentence for anything else."""
    if choice not in (DATE_TODAY, DATE_FROM_FILE):
        try:
            date.fromisoformat(choice)
        except (TypeError, ValueError):
            raise ValueError(f"{choice!r} is not a completion date: give today, file or a date like 2026-03-01") from None
    stamp = (today or datetime.now(UTC).date()).isoformat()
    out = []
    for p in proposals:
        if choice == DATE_TODAY:
            dated, is_today, source = stamp, True, DATE_TODAY
        elif choice == DATE_FROM_FILE:
            dated, is_today, source = p.file_date, False, DATE_FROM_FILE
        else:
            dated, is_today, source = choice, choice == stamp, "given"
        out.append(CompletionOnlyProposal(**{**p.__dict__, "date_completed": dated, "date_is_today": is_today,
                                             "date_source": source}))
    return out


def describe_dates(proposals: Iterable[CompletionOnlyProposal]) -> str:
    """The batch's completion date, for a confirmation: `dated 2026-12-02 (today)`."""
    proposed = [p for p in proposals if p.proposed]
    dates = sorted({p.date_completed for p in proposed if p.date_completed})
    blank = sum(1 for p in proposed if not p.date_completed)
    if not proposed:
        return "no completion to date"
    source = proposed[0].date_source
    if source == DATE_FROM_FILE:
        text = "dated as the file says" + (f" ({', '.join(dates[:3])}{' ...' if len(dates) > 3 else ''})" if dates else "")
    elif len(dates) == 1:
        text = f"dated {dates[0]}" + (" (today)" if proposed[0].date_is_today else "")
    else:
        text = "dated " + ", ".join(dates) if dates else ""
    if blank:
        from importconsole.importfile.wording import plural

        text += (("; " if text else "") + f"{plural(blank, 'completion')} without a date (the LMS uses the "
                 "learner's next login date)")
    return text


# ---------------------------------------------------------------------------------------------
# Finding candidates


async def propose_credit_fixes(client: LmsBackend, *, course_external_id: str | None = None, import_id: int | None = None,
                               file: str | os.PathLike[str] | None = None, today: date | None = None) -> list[CompletionOnlyProposal]:
    """Candidates from the LMS (imported credit on incomplete enrollments, and imported credit of
    reporting types), or from a file's rows when `file` is given; one decision per learner and course."""
    from importconsole.lms.errors import NotFound

    completed_on = (today or datetime.now(UTC).date()).isoformat()
    # A filter naming nothing must not read as "nothing to fix".
    if import_id is not None:
        require(client, "import_ids", f"look up import {import_id}", "leave out --import")
        await client.get_import(import_id)  # NotFound: "There is no import N"
    if course_external_id is not None and not (await client.lookup_courses([course_external_id])).items:
        raise NotFound(f"There is no course {course_external_id!r} in the LMS: check the external course id "
                       "given with --course.", status=404)
    credit_types = {t.machine_name: t for t in await client.credit_types()}
    reporting = {name for name, t in credit_types.items() if t.reports_to}
    learners: dict[tuple[str, str], _Learner] = {}
    if file is not None:
        for from_file in _learners_from_file(file, course_external_id, reporting):
            learners[(from_file.course, from_file.external_user_id or from_file.email or "")] = from_file
    else:
        require(client, "credit_records", "find imported credit that is never reported",
                "give the import file with --file: its rows are checked against the site's facts instead")
        records = []
        offset: int | None = 0
        while offset is not None:
            page = await client.credit_records(course_external_id=course_external_id, source="import",
                                               offset=offset, limit=1000)
            records.extend(page.items)
            offset = page.next_offset
        if import_id is not None:
            records = [r for r in records if r.import_id == import_id]
        course_names: dict[int, str] = {r.course_id: r.course_external_id for r in records if r.course_external_id}
        for cid in {r.course_id for r in records} - set(course_names):
            course_names[cid] = (await client.course(cid)).external_id  # an LMS that does not name it
        enrollments_complete: dict[int, bool] = {}
        if records:
            for complete in (True, False):
                offset = 0
                while offset is not None:
                    page = await client.credit_records(course_external_id=course_external_id, source="import",
                                                       complete=complete, offset=offset, limit=1000)
                    for r in page.items:
                        enrollments_complete[r.enrollment_id] = complete
                    offset = page.next_offset
        for r in records:
            complete = enrollments_complete.get(r.enrollment_id, False)
            if complete and r.credit_type not in reporting:
                continue  # complete, and the type reports nowhere: nothing is lost
            ext, email = r.external_user_id, r.email
            course = course_names[r.course_id]
            key = (course, str(r.user_id))
            learner = learners.get(key)
            if learner is None:
                learner = learners[key] = _Learner(KIND_NOT_REPORTED if complete else KIND_INCOMPLETE,
                                                   course, ext, email, r.user_id, date_completed=completed_on,
                                                   date_is_today=True)
            learner.credit.append((r.credit_type, float(r.amount), r.source))
    return await _decide_all(client, list(learners.values()), credit_types)


def _learners_from_file(file: str | os.PathLike[str], course_external_id: str | None, reporting: set[str]) -> list[_Learner]:
    from importconsole.importfile.columns import cell_value, find_columns
    from importconsole.importfile.reader import ImportFileError, open_import_file

    opened = open_import_file(file)
    col = find_columns(opened.header)  # as the LMS reads the header: `External_User_ID` is external_user_id
    if "external_course_id" not in col and not course_external_id:
        raise ImportFileError(
            f"{file}: the header has no external_course_id column, so the file does not say which course its "
            "rows are for", path=file, fix=f"name the course: importconsole credit-fix --file {file} --course EXTERNAL_ID")

    def cell(cells: Sequence[str], name: str) -> str:
        return cell_value(cells, col, name)

    learners: dict[tuple[str, str], _Learner] = {}
    for record in opened.records():
        cells = record.cells
        credit_type = cell(cells, "credit_type")
        if not credit_type or cell(cells, "complete") != "1":
            continue  # credit on complete=0 is the validator's `credit-on-incomplete` error, not a fix
        course = cell(cells, "external_course_id") or course_external_id or ""
        if course_external_id and course != course_external_id:
            continue
        ext, email = cell(cells, "external_user_id") or None, cell(cells, "external_email") or None
        key = (course, (ext or "").strip() or (email or "").lower())
        learner = learners.get(key)
        if learner is None:
            learner = learners[key] = _Learner(KIND_FILE_ROW, course, ext, email, None,
                                               date_completed=cell(cells, "date_completed"))
        # The completion replaces these rows: keep what is not credit (PARS counts need
        # enrollment_start and participant_category; names make the account).
        for name in CARRIED_COLUMNS:
            if cell(cells, name) and not learner.carried.get(name):
                learner.carried[name] = cell(cells, name)
        amount = cell(cells, "credits")
        try:
            value = float(amount) if amount else 0.0
        except ValueError:
            value = 0.0
        learner.credit.append((credit_type, value, "row"))
        learner.rows.append(record.row)
    # Every credit row of a learner is weighed (a variable type would be dropped too), but only
    # learners with credit that reports somewhere need a fix.
    return [l for l in learners.values() if any(t in reporting for t, _, _ in l.credit)]


async def _decide_all(client: LmsBackend, learners: list[_Learner],
                      credit_types: dict[str, CreditType]) -> list[CompletionOnlyProposal]:
    if not learners:
        return []
    course_ids = sorted({l.course for l in learners})
    courses: dict[str, Course] = {}
    for i in range(0, len(course_ids), 1000):
        lookup = await client.lookup_courses(course_ids[i:i + 1000])
        courses.update({c.external_id: c for c in lookup.items})
    # Who exists: users found by external id or email (the LMS matches the id first).
    ext_ids = sorted({l.external_user_id for l in learners if l.external_user_id})
    emails = sorted({l.email.lower() for l in learners if l.email and not l.external_user_id})
    users_by_ext: dict[str, User] = {}
    users_by_email: dict[str, User] = {}
    for i in range(0, max(len(ext_ids), len(emails)), 500):
        found = await client.lookup_users(ext_ids[i:i + 500], emails[i:i + 500])
        for u in found.items:
            if u.external_user_id:
                users_by_ext[u.external_user_id] = u
            if u.email:
                users_by_email[u.email.lower()] = u
    keys: list[dict[str, str]] = []
    for l in learners:
        if l.external_user_id:
            keys.append({"external_user_id": l.external_user_id, "course_external_id": l.course})
        elif l.email:
            keys.append({"email": l.email, "course_external_id": l.course})
    enrollments: dict[tuple[int, str], Enrollment] = {}
    for i in range(0, len(keys), 1000):
        for e in await client.lookup_enrollments(keys[i:i + 1000]):
            enrollments[(e.user_id, e.course_external_id)] = e
    out = []
    for l in learners:
        user = users_by_ext.get(l.external_user_id) if l.external_user_id else users_by_email.get((l.email or "").lower())
        if user is None and l.user_id is not None and l.kind != KIND_FILE_ROW:
            # From the LMS's own records: the learner exists even when we could not name them.
            user_exists = True
        else:
            user_exists = user is not None
        user_id = user.id if user else l.user_id
        enrollment = enrollments.get((user_id, l.course)) if user_id is not None else None
        status = enrollment.status if enrollment else ("incomplete" if l.kind == KIND_INCOMPLETE else
                                                       "complete" if l.kind == KIND_NOT_REPORTED else None)
        credit = tuple((c.credit_type, c.amount, c.source) for c in (enrollment.credits if enrollment else ()))
        if l.user_id is None and user is not None:
            l.user_id = user.id
        proposal = decide(l, user_exists=user_exists, enrollment_status=status, enrollment_credit=credit,
                          course=courses.get(l.course), credit_types=credit_types)
        if proposal.proposed and not (l.external_user_id or l.email):
            proposal = CompletionOnlyProposal(**{**proposal.__dict__, "proposed": False, "awards": (),
                                                 "reason": "the LMS did not say who this learner is (no external id or email).",
                                                 "by_hand": f"find user {l.user_id} in the LMS and import a completion for them."})
        out.append(proposal)
    out.sort(key=lambda p: (p.course_external_id, not p.proposed, p.learner))
    return out


# ---------------------------------------------------------------------------------------------
# Writing and submitting

IMPORT_COLUMNS = ("external_user_id", "external_email", "complete", "date_completed")
REPORT_COLUMNS = ("course_external_id", "learner", "kind", "rows", "current_credit", "proposed", "will_award",
                  "reported_to", "reason", "by_hand")


def _write_private(path: Path, text: str) -> None:
    """Write a file that names people: 0600 from the first byte, replaced atomically."""
    write_private(path, text, atomic=True, tmp_name=f".{path.name}.tmp")


def proposal_import_file(proposals: Iterable[CompletionOnlyProposal]) -> bytes:
    """The completion-only import file for one course (data kept as it is: no formula escaping
    in an import file)."""
    proposals = list(proposals)
    carried = {c for p in proposals for c, _ in p.carried}
    columns = IMPORT_COLUMNS + tuple(c for c in CARRIED_COLUMNS if c in carried)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for p in proposals:
        row = p.import_row()
        writer.writerow([row.get(c, "") for c in columns])
    return out.getvalue().encode("utf-8")


def write_proposal_file(proposals: list[CompletionOnlyProposal], out_dir: str | os.PathLike[str]) -> ProposalFiles:
    """One completion-only import file per course plus a CSV report of every decision (0600;
    formula-like cells escaped in the report)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = ProposalFiles()
    by_course: dict[str, list[CompletionOnlyProposal]] = defaultdict(list)
    for p in proposals:
        if p.proposed:
            by_course[p.course_external_id].append(p)
    for course, items in sorted(by_course.items()):
        path = out / f"credit-fix-{_safe_name(course)}.csv"
        _write_private(path, proposal_import_file(items).decode("utf-8"))
        written.import_files[course] = path
    report = io.StringIO()
    writer = csv.writer(report, lineterminator="\r\n")
    writer.writerow(REPORT_COLUMNS)
    for p in proposals:
        cells = [
            p.course_external_id, p.learner, p.kind, " ".join(map(str, p.rows)),
            "; ".join(f"{t} {a:g} ({s})" for t, a, s in p.current_credit),
            "yes" if p.proposed else "no",
            "; ".join(f"{a.credit_type} {a.amount:g}" for a in p.awards),
            "; ".join(f"{a.credit_type}: {', '.join(a.reports_to) or 'none'}" for a in p.awards),
            p.reason, p.by_hand,
        ]
        writer.writerow([escape_formula(c) for c in cells])
    written.report = out / "credit-fix-report.csv"
    _write_private(written.report, report.getvalue())
    return written


def _safe_name(text: str) -> str:
    cleaned = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in text).strip("._")
    return cleaned[:80] or hashlib.sha256(text.encode()).hexdigest()[:12]


def fix_key(course_external_id: str, content: bytes) -> str:
    """The same proposal file for the same course is one import, however often it is submitted."""
    return f"credit-fix-{hashlib.sha256(course_external_id.encode()).hexdigest()[:8]}-{hashlib.sha256(content).hexdigest()[:40]}"


ENDED = FINISHED_STATES


@dataclass(frozen=True)
class FixProgress:
    """Where a credit-fix submission is: course `number` of `total`, and its import if sent."""

    course: str
    number: int
    total: int
    phase: str  # "submitting", "waiting" (its import runs), "ended"
    import_: Import | None = None

    @property
    def sentence(self) -> str:
        head = f"Course {self.number} of {self.total}: {visible(self.course)}"
        imp = self.import_
        if imp is None:
            return f"{head}, submitting..."
        return f"{head}, import {imp.id} {imp.state} ({imp.rows_processed}/{imp.rows_total} rows)"


class CreditFixStopped(Exception):
    """Submission stopped part-way (the importer is locked by someone else's import, an import of
    ours did not end in time, or the LMS refused): what was submitted and what was not, never a
    silent skip. `str()` is the sentence for the admin."""

    def __init__(self, cause: BaseException | str, *, submitted: dict[str, Import], not_submitted: list[str]):
        self.cause = cause
        self.submitted = submitted
        self.not_submitted = not_submitted
        done = "; ".join(f"{visible(c)} as import {i.id} ({i.state})" for c, i in submitted.items()) or "none"
        super().__init__(f"{cause} Submitted: {done}. Not submitted: {', '.join(map(visible, not_submitted))}; "
                         "submit again when the importer is free (what was submitted is not sent twice).")


async def wait_for_import_end(client: LmsBackend, item: Import, *, poll_interval: float = 0.5, stall_timeout: float = 300.0,
                              on_progress: Callable[[Import], None] | None = None,
                              sleep: Callable[[float], Awaitable[object]] | None = None) -> Import:
    """Poll one import until it ends. Bounded: gives up (TimeoutError) when `rows_processed` has not
    moved for `stall_timeout` seconds (a hung import never ends by itself)."""
    sleep = sleep or asyncio.sleep
    last_rows, last_move = item.rows_processed, time.monotonic()
    while item.state not in ENDED:
        if on_progress:
            on_progress(item)
        await sleep(poll_interval)
        item = await client.get_import(item.id)
        if item.rows_processed != last_rows:
            last_rows, last_move = item.rows_processed, time.monotonic()
        elif time.monotonic() - last_move > stall_timeout and item.state not in ENDED:
            raise TimeoutError(f"Import {item.id} has not moved for {stall_timeout:g} s ({item.state}, "
                               f"{item.rows_processed}/{item.rows_total} rows): it may be hung "
                               f"(importconsole diagnose {item.id}).")
    return item


async def submit_proposals(client: LmsBackend, written: ProposalFiles, *, journal: Journal,
                           journal_fields: dict[str, Any] | None = None, progress: ProgressCallback | None = None,
                           on_warning: Callable[[str, str], None] | None = None,
                           on_progress: Callable[[FixProgress], None] | None = None,
                           poll_interval: float = 0.5, stall_timeout: float = 300.0) -> dict[str, Import]:
    """One course-level import per course's proposal file, through operations.submit (validated,
    hash-checked, journaled), one course at a time: the course importer has one lock, so each
    import is followed (polled) until it ends before the next course is sent, and the imports
    returned are in their final state. The key is derived from the file, so submitting the same
    proposals again gives back the same import instead of a second one. Warnings were confirmed
    with the proposals; they are passed to `on_warning` to be shown. `progress` is the upload's
    (bytes); `on_progress` gets a FixProgress per step. Raises CreditFixStopped (what was and was
    not submitted) when the importer is locked by another import, an import does not end, or the
    LMS refuses a course."""
    from importconsole.lms.errors import ImporterLocked, LmsError
    from importconsole.operations.submit import SubmitRefused, prepare_submit, send_plan

    fields_ = journal_fields or {}
    courses = sorted(written.import_files)
    submitted: dict[str, Import] = {}

    def tell(course: str, number: int, phase: str, item: Import | None = None) -> None:
        if on_progress:
            on_progress(FixProgress(course, number, len(courses), phase, item))

    for number, course in enumerate(courses, 1):
        path = written.import_files[course]
        try:
            tell(course, number, "submitting")
            key = fix_key(course, Path(path).read_bytes())
            item = await client.find_import_by_key(key)
            if item is None:
                # Not sent before (this run or an earlier one); else the same import, nothing sent twice.
                plan = await prepare_submit(client, path, importer="course", course_external_id=course)
                for warning in plan.warnings:
                    if on_warning:
                        on_warning(course, warning)
                for attempt in range(3):
                    try:
                        outcome = await send_plan(plan, client=client, journal=journal, profile=fields_.get("profile"),
                                                  lms_user=fields_.get("lms_user"), progress=progress,
                                                  idempotency_key=key)
                        break
                    except ImporterLocked as locked:
                        ours = {i.id for i in submitted.values()}
                        if attempt == 2 or locked.lock is None or locked.lock.import_id not in ours:
                            raise  # someone else's import holds it: stop, say which
                        await asyncio.sleep(poll_interval)  # our last import ended, its lock not yet freed
                item = outcome.import_
            submitted[course] = item
            item = await wait_for_import_end(client, item, poll_interval=poll_interval, stall_timeout=stall_timeout,
                                             on_progress=lambda i: tell(course, number, "waiting", i))
            submitted[course] = item
            tell(course, number, "ended", item)
        except (ImporterLocked, SubmitRefused, LmsError, TimeoutError) as error:
            left = [c for c in courses if c not in submitted]
            raise CreditFixStopped(error, submitted=submitted, not_submitted=left) from error
    return submitted
