"""Operating an EthosCE importer (Drupal 7 + Feeds): submit with a driven batch, watch, hung,
diagnose, compare-and-unlock, re-import the rows not stored. Over `lms.ethosce.backend.EthosceBackend`.

Feeds has no import ids: an import is named by its importer (`course_record_import`), one at a time.
What the console can know (../shared/drupal-feeds/README.md, docs/ethosce.md):
- the importer's page: idle, `Importing (N %)` (moving, or died and locked: one page cannot tell), queued
  for cron; N counts BYTES of the file. Where the console has the file, N becomes rows.
- restws: the rows the processor stored (the holding table), in id order. Rows have no import id: the
  console notes the newest id before it uploads (the journal keeps it); for a colleague's upload it takes
  the longest run of newest stored rows that equals the file's first rows, and refuses when there is none.
- hung = locked, and neither the percentage nor the stored rows moved for `hung_after` (or a dead batch).
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import os
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from importconsole.journal import Journal
from importconsole.lms.ethosce.backend import FEEDS_CAPABILITIES, EthosceBackend
from importconsole.lms.ethosce.errors import BatchInterrupted as ConnectionLostMidBatch
from importconsole.lms.ethosce.errors import ImportDied, UploadRefused
from importconsole.lms.ethosce.feeds import BatchOutcome, ImporterStatus
from importconsole.lms.models import FeedsState
from importconsole.lms.ethosce.diagnose import MAPPED as TRANSCRIPT_COLUMNS
from importconsole.lms.ethosce.diagnose import FeedsDiagnosis, diagnose_feed, read_feed_file, stored_key
from importconsole.lms.port import CapabilityMissing
from importconsole.operations.hung import Diagnosis, diagnose_file
from importconsole.operations.recover import RecoveryRefused
from importconsole.operations.watch import LmsUnseen, format_duration, what_to_do
from importconsole.private_files import open_private, private_folder
from datetime import UTC

if TYPE_CHECKING:
    from importconsole.operations.submit import SubmitPlan

RowKey = tuple[str, ...]
Progress = Callable[[int, int], None]  # (rows done, rows in the file)
Sleep = Callable[[float], Awaitable[object]]


# ---------------------------------------------------------------------------------------------
# The file, as the processor stores it


@dataclass(frozen=True)
class FileRows:
    """The rows of an import file as the site stores them, and where each ends (Feeds counts bytes)."""

    path: Path
    sha256: str
    header: list[str]
    cells: list[list[str]]
    keys: list[RowKey]
    ends: list[int]  # byte offset just after each row
    size: int

    @property
    def count(self) -> int:
        return len(self.keys)

    def rows_at_percent(self, percent: float | None) -> int:
        """Rows fully read when Feeds' byte progress says `percent` (its saved position is a row end)."""
        if not percent or not self.size:
            return 0
        position = percent / 100 * self.size + self.size * 0.005  # the page rounds to whole percents
        return sum(1 for end in self.ends if end <= position)


def _stored_form(column: str, value: str) -> str:
    if column == "complete":  # the processor stores 0/1
        return str(int(value.strip().lower() not in ("", "0", "no", "false", "n")))
    return value


def read_file_rows(path: str | os.PathLike[str]) -> FileRows:
    """Read with the console's import-file reader (encodings, BOM), mapped like Feeds maps a header
    (cells trimmed and lower-cased). Raises ImportFileError (a sentence with row and column)."""
    from importconsole.importfile.reader import ImportFileError, open_import_file

    path = Path(path)
    try:
        opened = open_import_file(path)  # first: a missing file or a folder is a sentence, not an OSError
        data = path.read_bytes()
    except ImportFileError as error:  # the sentence names the file: `--file` or the TUI's typed path
        raise ImportFileError(f"{path}: {error.message}", path=path,
                              row=error.row, line=error.line, column=error.column, fix=error.fix) from None
    except OSError as error:
        raise ImportFileError(f"{path}: the file cannot be read ({error.strerror or error})", path=path) from None
    header = [h.strip().lower() for h in opened.header]
    index = {name: i for i, name in enumerate(header)}
    cells, keys, ends = [], [], []
    offset = opened.data_offset
    for record in opened.records(keep_raw=True):
        offset += len(record.raw.encode(opened.encoding, "replace"))
        cells.append(list(record.cells))
        keys.append(tuple(_stored_form(c, record.cells[index[c]] if c in index and index[c] < len(record.cells) else "")
                          for c in TRANSCRIPT_COLUMNS))
        ends.append(offset)
    return FileRows(path, hashlib.sha256(data).hexdigest(), list(opened.header), cells, keys, ends, len(data))


