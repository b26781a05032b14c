"""Unlock a hung import and re-import the rows it never reached (page: "Unlocking imports").

Two steps, one plan shown before either happens:

1. `plan_recovery` reads the import, its lock, the diagnosis and the rows not yet processed, and
   works out the sanitized remainder (special characters and header whitespace removed,
   completion-only rows where the user exists and variable credit is off).
2. `execute_recovery` re-reads `rows_processed` and refuses if the import moved since the plan;
   otherwise compare-and-unlock on that import's id, checks the import is `unlocked` and the
   importer free, then submits the remainder with an idempotency key derived from the parent
   import and the remainder's sha256. Two consoles recovering the same import therefore make
   one re-import: one loses the unlock (409) and stops, or both send the same key and get the
   same import back.

Every step that changes the LMS is journaled before it is sent and completed after.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from importconsole.importfile.wording import plural, sentence
from importconsole.lms.errors import IdempotencyMismatch, LmsError, LockMismatch
from importconsole.private_files import write_private
from importconsole.lms.models import Enrollment, Import, Importer, ImportState, Lock
from importconsole.lms.port import LmsBackend, capabilities_of, require
from importconsole.operations.hung import Diagnosis

if TYPE_CHECKING:
    from importconsole.importfile.fixes import FixManifest
    from importconsole.journal import Journal

Workdir = str | os.PathLike[str] | None
Learner = tuple[int, str, str, str]  # (original row, external_user_id, email, course) of a remaining row

KEY_PREFIX = "reimport"
SHOWN_REFUSED = 20  # rows the plan lists one by one; --json has them all


class RecoveryRefused(Exception):
    """Recovery stopped before changing anything it should not; `str()` says why and what to do."""


class ImportMoved(RecoveryRefused):
    """The import made progress since the plan: it is not hung, or not hung where we thought."""

    def __init__(self, message: str, *, planned: int, now: int):
        super().__init__(message)
        self.planned, self.now = planned, now


class AlreadyUnlocked(RecoveryRefused):
    """Another console (or a person in the LMS) unlocked it first; we do not re-import twice."""

    def __init__(self, message: str, *, lock: Lock | None = None, reimport: Import | None = None):
        super().__init__(message)
        self.lock, self.reimport = lock, reimport


@dataclass(frozen=True)
class RowChange:
    """One change the re-import makes to a row, in the original file's numbering."""

    row: int
    column: str
    change: str  # a sentence: "removed U+200B (ZERO WIDTH SPACE)", "dropped credit: completion-only"

    def to_json(self) -> dict[str, Any]:
        return {"row": self.row, "column": self.column, "change": self.change}


@dataclass(frozen=True)
class AlreadyComplete:
    """A remaining row the LMS will refuse: its learner already completed the course."""

    row: int  # in the original file's numbering
    learner: str
    course_external_id: str
    completed_by_import: int | None

    def describe(self) -> str:
        by = f" (import {self.completed_by_import})" if self.completed_by_import else ""
        return f"row {self.row}: {self.learner} already completed {self.course_external_id}{by}"


