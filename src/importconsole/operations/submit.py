"""Submit an import file so the LMS ends up with exactly one import, and the admin knows which.

The steps, in order (each refuses with a sentence, never a traceback):
1. settle what an earlier run left "sending" in the journal (ask the LMS, never resubmit);
2. validate with the same code as `importconsole validate`, against the LMS's facts: errors refuse;
3. hash the file before and after validation, and again just before sending: a file that changed
   since it was validated is refused;
4. warn about what the admin should confirm: the rules' warnings, the same file imported before
   (by hash, naming the earlier import), the global importer (left out of PARS);
5. journal the attempt, upload (streamed, with progress, one idempotency key for every retry),
   complete the journal entry with the import id or what is known.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from importconsole.importfile.wording import plural, sentence
from importconsole.journal import Journal, JournalEntry, JournalWriteFailed
from importconsole.lms.client import SubmitReceipt
from importconsole.lms.port import CapabilityMissing, LmsBackend, capabilities_of
from importconsole.lms.errors import FileChangedDuringUpload, LmsError, UnknownOutcome
from importconsole.lms.models import Import, Importer, ImportState

if TYPE_CHECKING:
    from importconsole.importfile.facts import LmsFacts
    from importconsole.importfile.validate import Finding, ValidationReport

HASH_CHUNK = 1024 * 1024
# An upload the LMS does not show yet may still be in its hands (the console was killed after
# sending): only after this long is "the LMS never got it" said.
SETTLE_AFTER = 120.0
SHOW_FINDINGS = 10  # a refusal lists this many; `importconsole validate` lists all

GLOBAL_PARS_WARNING = (
    "The global course report importer is for legacy data: its records are NOT included in PARS "
    "reports. To have them counted in PARS, use the course-level importer (--importer course --course ID)."
)


class SubmitRefused(Exception):
    """Nothing was sent. str() says why and what to do; `findings` when validation refused."""

    def __init__(self, message: str, *, findings: list[Finding] | None = None, report: ValidationReport | None = None,
                 unreadable: bool = False):
        super().__init__(message)
        self.findings = findings or []
        self.report = report
        self.unreadable = unreadable  # not an import file at all (CLI exit 2)


def file_sha256(path: str | os.PathLike[str]) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    from importconsole.importfile.reader import open_regular

    with open_regular(path) as fh:
        while chunk := fh.read(HASH_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def describe_finding(f: Finding) -> str:
    """One line: where, which rule, what, the fix (the CLI and refusals use it)."""
    from importconsole.importfile.safe_text import visible

    where = []
    if f.row is not None:
        where.append(f"row {f.row}" + (f" (line {f.line})" if f.line is not None else ""))
    elif f.line is not None:
        where.append(f"line {f.line}")
    if f.column:
        where.append(f"column {f.column}")
    head = ", ".join(where)
    out = f"{head}: " if head else ""
    out += f"[{f.rule}] " if f.rule else ""
    out += visible(f.message)
    if f.fix:
        out += ("" if out.rstrip().endswith((".", "!", "?", ":")) else ".") + f" Fix: {visible(f.fix)}"
    return out


@dataclass
class SubmitPlan:
    """What will be sent and what the admin must confirm first. Built by `prepare_submit`."""

    path: Path
    importer: str
    course_external_id: str | None
    sha256: str
    size: int
    row_count: int | None
    report: ValidationReport
    warnings: list[str] = field(default_factory=list)
    earlier_imports: list[Import] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what could not be checked on this LMS (no confirmation needed)

    @property
    def needs_confirmation(self) -> bool:
        return bool(self.warnings)


@dataclass
class SubmitOutcome:
    import_: Import
    receipt: SubmitReceipt
    plan: SubmitPlan
    journal_entry: str
    notes: list[str] = field(default_factory=list)
    journal_problem: str | None = None  # the LMS has the import, the journal could not record it (also in notes)

    @property
    def sentence(self) -> str:
        from importconsole.importfile.safe_text import visible

        imp = self.import_
        how = "created" if self.receipt.created else "already held by the LMS (found by its idempotency key; nothing was imported twice)"
        return f"Import {imp.id} {how}: {visible(self.plan.path.name)}, {visible(imp.importer)} importer, state {visible(imp.state)}."


@dataclass
class Reconciled:
    entry: JournalEntry
    outcome: str
    import_: Import | None
    sentence: str


def _age_seconds(entry: JournalEntry, now: float | None) -> float:
    from datetime import datetime

    try:
        began = datetime.fromisoformat(entry.time.replace("Z", "+00:00")).timestamp()
    except (AttributeError, ValueError):
        return float("inf")
    return (time.time() if now is None else now) - began


async def reconcile_pending(journal: Journal, client: LmsBackend, *, settle_after: float = SETTLE_AFTER,
                            now: float | None = None) -> list[Reconciled]:
    """Settle entries an earlier run left "sending" on this LMS by asking the server what exists.
    Never resubmits: an upload the LMS never got is reported, the admin decides. An upload younger
    than `settle_after` seconds that the LMS does not show yet stays pending: it may be in flight."""
    done: list[Reconciled] = []
    caps = capabilities_of(client)
    for entry in journal.pending(base_url=client.base_url):
        imp: Import | None = None
        if entry.idempotency_key and not caps.idempotency_key:
            name = Path(entry.file_path).name if entry.file_path else "a file"
            why = CapabilityMissing(caps, "idempotency_key", f"ask whether the upload of {name} from {entry.time} reached it",
                                    "look at the importer's page and its stored rows before you submit it again")
            journal.complete(entry.entry_id, "unchecked", message=str(why))
            done.append(Reconciled(entry, "unchecked", None, str(why)))
        elif entry.idempotency_key:
            try:
                imp = await client.find_import_by_key(entry.idempotency_key)
            except LmsError as exc:
                done.append(Reconciled(entry, "sending", None, f"Could not check the upload of {entry.file_path} with the LMS yet: {exc}"))
                continue
            name = Path(entry.file_path).name if entry.file_path else "a file"
            if imp is not None:
                journal.complete(entry.entry_id, "reconciled", import_id=imp.id,
                                 message=f"found on the LMS as import {imp.id} after the console stopped before the answer")
                done.append(Reconciled(entry, "reconciled", imp,
                                       f"The upload of {name} from {entry.time} reached the LMS: it is import {imp.id} ({imp.state}). Nothing was sent again."))
            elif _age_seconds(entry, now) < settle_after:
                done.append(Reconciled(entry, entry.outcome, None,
                                       f"The upload of {name} from {entry.time} is not on the LMS yet; it may still be on its way. "
                                       f"Nothing was sent again. Check again in {settle_after / 60:g} minutes: importconsole journal --reconcile"))
            else:
                journal.complete(entry.entry_id, "not_created", message="the LMS holds no import for this upload")
                done.append(Reconciled(entry, "not_created", None,
                                       f"The upload of {name} from {entry.time} never reached the LMS; nothing was imported. Submit it again if you still want it."))
        elif entry.action == "unlock" and entry.import_id is not None and caps.import_ids:
            try:
                imp = await client.get_import(entry.import_id)
            except LmsError as exc:
                done.append(Reconciled(entry, "sending", None, f"Could not check unlock of import {entry.import_id}: {exc}"))
                continue
            outcome = "reconciled" if imp.state == ImportState.UNLOCKED else "not_created"
            journal.complete(entry.entry_id, outcome, import_id=imp.id, message=f"import {imp.id} is {imp.state}")
            done.append(Reconciled(entry, outcome, imp, f"Unlock of import {imp.id}: the import is now {imp.state}."))
        else:
            journal.complete(entry.entry_id, "unchecked", message="cannot be checked with the LMS automatically; look at it there")
            done.append(Reconciled(entry, "unchecked", None, f"{entry.action} from {entry.time} cannot be checked automatically; look at the LMS."))
    return done


async def _hash_readable(path: Path) -> tuple[str, int]:
    """sha256 and size of a regular, readable file; SubmitRefused (unreadable) otherwise."""
    from importconsole.importfile.reader import ImportFileError, check_regular_file

    try:
        check_regular_file(path)  # a FIFO or a folder is refused before it is opened: reading it would wait forever
    except ImportFileError as exc:
        raise SubmitRefused(f"{path}: {sentence(str(exc))} Nothing was sent.", unreadable=True) from None
    try:
        return await asyncio.to_thread(file_sha256, path)
    except ImportFileError as exc:
        raise SubmitRefused(f"{path}: {sentence(str(exc))} Nothing was sent.", unreadable=True) from None
    except OSError as exc:
        raise SubmitRefused(f"{path}: cannot be read ({exc.strerror}).", unreadable=True) from None


def _validate(path: Path, importer: str, course: str | None, facts: LmsFacts | None,
              progress: Callable[[int, int], None] | None) -> ValidationReport:
    from importconsole.importfile.reader import ImportFileError
    from importconsole.importfile.validate import validate

    try:
        return validate(path, importer=importer, course_external_id=course, facts=facts, progress=progress)
    except ImportFileError as exc:
        raise SubmitRefused(f"{path}: {sentence(str(exc))} Nothing was sent.", unreadable=True) from None


def _refuse_errors(path: Path, report: ValidationReport) -> None:
    """SubmitRefused when validation was cancelled or found errors (the first SHOW_FINDINGS named)."""
    if report.cancelled:
        raise SubmitRefused(f"Validation of {path} was cancelled; nothing was sent.", report=report)
    errors = [f for f in report.findings if f.severity == "error"]
    n_errors = max(len(errors), report.errors)  # `findings` holds the first few of each rule; `errors` counts all
    if errors or n_errors:
        shown = "\n".join(f"  {describe_finding(f)}" for f in errors[:SHOW_FINDINGS])
        more = f"\n  ... and {n_errors - min(len(errors), SHOW_FINDINGS)} more" if n_errors > SHOW_FINDINGS else ""
        raise SubmitRefused(
            f"{path} has {plural(n_errors, 'error')}; nothing was sent. "
            f"{'Fix it' if n_errors == 1 else 'Fix them'} (importconsole validate {path.name} lists "
            f"{'it' if n_errors == 1 else 'them all'}, "
            f"and `importconsole fix` can write a corrected copy):\n{shown}{more}",
            findings=errors, report=report,
        )


async def prepare_submit(client: LmsBackend, path: str | os.PathLike[str], *, importer: str, course_external_id: str | None = None,
                         facts: LmsFacts | None = None, validation_progress: Callable[[int, int], None] | None = None,
                         validated_sha256: str | None = None, rows_name_course: bool = False) -> SubmitPlan:
    """Validate, hash, look for earlier imports of the same file. Raises SubmitRefused.
    `rows_name_course`: the importer reads each row's external_course_id (an EthosCE importer not
    attached to one course), so the course-level importer needs no --course."""
    path = Path(path)
    if importer not in tuple(Importer):
        raise SubmitRefused(f"--importer must be course or global, not {importer!r}.")
    if importer == Importer.COURSE and not course_external_id and not rows_name_course:
        raise SubmitRefused("The course-level importer imports into one course: name it with --course EXTERNAL_ID "
                            "(or use --importer global for a multi-course legacy file).")
    sha_before, size = await _hash_readable(path)
    if validated_sha256 and validated_sha256 != sha_before:
        raise SubmitRefused(f"{path} changed on disk since it was validated. Nothing was sent. Validate it again, then submit.")

    if facts is None:
        from importconsole.lms.port import facts_for

        facts = facts_for(client, asyncio.get_running_loop())  # ApiFacts, or the backend's own
    report = await asyncio.to_thread(_validate, path, importer, course_external_id, facts, validation_progress)
    _refuse_errors(path, report)

    sha_after, size = await asyncio.to_thread(file_sha256, path)
    if sha_after != sha_before:
        raise SubmitRefused(f"{path} changed on disk while it was being validated. Nothing was sent. Validate it again, then submit.")

    plan = SubmitPlan(path, importer, course_external_id, sha_after, size, report.rows, report)
    plan.warnings.extend(describe_finding(f) for f in report.findings if f.severity == "warning")
    if importer == Importer.GLOBAL:
        plan.warnings.append(GLOBAL_PARS_WARNING)
    await _note_earlier_imports(client, plan)
    return plan


async def _note_earlier_imports(client: LmsBackend, plan: SubmitPlan) -> None:
    """The same bytes imported before: a warning naming those imports (or a note, where the LMS keeps no list)."""
    if not capabilities_of(client).import_history:
        plan.notes.append(str(CapabilityMissing(capabilities_of(client), "import_history",
                                                "tell whether this exact file was imported before",
                                                "`importconsole journal` lists what this console submitted")))
        return
    earlier = await client.list_imports(file_sha256=plan.sha256, limit=20)
    plan.earlier_imports = list(earlier.items)
    if plan.earlier_imports:
        from importconsole.importfile.safe_text import visible

        named = "; ".join(f"import {i.id} ({visible(i.state)}, {visible(i.created_at or 'unknown time')}, by {visible(i.created_by or 'unknown')})"
                          for i in plan.earlier_imports[:5])
        plan.warnings.append(f"This exact file (sha256 {plan.sha256[:12]}...) was imported before: {named}. "
                             "Submitting it again may import its rows twice.")


async def send_plan(plan: SubmitPlan, *, client: LmsBackend, journal: Journal, profile: str | None = None,
                    lms_user: str | None = None, progress: Callable[[int, int], None] | None = None,
                    idempotency_key: str | None = None) -> SubmitOutcome:
    """Journal, upload, complete the journal. The file must still be the one validated."""
    from importconsole.lms.port import require

    require(client, "idempotency_key", f"send {plan.path.name} so that a retry could never import it twice",
            "submit it with `importconsole submit FILE`, which uploads it through the site's import form once")
    try:
        sha_now, _ = await asyncio.to_thread(file_sha256, plan.path)
    except OSError as exc:
        raise SubmitRefused(f"{plan.path}: cannot be read any more ({exc.strerror}). Nothing was sent.", unreadable=True) from None
    if sha_now != plan.sha256:
        raise SubmitRefused(f"{plan.path} changed on disk since it was validated (sha256 {plan.sha256[:12]}... is now "
                            f"{sha_now[:12]}...). Nothing was sent. Validate it again, then submit.")
    unsettled = [e for e in journal.pending(base_url=client.base_url) if e.sha256 == plan.sha256]
    if unsettled:
        raise SubmitRefused(f"An earlier upload of {plan.path} (from {unsettled[-1].time}) is not settled yet: the LMS may "
                            "still be taking it. Nothing was sent. Run `importconsole journal --reconcile` until it says "
                            "whether that upload became an import, then decide.")
    if not lms_user:  # the journal names who acted; a UI that never asked gets it here, before anything is sent
        lms_user = client.username or (await client.me()).username
    key = idempotency_key or f"ic-{uuid.uuid4()}"
    try:
        entry = journal.begin("submit", profile=profile, base_url=client.base_url, lms_user=lms_user, file_path=plan.path,
                              sha256=plan.sha256, row_count=plan.row_count, idempotency_key=key, importer=plan.importer,
                              course_external_id=plan.course_external_id)
    except JournalWriteFailed as exc:
        # Journaled before sent, or not sent: a retry must be able to find what was sent.
        raise SubmitRefused(f"Nothing was sent: {exc}. Every upload is written to the journal before it is sent (so a "
                            "retry never imports twice); free space there, then submit again.") from None
    try:
        receipt = await client.submit_import_detailed(plan.path, importer=plan.importer, course_external_id=plan.course_external_id,
                                                      idempotency_key=key, progress=progress, expected_sha256=plan.sha256)
    except UnknownOutcome as exc:
        _complete_if_possible(journal, entry, "unknown", message=str(exc))
        raise
    except FileChangedDuringUpload as exc:
        _complete_if_possible(journal, entry, "not_created", message=str(exc))
        raise SubmitRefused(str(exc)) from None
    except LmsError as exc:
        # Every other LmsError from submit is definite: the LMS refused, or holds nothing for this key (checked).
        _complete_if_possible(journal, entry, "refused" if exc.status and exc.status < 500 else "not_created",
                              message=str(exc))
        raise
    except BaseException:
        # Cancelled or crashed mid-upload: leave it "sending" so the next run asks the LMS.
        raise
    imp = receipt.import_
    outcome = "created" if receipt.created else ("reconciled" if receipt.reconciled else "already_existed")
    journal_problem = None
    try:
        journal.complete(entry, outcome, import_id=imp.id, message="; ".join(receipt.notes) or None)
    except JournalWriteFailed as exc:
        journal_problem = (f"Import {imp.id} is on the LMS, but {exc}: the journal still shows this upload as "
                           f"'sending'. Do not submit the file again; once there is space, `importconsole journal "
                           f"--reconcile` records import {imp.id}.")
    notes = list(receipt.notes)
    if imp.file_sha256 and imp.file_sha256 != plan.sha256:
        notes.append(f"Warning: the LMS received a file with sha256 {imp.file_sha256[:12]}..., not the validated "
                     f"{plan.sha256[:12]}...: {plan.path} changed during the upload. Check import {imp.id}.")
    if journal_problem:
        notes.append(journal_problem)
    return SubmitOutcome(imp, receipt, plan, entry, notes, journal_problem=journal_problem)


def _complete_if_possible(journal: Journal, entry: str, outcome: str, **fields: Any) -> None:
    """On a failure path the LMS's answer comes first: an entry the journal cannot complete stays
    'sending', and the next run asks the LMS about it."""
    try:
        journal.complete(entry, outcome, **fields)
    except JournalWriteFailed:
        pass