def stored_run(stored: list[RowKey], file_keys: list[RowKey]) -> int:
    """How many of the newest stored rows are the file's first rows, in order (0: none)."""
    for start in range(len(stored)):
        run = stored[start:]
        if len(run) <= len(file_keys) and run == file_keys[:len(run)]:
            return len(run)
    return 0


def rows_not_stored(file_keys: list[RowKey], stored_since: list[RowKey]) -> list[int]:
    """Row numbers (from 1) of the file that the site did not store: the multiset difference, in
    file order (a row the file holds twice and the site stored once is left once)."""
    left = Counter(stored_since)
    missing = []
    for number, key in enumerate(file_keys, start=1):
        if left[key] > 0:
            left[key] -= 1
        else:
            missing.append(number)
    return missing


# ---------------------------------------------------------------------------------------------
# What the journal knows about the last upload the console made to an importer


@dataclass(frozen=True)
class OwnUpload:
    file_path: Path | None
    sha256: str | None
    first_stored_id: int | None  # the newest stored row's id just before the upload
    batch_id: int | None
    time: str
    batch_outcome: str | None = None  # how the console's driving of its batch ended: finished, died, interrupted


def last_own_upload(journal: Journal | None, base_url: str, importer_id: str) -> OwnUpload | None:
    if journal is None:
        return None
    batch_outcome = None
    for entry in reversed(journal.entries()):
        extra = entry.extra or {}
        if entry.importer != importer_id or entry.base_url != base_url or "first_stored_id" not in extra:
            continue
        if entry.action == "drive_batch" and batch_outcome is None:
            batch_outcome = entry.outcome
        elif entry.action in ("submit", "reimport") and entry.outcome in ("uploaded", "scheduled", "sending"):
            return OwnUpload(Path(entry.file_path) if entry.file_path else None, entry.sha256,
                             extra.get("first_stored_id"), extra.get("batch_id"), entry.time,
                             batch_outcome if entry.outcome == "uploaded" else None)
    return None


def own_file(upload: OwnUpload | None) -> Path | None:
    """The file the console uploaded, if it is still there with the same bytes."""
    if upload is None or upload.file_path is None or not upload.sha256:
        return None
    try:
        same = hashlib.sha256(upload.file_path.read_bytes()).hexdigest() == upload.sha256
    except OSError:
        return None
    return upload.file_path if same else None


# ---------------------------------------------------------------------------------------------
# Submitting: upload through the import form, drive the batch to its end


@dataclass
class ImporterSubmitOutcome:
    importer_id: str
    file: FileRows
    batch_id: int | None
    scheduled: bool
    outcome: BatchOutcome | None
    notes: list[str] = field(default_factory=list)

    @property
    def sentence(self) -> str:
        if self.scheduled:
            return (f"{self.file.path.name} was uploaded to {self.importer_id}: the import is queued until the site's "
                    "cron runs (background mode). It is not hung; watch it with `importconsole watch "
                    f"{self.importer_id}`.")
        assert self.outcome is not None
        said = " ".join(self.outcome.messages) or "no message from the site"
        return (f"Imported {self.file.path.name} into {self.importer_id} (batch {self.batch_id}): "
                f"{self.file.count} rows sent; the site said: {said}")


class BatchInterrupted(Exception):
    """The console stopped driving its batch (Ctrl+C, lost connection). str() says what the importer is now."""

    def __init__(self, message: str, *, cancelled: bool = False):
        super().__init__(message)
        self.cancelled = cancelled  # Ctrl+C (exit 130), not a lost connection (exit 3)


def interrupted_sentence(importer_id: str, batch_id: int | None, percent: float, file: FileRows | None,
                         recover_path: Path | None = None) -> str:
    """`recover_path`: the file to give `recover` (a re-import uploads a temporary file that is gone by then)."""
    rows = f" (about {file.rows_at_percent(percent)} of {file.count} rows)" if file else ""
    where = f"batch {batch_id}, kept in the journal" if batch_id else "no batch started"
    given = recover_path or (file.path if file else None)
    path = f" --file {given}" if given else ""
    if percent <= 0:  # batch mode saves progress only at a chunk's end: no lock unless the site finished one
        state = ("Feeds had saved no progress yet, so the importer is locked only if the site finished its first "
                 "chunk (`importconsole imports` shows it).")
    else:
        state = "The importer stays locked."
    return (f"The import on {importer_id} is stuck mid-import at {percent:.0f} %{rows} ({where}): Feeds moves a batch "
            f"only while the session that started it keeps driving it, and this console stopped. {state} "
            f"Run `importconsole recover {importer_id}{path}` to unlock it if needed and import exactly the rows the "
            "site did not store.")