@dataclass(frozen=True)
class UnlockPlan:
    """Everything the admin confirms before Unlock + re-import."""

    import_id: int
    importer: str
    course_external_id: str | None
    file_name: str
    lock: Lock
    rows_total: int
    rows_committed: int  # rows_processed when the plan was made
    first_row_left: int
    diagnosis: Diagnosis | None
    changes: tuple[RowChange, ...] = ()
    completion_only_rows: tuple[int, ...] = ()
    remainder: bytes = b""  # the file the re-import submits (header + sanitized rows)
    remainder_rows: int = 0
    notes: tuple[str, ...] = ()
    needs_unlock: bool = True  # False: already unlocked, only the re-import is left
    source_sha256: str = ""  # sha256 of the remainder exactly as the LMS sent it (before fixes)
    # Rows whose learner's enrollment in the course is already complete (often by an earlier row
    # of this very import): the LMS refuses them ("cannot update"), so they are named up front.
    already_complete: tuple[AlreadyComplete, ...] = ()
    reimport_ready: bool = True  # False: the remainder could not be prepared (unlock-only plan)
    # The re-import of this remainder that already exists (an earlier recover): nothing to send,
    # and the rows it completed are not "to add by hand".
    already_reimported: Import | None = None

    @property
    def already_complete_rows(self) -> tuple[int, ...]:
        return tuple(a.row for a in self.already_complete)

    @property
    def rows_left(self) -> int:
        return self.rows_total - self.rows_committed

    @property
    def remainder_sha256(self) -> str:
        return hashlib.sha256(self.remainder).hexdigest()

    @property
    def idempotency_key(self) -> str:
        # From what the LMS holds, not from our fixes: the fixes depend on facts the re-import
        # itself changes (enrollments become complete), the unprocessed rows of an unlocked
        # import never change. So every console, at any time, derives the same key.
        return reimport_key(self.import_id, self.source_sha256 or self.remainder_sha256)

    @property
    def holds_lock(self) -> bool:
        return self.lock.locked and self.lock.import_id == self.import_id

    @property
    def reimport_file_name(self) -> str:
        # The name the LMS holds is the uploader's: kept as a label only, a base name cut short.
        stem = Path(self.file_name or "").stem.strip(". ")[:100] or f"import-{self.import_id}"
        return f"{stem}.rows-{self.first_row_left}-{self.rows_total}.csv"

    def describe(self) -> list[str]:
        """The plan as lines an admin reads before confirming."""
        course = f" for course {self.course_external_id}" if self.course_external_id else ""
        lines = [
            f"Import {self.import_id} ({self.file_name or 'no file name'}) on the {self.importer} importer{course}",
            f"  {self.lock.describe()}",
            f"  rows committed: {self.rows_committed} of {self.rows_total}; rows left: {self.rows_left} "
            f"(rows {self.first_row_left}-{self.rows_total})",
        ]
        if self.diagnosis is not None:
            lines.append(f"  stopped at row {self.diagnosis.row}: {self.diagnosis.summary()}")
        if self.needs_unlock:
            lines.append(f"1. Unlock: end import {self.import_id} as 'unlocked' and free the {self.importer} importer")
        else:
            lines.append(f"1. Unlock: not needed, import {self.import_id} is already unlocked")
        if not self.reimport_ready:
            lines.append(f"2. Re-import rows {self.first_row_left}-{self.rows_total}: not possible from the console")
            lines.extend(f"   note: {n}" for n in self.notes)
            return lines
        if self.already_reimported is not None:
            done = self.already_reimported
            lines.append(f"2. Re-import rows {self.first_row_left}-{self.rows_total}: already done as import {done.id} "
                         f"({done.state.replace('_', ' ')}); nothing will be sent twice")
            lines.extend(f"   note: {n}" for n in self.notes if n != "the remaining rows needed no change")
            return lines
        lines.append(f"2. Re-import rows {self.first_row_left}-{self.rows_total} ({plural(self.remainder_rows, 'row')}) "
                     f"as a new import, key {self.idempotency_key}")
        if self.changes:
            lines.append(f"   changes ({len(self.changes)}):")
            lines.extend(f"   row {c.row}, {c.column}: {c.change}" for c in self.changes)
        else:
            lines.append("   no cell is changed")
        if self.completion_only_rows:
            rows = ", ".join(str(r) for r in self.completion_only_rows)
            lines.append(f"   completion-only (credit dropped; the LMS awards it, as each row's change says): rows {rows}")
        if self.already_complete:
            shown = self.already_complete[:SHOWN_REFUSED]
            lines.append(f"   the LMS will refuse {len(self.already_complete)} of these rows: the enrollment is already "
                         "complete and the importer cannot update it; check those learners' credit in the LMS and "
                         "add what is missing by hand:")
            lines.extend(f"   {a.describe()}" for a in shown)
            if len(self.already_complete) > len(shown):
                lines.append(f"   ... and {len(self.already_complete) - len(shown)} more (all of them in --json)")
        lines.extend(f"   note: {n}" for n in self.notes)
        return lines

    def to_json(self) -> dict[str, Any]:
        return {
            "import_id": self.import_id,
            "importer": self.importer,
            "course_external_id": self.course_external_id,
            "file_name": self.file_name,
            "lock": {"locked": self.lock.locked, "import_id": self.lock.import_id, "held_by": self.lock.held_by},
            "rows_total": self.rows_total,
            "rows_committed": self.rows_committed,
            "rows_left": self.rows_left,
            "first_row_left": self.first_row_left,
            "diagnosis": self.diagnosis.to_json() if self.diagnosis else None,
            "changes": [c.to_json() for c in self.changes],
            "completion_only_rows": list(self.completion_only_rows),
            "remainder_rows": self.remainder_rows,
            "remainder_sha256": self.remainder_sha256,
            "idempotency_key": self.idempotency_key,
            "notes": list(self.notes),
            "needs_unlock": self.needs_unlock,
            "reimport_ready": self.reimport_ready,
            "already_complete_rows": list(self.already_complete_rows),
            "already_complete": [{"row": a.row, "learner": a.learner, "course_external_id": a.course_external_id,
                                  "completed_by_import": a.completed_by_import} for a in self.already_complete],
            "already_reimported": self.already_reimported.id if self.already_reimported else None,
        }