async def submit_to_importer(backend: EthosceBackend, plan: SubmitPlan, importer_id: str, *, journal: Journal,
                             progress: Progress | None = None) -> ImporterSubmitOutcome:
    """Upload a validated `SubmitPlan`'s file to `importer_id` and drive the batch to the end. Raises
    `UploadRefused` (locked: nothing imported), `ImportDied` (a batch step answered 500: the sentence says
    whether the importer is now locked) or `BatchInterrupted`."""
    from importconsole.operations.submit import SubmitRefused, file_sha256

    file = await asyncio.to_thread(read_file_rows, plan.path)
    if (await asyncio.to_thread(file_sha256, plan.path))[0] != plan.sha256:
        raise SubmitRefused(f"{plan.path} changed on disk since it was validated. Nothing was sent. Validate it again, then submit.")
    return await upload_and_drive(backend, file, importer_id, journal=journal, progress=progress, action="submit")


async def upload_and_drive(backend: EthosceBackend, file: FileRows, importer_id: str, *, journal: Journal,
                           progress: Progress | None, action: str, upload_path: Path | None = None,
                           recover_path: Path | None = None, **fields: Any) -> ImporterSubmitOutcome:
    mark = await backend.restws.last_transcript_id()
    entry = journal.begin(action, profile=backend.profile, base_url=backend.base_url, lms_user=backend.session.username,
                          file_path=file.path, sha256=file.sha256, row_count=file.count, importer=importer_id,
                          first_stored_id=mark, **fields)
    try:
        up = await backend.feeds.upload(importer_id, upload_path or file.path)
    except BaseException as error:
        journal.complete(entry, "refused" if isinstance(error, UploadRefused) else "unknown", message=str(error) or None)
        raise
    if up.scheduled:
        journal.complete(entry, "scheduled", message="queued until the site's cron runs", first_stored_id=mark)
        return ImporterSubmitOutcome(importer_id, file, None, True, None)
    batch_id = up.batch_id
    assert batch_id is not None  # not scheduled: batch mode always names its batch (FeedsSite.send_upload)
    journal.complete(entry, "uploaded", message=f"batch {batch_id} started", batch_id=batch_id)
    batch = journal.begin("drive_batch", profile=backend.profile, base_url=backend.base_url, lms_user=backend.session.username,
                          importer=importer_id,
                          file_path=file.path, sha256=file.sha256, batch_id=batch_id, first_stored_id=mark)
    percent = 0.0

    def step(pct: float, _n: int) -> None:
        nonlocal percent
        percent = pct
        if progress is not None:
            progress(file.count if pct >= 100 else file.rows_at_percent(pct), file.count)

    try:
        outcome = await backend.feeds.drive_batch(importer_id, batch_id, on_progress=step)
    except (asyncio.CancelledError, KeyboardInterrupt, Exception) as error:
        text = interrupted_sentence(importer_id, batch_id, percent, file, recover_path)
        journal.complete(batch, "interrupted", message=text)
        if isinstance(error, (asyncio.CancelledError, KeyboardInterrupt)):
            raise BatchInterrupted(text, cancelled=True) from None
        why = error.reason if isinstance(error, ConnectionLostMidBatch) else error  # the failure alone, not its meaning
        raise BatchInterrupted(f"{why or error} {text}") from None
    if outcome.died:
        text = died_sentence(outcome, file)
        journal.complete(batch, "died", message=text)
        raise ImportDied(text, outcome=outcome)
    # 100 % is not "stored": a Feeds that cannot take its lock (left by a site process that was killed)
    # ends the batch at once with "Cannot acquire lock", having stored nothing.
    stored = len(await backend.restws.transcript_rows(after_id=mark))
    if stored < file.count:
        text = short_sentence(importer_id, batch_id, file, stored, outcome.messages, recover_path)
        journal.complete(batch, "short", message=text)
        raise ImportDied(text, outcome=outcome)
    journal.complete(batch, "finished", message=" ".join(outcome.messages) or None)
    return ImporterSubmitOutcome(importer_id, file, batch_id, False, outcome)


def short_sentence(importer_id: str, batch_id: int, file: FileRows, stored: int, messages: tuple[str, ...],
                   recover_path: Path | None) -> str:
    said = " ".join(messages) or "no message"
    return (f"The batch {batch_id} of {file.path.name} on {importer_id} ended, but the site stored only {stored} of its "
            f"{file.count} rows (it said: {said}). Run `importconsole diagnose {importer_id} --file "
            f"{recover_path or file.path}` to see which rows are missing, then import them.")


def died_sentence(outcome: BatchOutcome, file: FileRows | None) -> str:
    path = f" --file {file.path}" if file else ""
    what_next = (f"Run `importconsole recover {outcome.importer_id}{path}`: it names the row and character, unlocks "
                 "the importer and imports exactly the rows the site did not store."
                 if outcome.locked_after else
                 f"Run `importconsole diagnose {outcome.importer_id}{path}` to see which row stopped it and which rows "
                 "were stored; import the rest once the file is fixed (`importconsole fix`).")
    return f"{outcome.sentence()} {what_next}"


# ---------------------------------------------------------------------------------------------
# Looking: the importer's state, rows, hung


@dataclass(frozen=True)
class ImporterView:
    importer_id: str
    status: ImporterStatus
    newest_stored_id: int
    file: FileRows | None = None
    stored_since: int | None = None  # rows of this import the site stored (the console's own upload)
    stalled_for: float = 0.0
    hung: bool = False
    # Feeds saves no progress before its first chunk ends: the page says idle while rows are being
    # stored. `storing`: idle, yet the newest stored row moved since the last look; `settled`: idle
    # and the newest stored row stayed put for one poll (only then is it idle).
    storing: bool = False
    settled: bool = True

    def describe(self) -> str:
        s = self.status
        if s.state == FeedsState.IDLE and self.storing:
            text = (f"{self.importer_id}: importing, rows being stored (newest stored row {self.newest_stored_id}); "
                    "Feeds shows no progress before its first chunk ends")
        elif s.state == FeedsState.IDLE and not self.settled:
            text = f"{self.importer_id}: the page says idle; checking that no rows are being stored"
        elif s.state == FeedsState.QUEUED:
            text = f"{self.importer_id}: queued until the site's cron runs ({s.percent or 0} %); not hung"
        elif s.state == FeedsState.IMPORTING:
            text = f"{self.importer_id}: {'hung' if self.hung else 'importing'} {s.percent or 0} %"
            if self.file is not None:
                done = self.stored_since if self.stored_since is not None else self.file.rows_at_percent(s.percent)
                text += f", {done} of {self.file.count} rows" + (" stored" if self.stored_since is not None else "")
            text += " (locked: no upload can start)"
            if self.hung:
                text += f"; no progress for {self.stalled_for:.0f}s"
        else:
            text = f"{self.importer_id}: {s.describe()}"
        return text


async def read_view(backend: EthosceBackend, importer_id: str, own: OwnUpload | None, file: FileRows | None) -> ImporterView:
    status, newest = await asyncio.gather(backend.status(importer_id), backend.restws.last_transcript_id())
    stored_since = None
    if own is not None and own.first_stored_id is not None and file is not None and own.sha256 == file.sha256:
        stored_since = len(await backend.restws.transcript_rows(after_id=own.first_stored_id))
    return ImporterView(importer_id, status, newest, file, stored_since)


class HungWatch:
    """Locked, and (percentage, newest stored row) unchanged for `hung_after` seconds: hung."""

    def __init__(self, hung_after: float, clock: Callable[[], float] = time.monotonic):
        self.hung_after, self.clock = hung_after, clock
        self._seen: tuple[bool, int | None, int] | None = None
        self._since = clock()
        self._newest: int | None = None

    def observe(self, view: ImporterView, *, batch_died: bool = False) -> ImporterView:
        """`batch_died`: the console saw this import's batch die (HTTP 500): hung at once, no waiting."""
        now = self.clock()
        sample = (view.status.locked, view.status.percent, view.newest_stored_id)
        if sample != self._seen:
            self._seen, self._since = sample, now
        stalled = now - self._since
        hung = view.status.state == FeedsState.IMPORTING and (stalled >= self.hung_after or batch_died)
        idle = view.status.state == FeedsState.IDLE
        storing = idle and self._newest is not None and self._newest != view.newest_stored_id
        settled = idle and self._newest == view.newest_stored_id
        self._newest = view.newest_stored_id
        return ImporterView(view.importer_id, view.status, view.newest_stored_id, view.file, view.stored_since,
                            stalled, hung, storing, settled or not idle)


def site_unseen(backend: EthosceBackend, since: float, error: BaseException) -> LmsUnseen:
    """Reads of the site fail: the outage named as the rest of the EthosCE wording names the site
    (`The site at HOST has not been seen for 1m05s ...`), not as "the LMS"."""
    site = f"the site at {backend.session.host}"
    return LmsUnseen(since, str(error), what_to_do(error, site), lms=site)


# ---------------------------------------------------------------------------------------------
# Diagnose and plan: which rows the site stored, which it did not, where it stopped