def reimport_key(parent_import_id: int, remainder_sha256: str) -> str:
    """Same parent, same remainder: same key, whichever console computes it."""
    return f"{KEY_PREFIX}-{parent_import_id}-{remainder_sha256[:40]}"


@dataclass
class RecoveryResult:
    """What happened, step by step, in words the admin reads after the fact."""

    import_id: int
    unlocked: bool = False
    reimport: Import | None = None
    reimport_was_new: bool = True
    steps: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "import_id": self.import_id,
            "unlocked": self.unlocked,
            "reimport_id": self.reimport.id if self.reimport else None,
            "reimport_state": self.reimport.state if self.reimport else None,
            "reimport_was_new": self.reimport_was_new,
            "steps": list(self.steps),
        }


# ---------------------------------------------------------------------------------------------
# Planning

ACTIVE = (ImportState.QUEUED, ImportState.RUNNING)


async def plan_recovery(client: LmsBackend, import_id: int, *, diagnosis: Diagnosis | None = None,
                        journal: Journal | None = None, workdir: Workdir = None, unlock_only: bool = False) -> UnlockPlan:
    """Everything the admin must see before Unlock + re-import. Changes nothing on the LMS.

    `unlock_only`: a remainder that cannot be prepared does not stop an unlock (the plan then
    holds no remainder, `reimport_ready` is False, and a note says why)."""
    from importconsole.operations.hung import diagnose_import

    item = await client.get_import(import_id)
    if item.state not in ACTIVE and item.state != ImportState.UNLOCKED:
        raise RecoveryRefused(
            f"Import {item.id} is {item.state.replace('_', ' ')}: it is not hung and holds no lock, so there is "
            f"nothing to unlock or re-import. See its rows with `importconsole imports`.")
    lock = await client.lock(item.importer)
    if item.state in ACTIVE and not (lock.locked and lock.import_id == item.id):
        raise RecoveryRefused(
            f"Import {item.id} does not hold the {item.importer} importer's lock ({lock.describe()}), "
            "so it is not hung: it is waiting its turn. Nothing to unlock.")
    require(client, "remaining_rows", f"work out which rows of import {item.id} are left",
            "give the file that was uploaded with --file")
    if diagnosis is None or diagnosis.rows_processed != item.rows_processed:
        diagnosis = await diagnose_import(client, item.id, journal=journal, workdir=workdir)
    remaining = await client.import_remaining(item.id)
    first_row = remaining.first_row or (item.rows_processed + 1)
    notes: list[str] = []
    if first_row != item.rows_processed + 1:
        # The server answered for a later moment than our read: the plan would be wrong.
        raise ImportMoved(
            f"Import {item.id} moved while the plan was being made ({item.rows_processed} rows processed, the "
            f"remainder starts at row {first_row}). It is not hung; nothing was changed.",
            planned=item.rows_processed, now=first_row - 1)
    from importconsole.importfile.fixes import FixRefused
    from importconsole.importfile.reader import ImportFileError

    try:
        remainder, changes, completion_only, rows, learners, file_notes = await _sanitize_remainder(
            client, item, remaining.content, first_row, workdir)
    except (ImportFileError, FixRefused) as error:
        # The remainder cannot become a clean file: say where (original numbering), change nothing.
        unread = error if isinstance(error, ImportFileError) else None  # a FixRefused names no row
        row: int | None = unread.row if unread else None
        if unlock_only and item.state in ACTIVE:
            at = f" at row {first_row + row - 1}" if row else ""
            return UnlockPlan(
                import_id=item.id, importer=item.importer, course_external_id=item.course_external_id,
                file_name=item.file_name, lock=lock, rows_total=item.rows_total, rows_committed=item.rows_processed,
                first_row_left=first_row, diagnosis=diagnosis, needs_unlock=True, reimport_ready=False,
                source_sha256=hashlib.sha256(remaining.content).hexdigest(),
                notes=(f"the remaining rows cannot be re-imported by the console{at}: {error}; fix them by hand "
                       "in a copy of the file and submit it after the unlock",))
        where = f" at row {first_row + row - 1} of the original file" if row else ""
        message = (unread.message if unread else None) or str(error)
        fix = unread.fix if unread else ""
        raise RecoveryRefused(
            f"The remaining rows of import {item.id} (rows {first_row}-{item.rows_total}) cannot be prepared for a "
            f"re-import{where}: {sentence(message)}{(' ' + sentence(fix[0].upper() + fix[1:])) if fix else ''} Nothing was changed: "
            f"import {item.id} still holds the {item.importer} importer. Fix those rows in a copy of the file by hand, "
            f"then `importconsole unlock {item.id}` (it unlocks without re-importing) and submit only the fixed rows."
        ) from None
    notes.extend(file_notes)  # e.g. "re-encoded from Windows-1252 to UTF-8": the bytes sent differ
    if not changes and not file_notes:
        notes.append("the remaining rows needed no change")
    already_complete = await _already_complete(client, learners)
    source_sha256 = hashlib.sha256(remaining.content).hexdigest()
    done = await client.find_import_by_key(reimport_key(item.id, source_sha256)) if item.state == ImportState.UNLOCKED else None
    if done is not None:
        # Completed by that re-import: not rows the LMS refused.
        already_complete = [a for a in already_complete if a.completed_by_import != done.id]
    return UnlockPlan(
        import_id=item.id, importer=item.importer, course_external_id=item.course_external_id,
        file_name=item.file_name, lock=lock, rows_total=item.rows_total, rows_committed=item.rows_processed,
        first_row_left=first_row, diagnosis=diagnosis, changes=tuple(changes),
        completion_only_rows=tuple(completion_only), remainder=remainder, remainder_rows=rows,
        notes=tuple(notes), needs_unlock=item.state in ACTIVE,
        source_sha256=source_sha256, already_complete=tuple(already_complete), already_reimported=done,
    )


async def _already_complete(client: LmsBackend, learners: list[Learner]) -> list[AlreadyComplete]:
    keys: list[dict[str, str]] = []
    seen: set[tuple[str, str, str]] = set()
    for _, ext, email, course in learners:
        key = (ext, "" if ext else email.lower(), course)
        if course and (ext or email) and key not in seen:
            seen.add(key)
            keys.append({"external_user_id": ext, "course_external_id": course} if ext else
                        {"email": email, "course_external_id": course})
    if not keys:
        return []
    complete: dict[tuple[str, str, str], Enrollment] = {}
    for e in await client.lookup_enrollments(keys):
        if e.status == "complete":
            if e.external_user_id:
                complete[(e.external_user_id, "", e.course_external_id)] = e
            if e.email:
                complete[("", e.email.lower(), e.course_external_id)] = e
    found = []
    for row, ext, email, course in learners:
        held = complete.get((ext, "", course)) if ext else complete.get(("", email.lower(), course))
        if held is not None:
            found.append(AlreadyComplete(row, ext or email, course, held.import_id))
    return found


async def _sanitize_remainder(client: LmsBackend, item: Import, content: bytes, first_row: int, workdir: Workdir
                              ) -> tuple[bytes, list[RowChange], list[int], int, list[Learner], list[str]]:
    """The import-file engine's fixes over the remainder: special characters removed, header
    cleaned, completion-only where the LMS awards and reports the credit itself (user exists,
    variable credit off). Returns (bytes to submit, changes and completion-only rows in the
    original file's numbering, row count, (row, external_user_id, email, course) per row, notes on
    the whole file such as a re-encoding)."""
    import asyncio

    from importconsole.importfile.columns import cell_value, find_columns
    from importconsole.importfile.fixes import write_fixed_file
    from importconsole.importfile.reader import open_import_file
    from importconsole.lms.port import facts_for

    facts = facts_for(client, asyncio.get_running_loop())  # ApiFacts on the reference LMS
    with tempfile.TemporaryDirectory(dir=workdir, prefix="importconsole-recover-") as tmp:
        source = Path(tmp) / "remaining.csv"
        write_private(source, content)
        target = Path(tmp) / "remaining.fixed.csv"

        def fix() -> tuple[FixManifest, int, list[Learner]]:
            manifest = write_fixed_file(source, target, sanitize=True, split_credit_types=False,
                                        completion_only=True, rows=None, facts=facts,
                                        importer=item.importer, course_external_id=item.course_external_id,
                                        keep_changes=None)  # the plan lists every change
            fixed = open_import_file(target)
            col = find_columns(fixed.header)  # as the LMS reads the header

            def cell(cells: Sequence[str], name: str) -> str:
                return cell_value(cells, col, name)

            learners: list[Learner] = []
            for record in fixed.records(keep_raw=False):
                course = (item.course_external_id if item.importer == Importer.COURSE and item.course_external_id
                          else cell(record.cells, "external_course_id"))
                learners.append((first_row + record.row - 1, cell(record.cells, "external_user_id"),
                                 cell(record.cells, "external_email"), course))
            return manifest, len(learners), learners

        manifest, rows, learners = await asyncio.to_thread(fix)
        changes, completion_only = _changes_from_manifest(manifest, first_row)
        # Rows completion-only would award other credit than they say keep their credit (importfile.award).
        kept = [f"row {first_row + d.row - 1} keeps its credit, not made completion-only: {d.describe()}"
                for d in manifest.left_as_is]
        return target.read_bytes(), changes, completion_only, rows, learners, list(manifest.notes) + kept