@dataclass(frozen=True)
class ImporterPlan:
    importer_id: str
    status: ImporterStatus
    file: FileRows
    newest_stored_id: int
    stored_since: int  # rows of this file the site stored
    missing: tuple[int, ...]  # row numbers the site did not store
    diagnosis: Diagnosis | None
    how_found: str  # how the stored rows were tied to this file
    cause: FeedsDiagnosis | None = None  # the causes told apart in words (lms.ethosce.diagnose)
    background: bool | None = None  # "Process in background" (None: the settings page could not be read)
    downloaded: bool = False  # the file is the one the importer holds, downloaded from the site

    @property
    def needs_unlock(self) -> bool:
        return self.status.locked

    def describe(self) -> list[str]:
        s = self.status
        lines = [f"Importer {self.importer_id}: {s.button_label if s.locked else 'not locked'}"
                 + (f" ({s.percent} % of the file's bytes)" if s.locked else ""),
                 f"  {self.file.path.name}: {self.file.count} rows; the site stored {self.stored_since} of them "
                 f"({self.how_found}); not stored: {len(self.missing)}"]
        if self.downloaded:
            lines.insert(1, f"  (the file the importer holds, downloaded from the site to {self.file.path})")
        if self.diagnosis is not None:
            d = self.diagnosis
            summary = d.summary()
            if self.cause is not None and self.cause.cause != "unknown" and summary.startswith("cause unknown: "):
                summary = summary[len("cause unknown: "):]  # the cause's sentence below names it (e.g. abandoned)
            lines.append(f"  stopped at row {d.row}" + (f" (line {d.line})" if d.line else "") + f": {summary}")
        if self.cause is not None and self.missing:
            lines.append(f"  {self.cause.sentence(self.file.path.name)}")
        if self.missing and self.background and self.needs_unlock:  # what recover does there (the safe way out)
            lines += ["1. Unlock: post the Unlock form, then check the import button is back",
                      "2. Upload a file with only the header: the dead cron job can then import nothing",
                      f"3. Wait {LEASE + 2:.0f} s for the dead cron job's lease to end, then run the site's cron once "
                      "(every cron task of the site runs)",
                      f"4. Upload rows {_ranges(list(self.missing))} ({len(self.missing)} rows), sanitized, and run "
                      "the site's cron once more to import them"]
        elif self.missing:
            lines.append("1. Unlock: post the Unlock form, then check the import button is back" if self.needs_unlock
                         else "1. Unlock: not needed, the importer is not locked")
            lines.append(f"2. Re-import rows {_ranges(list(self.missing))} ({len(self.missing)} rows), sanitized")
        else:
            lines.append("Every row of the file is stored: nothing to re-import.")
        return lines


def _ranges(rows: list[int]) -> str:
    out, start = [], None
    for i, row in enumerate(rows):
        start = row if start is None else start
        if i + 1 == len(rows) or rows[i + 1] != row + 1:
            out.append(str(start) if start == row else f"{start}-{row}")
            start = None
    return ", ".join(out)


def need_file(importer_id: str, doing: str) -> CapabilityMissing:
    return CapabilityMissing(FEEDS_CAPABILITIES, "submitted_file", doing,
                             f"give the file that was uploaded: importconsole {doing.split()[0]} {importer_id} --file FILE")


async def plan_importer(backend: EthosceBackend, importer_id: str, *, file: str | os.PathLike[str] | None,
                        journal: Journal | None) -> ImporterPlan:
    """Which rows of the file the site stored and which it did not, and where the import stopped.
    Changes nothing. Refuses (RecoveryRefused) when the stored rows are not this file's first rows."""
    own = last_own_upload(journal, backend.base_url, importer_id)
    path = Path(file) if file else own_file(own)
    status = await backend.status(importer_id)
    downloaded = False
    if path is None:  # Feeds keeps the file it was given and links it on the import page
        path = await download_importer_file(backend, status)
        downloaded = path is not None
    if path is None:
        raise need_file(importer_id, "diagnose the import (name its row and character) and plan its recovery")
    rows = await asyncio.to_thread(read_file_rows, path)
    if own is not None and own.sha256 == rows.sha256 and own.first_stored_id is not None:
        since_rows = await backend.restws.transcript_rows(after_id=own.first_stored_id)
        how = f"rows stored since the console uploaded it at {own.time}"
        since = [stored_key(r) for r in since_rows]
    else:
        all_rows = await backend.restws.transcript_rows()
        stored = [stored_key(r) for r in all_rows]
        run = stored_run(stored, rows.keys)
        since = stored[len(stored) - run:] if run else []
        since_rows = all_rows[len(all_rows) - run:] if run else []
        how = "the newest stored rows, which are the file's first rows"
        expected = rows.rows_at_percent(status.percent) if status.locked else 0
        if run < expected or (run == 0 and status.locked and (status.percent or 0) > 0):
            raise RecoveryRefused(
                f"The newest rows the site stored are not the first rows of {path.name} (the importer's progress, "
                f"{status.percent or 0} %, means at least {expected} of them should be): is it the file that was "
                f"uploaded to {importer_id}? Nothing was changed. Give the file that was uploaded with --file.")
    missing = rows_not_stored(rows.keys, since)
    newest = await backend.restws.last_transcript_id()
    diagnosis = None
    if missing:
        diagnosis = await asyncio.to_thread(diagnose_file, 0, path, rows_processed=missing[0] - 1, rows_total=rows.count,
                                            file_source=str(path))
    cause = await asyncio.to_thread(lambda: diagnose_feed(read_feed_file(path), since_rows, locked=status.locked))
    background = await backend.background_mode(importer_id) if status.locked and missing else None
    return ImporterPlan(importer_id, status, rows, newest, len(since), tuple(missing), diagnosis, how, cause, background,
                        downloaded)