def _changes_from_manifest(manifest: FixManifest, first_row: int) -> tuple[list[RowChange], list[int]]:
    """The engine numbers rows within the remainder file; the admin thinks in the original's."""
    def original(row: int) -> int:
        return 0 if row == 0 else first_row + row - 1

    changes = [RowChange(original(c.row), c.column or "header", c.description) for c in manifest.changes]
    completion_only = sorted({original(r) for r in manifest.completion_only_rows})
    return changes, completion_only


# ---------------------------------------------------------------------------------------------
# Executing

Say = Callable[[str], None]


def _begin(journal: Journal | None, action: str, **fields: Any) -> str | None:
    return journal.begin(action, **fields) if journal is not None else None


def _complete(journal: Journal | None, entry: str | None, outcome: str, **fields: Any) -> None:
    if journal is not None and entry is not None:
        journal.complete(entry, outcome, **fields)


async def execute_recovery(client: LmsBackend, plan: UnlockPlan, *, journal: Journal | None = None, unlock: bool = True,
                           reimport: bool = True, workdir: Workdir = None, say: Say | None = None,
                           journal_fields: dict[str, Any] | None = None) -> RecoveryResult:
    """Unlock (compare-and-unlock on the plan's import) then re-import the planned remainder.

    Refuses, changing nothing, if the import moved since the plan. Raises AlreadyUnlocked when
    another console won the unlock: then this one does not re-import.
    """
    result = RecoveryResult(plan.import_id)
    extra = dict(journal_fields or {})
    # Which LMS, always: a `reimport` left "sending" is reconciled only against its own base URL.
    extra.setdefault("base_url", client.base_url)
    if client.profile:
        extra.setdefault("profile", client.profile)

    def step(text: str) -> None:
        result.steps.append(text)
        if say:
            say(text)

    if unlock and plan.needs_unlock:
        await _unlock(client, plan, journal, extra, step)
        result.unlocked = True
    if reimport and not plan.reimport_ready:
        raise RecoveryRefused(f"The remaining rows of import {plan.import_id} were not prepared for a re-import: "
                              + "; ".join(plan.notes))
    if reimport:
        item = await client.get_import(plan.import_id)
        if item.state != ImportState.UNLOCKED:
            raise RecoveryRefused(
                f"Import {item.id} is {item.state.replace('_', ' ')}, not unlocked: only an unlocked import's "
                f"remaining rows are re-imported. Run `importconsole recover {item.id}` to unlock it first.")
        if item.rows_processed != plan.rows_committed:
            raise ImportMoved(
                f"Import {item.id} ended with {item.rows_processed} rows processed, not the {plan.rows_committed} "
                f"the plan was made for; nothing was re-imported. Run `importconsole reimport {item.id}` to plan again.",
                planned=plan.rows_committed, now=item.rows_processed)
        await _reimport(client, plan, journal, extra, step, result, workdir)
    return result