def held_file_name(name: str, fallback: str) -> str:
    """A local file name for a name the site gives: the site's name is data, never a path
    (no folders, no '..', no control characters, at most 100 characters)."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    safe = "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_" for c in base).lstrip(".")[:100]
    return safe or fallback


async def download_importer_file(backend: EthosceBackend, status: ImporterStatus) -> Path | None:
    """The file the importer holds (the last one uploaded, linked on its page), saved under the state
    folder (0600: it names learners) so that the paths shown in later sentences still exist. Only the
    link's path is used: the session cookie never goes to another host. None when there is no link."""
    import httpx

    from importconsole.config import state_dir

    if not status.source_file_url or not status.source_file:
        return None
    link = httpx.URL(status.source_file_url)
    resp = await backend.session.request("GET", link.raw_path.decode("ascii"), f"download the file importer "
                                         f"{status.importer_id} holds")
    if resp.status_code != 200:
        return None
    folder = private_folder(state_dir() / "ethosce-files" / held_file_name(status.importer_id, "importer"))
    path = folder / held_file_name(status.source_file, "held-file.csv")
    with os.fdopen(open_private(path, "replace", follow_links=False), "wb") as out:
        out.write(resp.content)
    return path


# ---------------------------------------------------------------------------------------------
# Compare-and-unlock, then re-import exactly the rows not stored


class ImporterMoved(RecoveryRefused):
    """The importer's progress or its stored rows moved since the plan: it is not hung."""


@dataclass
class ImporterRecovery:
    importer_id: str
    unlocked: bool = False
    reimported: ImporterSubmitOutcome | None = None
    steps: list[str] = field(default_factory=list)


async def recover_importer(backend: EthosceBackend, plan: ImporterPlan, *, journal: Journal, unlock: bool = True,
                           reimport: bool = True, say: Callable[[str], None] | None = None,
                           progress: Progress | None = None, sleep: Sleep = asyncio.sleep) -> ImporterRecovery:
    """Compare-and-unlock, then exactly the rows not stored. In background mode, the safe way out
    (docs/ethosce.md): unlock, a header-only file, the dead cron job's lease waited out and cron run
    once (it imports nothing), then the remainder, imported by cron once."""
    result = ImporterRecovery(plan.importer_id)

    def step(text: str) -> None:
        result.steps.append(text)
        if say:
            say(text)

    if (unlock or reimport) and await backend.background_mode(plan.importer_id):
        if plan.status.state == FeedsState.QUEUED and (plan.status.source_file or "").endswith("-header-only.csv"):
            raise RecoveryRefused(f"The safe way out on {plan.importer_id} is waiting for the site's cron: the "
                                  "header-only file is queued and the dead job's lease must end. Nothing was changed. "
                                  f"Run `importconsole recover {plan.importer_id} --file {plan.file.path} --yes` again "
                                  "once the site's cron has run at least 30 s after the unlock.")
        if unlock and reimport and plan.needs_unlock and plan.missing:
            await _background_way_out(backend, plan, journal, step, sleep)
            result.unlocked = True
        elif not (reimport and not plan.needs_unlock and plan.missing and await _dead_job_gone(backend, plan, journal)):
            raise RecoveryRefused(background_trap(plan))  # before anything changes: Unlock alone would re-import
        result.reimported = await _reimport(backend, plan, journal, progress)
        step(f"uploaded rows {_ranges(list(plan.missing))} of {plan.file.path.name} ({len(plan.missing)} rows, sanitized): "
             "scheduled for the site's cron")
        await _cron_imports_remainder(backend, plan, step)
        return result
    if unlock and plan.needs_unlock:
        await _compare_and_unlock(backend, plan, journal, step)
        result.unlocked = True
    if reimport and plan.missing:
        status = await backend.status(plan.importer_id)
        if status.locked:
            raise RecoveryRefused(f"Importer {plan.importer_id} is locked ({status.button_label}); nothing was "
                                  f"re-imported. Unlock it first: importconsole recover {plan.importer_id} --file {plan.file.path}")
        if status.queued_for_cron:
            raise RecoveryRefused(background_trap(plan))
        result.reimported = await _reimport(backend, plan, journal, progress)
        step(f"re-imported rows {_ranges(list(plan.missing))} of {plan.file.path.name} into {plan.importer_id} "
             f"({len(plan.missing)} rows, batch {result.reimported.batch_id})")
    return result