async def _unlock(client: LmsBackend, plan: UnlockPlan, journal: Journal | None, extra: dict[str, Any], step: Say) -> None:
    # Compare: re-read just before unlocking; a moving import is not hung.
    now = await client.get_import(plan.import_id)
    if now.state not in ACTIVE:
        raise ImportMoved(
            f"Import {now.id} is now {now.state.replace('_', ' ')} (it was running with {plan.rows_committed} rows "
            f"processed when the plan was made). Nothing was unlocked.", planned=plan.rows_committed, now=now.rows_processed)
    if now.rows_processed != plan.rows_committed:
        raise ImportMoved(
            f"Import {now.id} moved since the diagnosis: {plan.rows_committed} rows processed then, "
            f"{now.rows_processed} now. It is not hung, so it was NOT unlocked. Watch it "
            f"(`importconsole watch {now.id}`) and recover only if it stops again.",
            planned=plan.rows_committed, now=now.rows_processed)
    # Why it was unlocked belongs in the audit trail, not only on the screen that asked.
    entry = _begin(journal, "unlock", import_id=plan.import_id, importer=plan.importer,
                   course_external_id=plan.course_external_id, rows_committed=plan.rows_committed,
                   rows_total=plan.rows_total, stopped_at_row=plan.first_row_left,
                   cause=plan.diagnosis.summary() if plan.diagnosis else None, **extra)
    try:
        unlocked = await client.unlock(plan.importer, plan.import_id)
    except LockMismatch as error:
        _complete(journal, entry, "refused", message=str(error))
        holder = error.lock.describe() if error.lock else "the lock changed"
        # Say what the LMS says happened, not what usually happens.
        after = await client.get_import(plan.import_id)
        if after.state != ImportState.UNLOCKED:
            raise ImportMoved(
                f"Import {plan.import_id} was not unlocked: it no longer holds the lock ({holder}) and is now "
                f"{after.state.replace('_', ' ')} with {after.rows_processed} of {after.rows_total} rows processed. "
                f"Nothing was re-imported. Check it with `importconsole watch {plan.import_id}`.",
                planned=plan.rows_committed, now=after.rows_processed) from None
        reimport = (await client.find_import_by_key(plan.idempotency_key)
                    if capabilities_of(client).idempotency_key else None)
        again = (f" The re-import of its remaining rows is import {reimport.id} ({reimport.state})."
                 if reimport else
                 " No re-import of its remaining rows exists yet (whoever unlocked it may be sending it now); "
                 f"`importconsole reimport {plan.import_id}` later sends it once, whoever sends first.")
        raise AlreadyUnlocked(
            f"Import {plan.import_id} was not unlocked by this console: it no longer holds the lock ({holder}). "
            f"It was unlocked elsewhere first, so this console does not re-import.{again}",
            lock=error.lock, reimport=reimport) from None
    except LmsError as error:
        _complete(journal, entry, "failed", message=str(error))
        raise
    _complete(journal, entry, "done", import_id=plan.import_id,
              message=f"unlocked; state {unlocked.import_.state}; {unlocked.lock.describe()}")
    step(f"unlocked import {plan.import_id}: it is now {unlocked.import_.state}")
    # Check: the import ended as unlocked at the planned row and the importer is free.
    item = await client.get_import(plan.import_id)
    lock = await client.lock(plan.importer)
    if item.state != ImportState.UNLOCKED:
        raise RecoveryRefused(f"After Unlock, import {item.id} is {item.state}, not unlocked; nothing was re-imported. "
                              "Check the import in the LMS.")
    if lock.locked and lock.import_id == plan.import_id:
        raise RecoveryRefused(f"After Unlock, {lock.describe()}; nothing was re-imported. Check the importer in the LMS.")
    step(f"checked: {lock.describe()}" if not lock.locked else
         f"checked: import {plan.import_id} released the lock ({lock.describe()} now)")
    if item.rows_processed != plan.rows_committed:
        raise ImportMoved(
            f"Import {item.id} processed rows up to {item.rows_processed} between the check and the unlock; "
            f"it is unlocked, but the planned remainder is out of date. Run `importconsole reimport {item.id}` to "
            "plan the re-import again.", planned=plan.rows_committed, now=item.rows_processed)


async def _reimport(client: LmsBackend, plan: UnlockPlan, journal: Journal | None, extra: dict[str, Any], step: Say,
                    result: RecoveryResult, workdir: Workdir) -> None:
    if plan.remainder_rows == 0:
        step(f"no rows left to re-import for import {plan.import_id}")
        return
    key = plan.idempotency_key
    require(client, "idempotency_key", f"re-import the rest of import {plan.import_id} safely (a retry could import it twice)",
            "submit the remaining rows yourself after checking the importer's page")
    existing = await client.find_import_by_key(key)
    if existing is not None:
        # Another console (or an earlier run) already re-imported this remainder.
        result.reimport, result.reimport_was_new = existing, False
        step(f"the remaining rows of import {plan.import_id} were already re-imported as import {existing.id} "
             f"({existing.state}); nothing sent twice")
        return
    with tempfile.TemporaryDirectory(dir=workdir, prefix="importconsole-reimport-") as tmp:
        path = Path(tmp) / "remainder.csv"  # a name of our own: the LMS's name is only sent as a label
        write_private(path, plan.remainder)
        entry = _begin(journal, "reimport", importer=plan.importer, course_external_id=plan.course_external_id,
                       sha256=plan.remainder_sha256, row_count=plan.remainder_rows, idempotency_key=key,
                       parent_import_id=plan.import_id, first_row=plan.first_row_left,
                       rows_changed=sorted({c.row for c in plan.changes}),
                       completion_only_rows=list(plan.completion_only_rows),
                       refused_rows_expected=list(plan.already_complete_rows), **extra)
        try:
            receipt = await client.submit_import_detailed(
                path, importer=plan.importer, course_external_id=plan.course_external_id,
                idempotency_key=key, file_name=plan.reimport_file_name)
        except IdempotencyMismatch:
            # Same key, other bytes: another console sent this remainder at the same moment with
            # facts seen a moment later. Its import is the re-import; we send nothing.
            existing = await client.find_import_by_key(key)
            if existing is None:
                _complete(journal, entry, "failed", message="idempotency key reused with another payload")
                raise
            _complete(journal, entry, "already_existed", import_id=existing.id,
                      message="another console re-imported this remainder at the same time")
            result.reimport, result.reimport_was_new = existing, False
            step(f"another console re-imported these rows at the same moment: import {existing.id}; nothing sent twice")
            return
        except LmsError as error:
            _complete(journal, entry, "failed", message=str(error))
            raise
    result.reimport = receipt.import_
    result.reimport_was_new = receipt.created
    _complete(journal, entry, "created" if receipt.created else "already_existed", import_id=receipt.import_.id,
              message="; ".join(receipt.notes) or None)
    if receipt.created:
        step(f"re-imported rows {plan.first_row_left}-{plan.rows_total} as import {receipt.import_.id} "
             f"({plan.remainder_rows} rows, key {key})")
    else:
        step(f"the LMS already had this re-import: import {receipt.import_.id} (same key {key}); nothing sent twice")