async def not_hung_yet(backend: EthosceBackend, plan: ImporterPlan, *, hung_after: float, journal: Journal | None,
                       poll_interval: float, say: Callable[[str], None] | None = None, sleep: Sleep = asyncio.sleep,
                       clock: Callable[[], float] = time.monotonic) -> str | None:
    """Unlocking ends an import: only a hung one, by the rule of `watch` (locked, and neither the
    percentage nor the newest stored row moved for `hung_after` seconds; at once where this console saw
    its own batch die), else a live batch on a slow row would be cut short. The site never says when an
    import last moved, so the console watches it for `hung_after` seconds from the plan's reading.
    None: hung, or nothing to unlock here (not locked; queued for cron: the background rules apply);
    else the sentence that refuses the unlock."""
    if not plan.needs_unlock or plan.status.state != "importing":
        return None
    own = last_own_upload(journal, backend.base_url, plan.importer_id)
    if own is not None and own.batch_outcome == "died":
        return None
    then = (plan.status.locked, plan.status.percent, plan.newest_stored_id)
    started = clock()
    if say:
        say(f"Checking that {plan.importer_id} is hung: its progress and stored rows must not move for "
            f"{format_duration(hung_after)}...")
    while True:
        status, newest = await asyncio.gather(backend.status(plan.importer_id), backend.restws.last_transcript_id())
        if (status.locked, status.percent, newest) != then:
            now = f"{status.percent or 0} %" if status.locked else "not locked"
            return (f"Importer {plan.importer_id} is not hung, so it was not unlocked: it moved within "
                    f"{format_duration(clock() - started)} ({plan.status.percent or 0} % and newest stored row "
                    f"{plan.newest_stored_id} at the plan; {now} and {newest} now), and it counts as hung only after "
                    f"{format_duration(hung_after)} without progress. Follow it with `importconsole watch "
                    f"{plan.importer_id}`; if you know it is dead, `--hung-after SECONDS` sets a shorter wait.")
        left = hung_after - (clock() - started)
        if left <= 0:
            return None
        await sleep(min(poll_interval, left))


def background_trap(plan: ImporterPlan) -> str:
    return (f"Importer {plan.importer_id} runs in background mode (its settings say \"Process in background\"), so "
            "the console changes nothing with this command: there, Unlock alone is not safe. The cron job Feeds "
            "claimed for the dead import stays in the site's queue, and the next cron run after its lease imports "
            "whatever file the importer holds from row 1 and locks again. `importconsole recover "
            f"{plan.importer_id} --file {plan.file.path} --yes` does the safe way out in one go: unlock, a file with "
            "only the header, the lease waited out and cron run once, then the rows not stored. After a way out "
            "that stopped at the cron run, run it again once the site's cron has run at least 30 s after the unlock.")


LEASE = 30.0  # seconds Drupal's queue keeps a claimed cron job before another cron run takes it again


async def _background_way_out(backend: EthosceBackend, plan: ImporterPlan, journal: Journal,
                              step: Callable[[str], None], sleep: Sleep) -> None:
    from importconsole.lms.ethosce.errors import SiteForbidden, UnexpectedPage

    await _compare_and_unlock(backend, plan, journal, step)
    entry = journal.begin("header_only", profile=backend.profile, base_url=backend.base_url, lms_user=backend.session.username,
                          importer=plan.importer_id,
                          file_path=plan.file.path, sha256=plan.file.sha256)
    try:
        await backend.feeds.upload_header_only(plan.importer_id, plan.file.header)
    except Exception as error:
        journal.complete(entry, "refused", message=str(error))
        raise RecoveryRefused(f"Importer {plan.importer_id} was unlocked, but the file with only the header could not be "
                              f"uploaded ({error}); the dead cron job may import the stored file again. Check the "
                              "importer's page, then run recover again.") from None
    journal.complete(entry, "done", message="the importer holds a file with only the header")
    step(f"uploaded a file with only the header to {plan.importer_id}: the dead cron job can only import nothing now")
    step(f"waiting {LEASE + 2:.0f} s for the dead cron job's lease to end, then running the site's cron once")
    await sleep(LEASE + 2)
    newest = await backend.restws.last_transcript_id()
    try:
        await backend.feeds.run_cron()
    except (UnexpectedPage, SiteForbidden):  # the admin may not run cron from the site's Cron page
        raise RecoveryRefused(f"The console cannot run the site's cron ({backend.session.username!r} may not use its "
                              f"Run cron button). Once the site's cron has run, run `importconsole recover {plan.importer_id} "
                              f"--file {plan.file.path} --yes` again: it imports the rows not stored.") from None
    status = await backend.status(plan.importer_id)
    if status.locked or await backend.restws.last_transcript_id() != newest:
        raise RecoveryRefused(f"After the cron run, importer {plan.importer_id} shows {status.describe()} and stored rows "
                              "changed; the rows not stored were not sent. Check the importer's page.")
    step("cron ran once: the dead job is gone (the importer is idle, no row was stored)")


async def _dead_job_gone(backend: EthosceBackend, plan: ImporterPlan, journal: Journal) -> bool:
    """An earlier recover left a header-only file, and the site's cron ran after the dead job's lease
    ended: the dead job ran on it and is gone, so the rows not stored can be scheduled once."""
    from datetime import datetime

    done = [e for e in journal.entries() if e.action == "header_only" and e.importer == plan.importer_id
            and e.base_url == backend.base_url and e.outcome == "done"]
    if not done:
        return False
    since = (datetime.now(UTC) - datetime.fromisoformat(done[-1].time.replace("Z", "+00:00"))).total_seconds()
    last_cron = await backend.feeds.cron_last_run()  # seconds ago, by the site's clock
    return last_cron is not None and since - last_cron >= LEASE


async def _cron_imports_remainder(backend: EthosceBackend, plan: ImporterPlan, step: Callable[[str], None]) -> None:
    """The remainder was scheduled (background mode): run cron once so it is imported now, if allowed."""
    from importconsole.lms.ethosce.errors import SiteForbidden, UnexpectedPage

    try:
        await backend.feeds.run_cron()
    except (UnexpectedPage, SiteForbidden):
        step(f"the rows not stored are queued until the site's cron runs (not hung): watch {plan.importer_id}")
        return
    status = await backend.status(plan.importer_id)
    step(f"cron ran: {plan.importer_id} is {status.describe()}")


async def _compare_and_unlock(backend: EthosceBackend, plan: ImporterPlan, journal: Journal, step: Callable[[str], None]) -> None:
    # Compare just before posting: a moving import is not hung.
    now, newest = await asyncio.gather(backend.status(plan.importer_id), backend.restws.last_transcript_id())
    if (now.locked, now.percent, newest) != (plan.status.locked, plan.status.percent, plan.newest_stored_id):
        raise ImporterMoved(
            f"Importer {plan.importer_id} moved since the diagnosis ({plan.status.percent} % and newest stored row "
            f"{plan.newest_stored_id} then; {now.percent if now.locked else 'not locked'}"
            f"{' %' if now.locked else ''} and {newest} now). It is not hung, so it was NOT unlocked. Watch it "
            f"(`importconsole watch {plan.importer_id}`) and recover only if it stops again.")
    entry = journal.begin("unlock", profile=backend.profile, base_url=backend.base_url, lms_user=backend.session.username,
                          importer=plan.importer_id, file_path=plan.file.path, sha256=plan.file.sha256,
                          percent=plan.status.percent, stored=plan.stored_since,
                          cause=plan.diagnosis.summary() if plan.diagnosis else None)
    try:
        outcome = await backend.feeds.unlock(plan.importer_id, expected_percent=plan.status.percent)
    except Exception as error:
        journal.complete(entry, "refused", message=str(error))
        raise
    if not outcome.unlocked:
        journal.complete(entry, "failed", message=f"the import button is not back: {outcome.status_after.describe()}")
        raise RecoveryRefused(f"After Unlock, importer {plan.importer_id} still shows {outcome.status_after.button_label!r}, "
                              "not the import button; nothing was re-imported. Check the importer on the site.")
    journal.complete(entry, "done", message=" ".join(outcome.messages) or "unlocked")
    step(f"unlocked {plan.importer_id}: the import button is back ({outcome.status_after.describe()})")


async def _reimport(backend: EthosceBackend, plan: ImporterPlan, journal: Journal, progress: Progress | None) -> ImporterSubmitOutcome:
    from importconsole.importfile.facts import OfflineFacts
    from importconsole.importfile.fixes import write_fixed_file

    with tempfile.TemporaryDirectory(prefix="importconsole-reimport-") as tmp:
        source = Path(tmp) / f"{plan.file.path.stem}.rows-not-stored.csv"
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\r\n")
        writer.writerow(plan.file.header)
        writer.writerows(plan.file.cells[n - 1] for n in plan.missing)
        with os.fdopen(open_private(source, "new"), "w", encoding="utf-8", newline="") as out:  # the rows name people
            out.write(text.getvalue())
        fixed = Path(tmp) / f"{plan.file.path.stem}.rows-{plan.missing[0]}-{plan.missing[-1]}.csv"
        await asyncio.to_thread(write_fixed_file, source, fixed, sanitize=True, facts=OfflineFacts(), importer="global")
        rows = await asyncio.to_thread(read_file_rows, fixed)
        return await upload_and_drive(backend, rows, plan.importer_id, journal=journal, progress=progress,
                                      action="reimport", parent_sha256=plan.file.sha256, recover_path=plan.file.path,
                                      original_rows=list(plan.missing))
