"""`FeedsSite`: a Drupal 7 Feeds importer operated through its admin pages, as an admin's browser would.

Feeds has no job API. What the console can know and do is on these pages (`../shared/drupal-feeds/README.md`):

- `GET /import` lists the importers; `GET /import/<id>` shows the status fieldset and the submit button.
  The button is the authoritative lock marker: `Importing (N %)` and disabled while the importer's saved
  progress is below 100 %; N is Feeds' byte progress through the file, not rows.
- Upload: the import form (multipart). Batch mode answers 302 to `/batch?op=start&id=N`; background mode
  answers 302 back with "Import scheduled."; a locked importer answers 200 with the same page (a refusal).
- Batch: `GET op=start`, then `POST op=do` until `"percentage": "100"` (a string), then `GET op=finished`.
  HTTP 500 from a step means the import died on the site; the importer may then stay locked.
  Only the session that started a batch can drive it.
- Unlock: the importer's Unlock tab (a confirm form); afterwards the import button must be back.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from importconsole.lms.errors import NotFound, ServerError, Unreachable
from importconsole.lms.ethosce.errors import (
    BatchInterrupted,
    BatchNotOurs,
    SiteForbidden,
    UnexpectedPage,
    UnlockRefused,
    UploadRefused,
)
from importconsole.lms.ethosce.html import Element, Form, Page
from importconsole.lms.ethosce.session import DrupalSession, location_path
from importconsole.lms.models import FeedsState, JsonObject

IMPORT_FORM = "feeds_import_form"
UNLOCK_FORM = "feeds_unlock_tab_form"
NOT_LOCKED_TEXT = "This importer is not locked"
RUN_CRON_TEXT = "Run cron to continue the import."

CRON_PAGE = "/admin/config/system/cron"
CRON_FORM = "system_cron_settings"

# (percentage 0-100 as Feeds' batch reports it, step number from 1)
BatchProgress = Callable[[float, int], object]  # its answer is ignored


@dataclass(frozen=True)
class ImporterInfo:
    """One row of the /import list."""

    id: str
    title: str
    description: str = ""


@dataclass(frozen=True)
class ImporterStatus:
    """What an importer's page says, read from the status fieldset and the submit button.

    `state` (`FeedsState`): idle (the import button is enabled), importing (disabled `Importing (N %)`: a batch is
    moving OR the import died and left it locked: one page cannot tell, watch `percent` and the stored rows),
    queued (locked and waiting for the site's cron: background mode), deleting (Delete items running).
    `locked` is True whenever the import button is disabled: no upload can start.
    `queued_for_cron` can be True while idle: after an Unlock in background mode the claimed cron job is
    still queued and will run the stored file again (README "Background mode: Unlock is not enough").
    """

    importer_id: str
    title: str
    state: FeedsState
    locked: bool
    percent: int | None
    button_label: str
    background: bool | None  # None while locked (the button no longer says "Import" or "Schedule import")
    queued_for_cron: bool
    last_import: str | None  # "3 min ago" (relative to the site's clock); None while importing
    items_total: int | None  # rows the importer's processor holds; None while importing (not shown)
    next_import: str | None
    deleting_percent: int | None
    source_file: str | None  # name of the file the importer holds (the last one uploaded)
    source_file_url: str | None
    lines: tuple[str, ...]

    def describe(self) -> str:
        """One line an admin reads: `locked at 41 % (Importing (41 %))`, `idle, 72 rows, last import 3 min ago`."""
        if self.state == FeedsState.QUEUED:
            return f"queued until the site's cron runs ({self.percent or 0} % done)"
        if self.state == FeedsState.IMPORTING:
            return f"importing or locked at {self.percent or 0} % of the file's bytes (the import button is disabled)"
        if self.state == FeedsState.DELETING:
            return f"deleting items ({self.deleting_percent or 0} %)"
        rows = f"{self.items_total} rows stored" if self.items_total is not None else "rows stored unknown"
        last = f", last import {self.last_import}" if self.last_import else ""
        trap = "; a cron job is still queued and will import the stored file again" if self.queued_for_cron else ""
        return f"idle, {rows}{last}{trap}"


@dataclass(frozen=True)
class UploadResult:
    importer_id: str
    file_name: str
    batch_id: int | None  # batch mode: drive it with FeedsSite.drive_batch
    scheduled: bool  # background mode: "Import scheduled." (the site's cron runs it)
    messages: tuple[str, ...] = ()


@dataclass(frozen=True)
class BatchOutcome:
    """How a driven batch ended. `died`: a step answered HTTP 500 (or Drupal's batch said status false)."""

    importer_id: str
    batch_id: int
    finished: bool
    died: bool
    percentage: float  # the last percentage the batch reported (Feeds' byte progress)
    steps: int
    messages: tuple[str, ...] = ()  # the site's messages after op=finished ("Created 50 course record rows.")
    status_after: ImporterStatus | None = None
    http_status: int | None = None

    @property
    def locked_after(self) -> bool:
        return self.status_after is not None and self.status_after.locked

    def sentence(self) -> str:
        if self.finished:
            said = " ".join(self.messages) or "no message from the site"
            return f"The import on {self.importer_id} finished (batch {self.batch_id}): {said}"
        if self.status_after is None:
            lock = "whether the importer is locked could not be read"
        elif self.status_after.locked:
            p = self.status_after.percent or 0
            lock = f"the importer is now locked at {p} % of the file's bytes (its button says Importing ({p} %))"
        else:
            lock = ("the importer is not locked (it died in its first chunk, before Feeds saved any progress; "
                    "an upload can start again)")
        return (f"The import on {self.importer_id} died on the site (batch {self.batch_id}, HTTP "
                f"{self.http_status or '?'}); {lock}. Rows of the chunk it died in may be stored.")


@dataclass(frozen=True)
class UnlockOutcome:
    importer_id: str
    was_locked: bool
    unlocked: bool  # the Unlock form was posted and the import button is back
    messages: tuple[str, ...]
    status_after: ImporterStatus


@dataclass(frozen=True)
class CronRun:
    """The site's cron run from its Cron page. `ok`: Drupal said "Cron run successfully."; a job that died
    (a PHP error in a queued import) makes the page answer HTTP 500 instead."""

    ok: bool
    http_status: int
    messages: tuple[str, ...] = ()


_UNITS = {"sec": 1, "min": 60, "hour": 3600, "day": 86400, "week": 604800, "year": 31536000}


def interval_seconds(text: str) -> int | None:
    """Drupal's format_interval text ("1 min 5 sec", "3 hours") as seconds; None if unreadable."""
    words, total, found = text.replace(".", " ").split(), 0, False
    for number, unit in zip(words, words[1:]):
        base = unit.rstrip("s") if unit not in _UNITS else unit
        if number.isdigit() and base in _UNITS:
            total, found = total + int(number) * _UNITS[base], True
    return total if found else None


def _int(text: str) -> int | None:
    digits = "".join(ch for ch in text if ch.isdigit())
    return int(digits) if digits else None


def _between(text: str, before: str, after: str) -> str | None:
    if text.startswith(before) and text.endswith(after):
        return text[len(before): len(text) - len(after)].strip()
    return None


def parse_status(page: Page, importer_id: str) -> ImporterStatus:
    """The importer's status from its import page (or any Feeds tab page: unlock, delete-items)."""
    form = page.form(IMPORT_FORM)
    fieldset = page.root.find("fieldset", id="edit-source-status")
    box = fieldset.find("div", cls="feeds-source-status") if fieldset is not None else None
    if form is None or form.submit is None or fieldset is None or box is None:
        raise UnexpectedPage(f"The page of importer {importer_id!r} has no Feeds import form with a status and an "
                             "import button; check the importer id (importconsole imports lists them).")
    lines = tuple(li.text() for li in box.find_all("li"))
    wrapper = fieldset.find("div", cls="fieldset-wrapper")
    run_cron = RUN_CRON_TEXT in (wrapper.text() if wrapper is not None else "")
    percent = deleting = items = None
    last = nxt = None
    for line in lines:
        if (v := _between(line, "Importing -", "% complete.")) is not None:
            percent = _int(v)
        elif (v := _between(line, "Deleting items -", "% complete.")) is not None:
            deleting = _int(v)
        elif (v := _between(line, "Last import:", "ago.")) is not None:
            last = f"{v} ago"
        elif line.endswith("imported items total."):
            items = _int(line.split(" ", 1)[0])
        elif line == "No imported items.":
            items = 0
        elif line.startswith("Next import:"):
            nxt = line[len("Next import:"):].strip().rstrip(".")
    label = form.button_label or ""
    locked = form.button_disabled
    if locked and (v := _between(label, "Importing (", "%)")) is not None:
        percent = _int(v) if percent is None else percent
    if locked and percent is None:
        percent = 0  # the status line is missing at exactly 0 %
    queued = run_cron or (nxt is not None and "via Queue" in nxt)
    if deleting is not None:
        state = FeedsState.DELETING
    elif locked:
        state = FeedsState.QUEUED if queued else FeedsState.IMPORTING
    else:
        state = FeedsState.IDLE
    file_link = page.root.find("div", cls="feeds-file-name")
    anchor = file_link.find("a") if file_link is not None else None
    return ImporterStatus(
        importer_id=importer_id, title=page.title, state=state, locked=locked, percent=percent if locked else None,
        button_label=label, background=None if locked else label == "Schedule import", queued_for_cron=queued,
        last_import=last, items_total=items, next_import=nxt, deleting_percent=deleting,
        source_file=anchor.text() if anchor is not None else None,
        source_file_url=anchor.get("href") if anchor is not None else None, lines=lines)


def parse_importers(page: Page) -> list[ImporterInfo]:
    """The importers of the /import page's table (links to /import/<id>)."""
    out = []
    for row in page.root.find_all("tr"):
        cells = [c for c in row.children if isinstance(c, Element) and c.tag == "td"]
        link = cells[0].find("a") if cells else None
        if link is None:
            continue
        path = httpx.URL(link.get("href") or "").path
        if "/import/" not in path:
            continue
        importer_id = path.rstrip("/").rsplit("/import/", 1)[1]
        if importer_id and "/" not in importer_id:
            out.append(ImporterInfo(importer_id, link.text(), cells[1].text() if len(cells) > 1 else ""))
    return out


class FeedsSite:
    """The Feeds admin pages of one site, over a logged-in `DrupalSession`."""

    def __init__(self, session: DrupalSession):
        self.session = session

    @staticmethod
    def import_path(importer_id: str) -> str:
        if not importer_id or "/" in importer_id or "?" in importer_id:
            raise ValueError(f"{importer_id!r} is not a Feeds importer id (e.g. course_record_import)")
        return f"/import/{importer_id}"

    async def importers(self) -> list[ImporterInfo]:
        page = await self.session.get_page("/import", "list the importers")
        return parse_importers(page)

    async def status(self, importer_id: str) -> ImporterStatus:
        try:
            page = await self.session.get_page(self.import_path(importer_id), f"read the status of importer {importer_id}")
        except NotFound:
            raise NotFound(f"The site has no Feeds importer {importer_id!r} ({self.session.url(self.import_path(importer_id))} "
                           "is not found); `importconsole imports` lists the site's importers.", status=404) from None
        return parse_status(page, importer_id)

    # ---- upload --------------------------------------------------------------------------------

    async def import_form(self, importer_id: str) -> tuple[Form, ImporterStatus]:
        page = await self.session.get_page(self.import_path(importer_id), f"open the import form of {importer_id}")
        status = parse_status(page, importer_id)
        form = page.form(IMPORT_FORM)
        assert form is not None  # parse_status checked it
        return form, status

    async def upload(self, importer_id: str, path: str | Path, *, delimiter: str = ",", encoding: str = "UTF-8",
                     no_headers: bool = False) -> UploadResult:
        """Uploads `path` through the import form. Refuses with `UploadRefused` (nothing sent) when the import
        button is disabled, and when the site answers with the form again (the importer is locked)."""
        form, status = await self.import_form(importer_id)
        if status.locked:
            raise self._locked(importer_id, status, sent=False)
        return await self.send_upload(importer_id, form, path, delimiter=delimiter, encoding=encoding, no_headers=no_headers)

    def _locked(self, importer_id: str, status: ImporterStatus, *, sent: bool, said: tuple[str, ...] = ()) -> UploadRefused:
        what = "The site returned the import form with no import started" if sent else "Nothing was uploaded"
        return UploadRefused(
            f"{what}: importer {importer_id} is locked at {status.percent or 0} % ({status.button_label}). "
            "Wait for the running import to finish; if it is hung, diagnose and unlock it "
            f"(importconsole recover {importer_id}), then submit again.", percent=status.percent, site_messages=said)

    async def send_upload(self, importer_id: str, form: Form, path: str | Path, *, delimiter: str = ",",
                          encoding: str = "UTF-8", no_headers: bool = False, _again: bool = True) -> UploadResult:
        """POSTs the file with an already scraped form (`upload` is the usual entry). A session that expired
        since the form was read (403, nothing done) logs in again once and posts a fresh form."""
        path = Path(path)
        fields = {"feeds[FeedsCSVParser][delimiter]": delimiter, "feeds[FeedsCSVParser][encoding]": encoding,
                  "op": form.button_label or "Import"}
        if no_headers:
            fields["feeds[FeedsCSVParser][no_headers]"] = "1"
        with path.open("rb") as fh:
            resp = await self.session.submit(self.import_path(importer_id), form, fields, f"upload {path.name}",
                                             files={"files[feeds]": (path.name, fh, "text/csv")})
        if not _again and self.session.lost_session(resp):
            raise SiteForbidden(f"The site refused the upload to {importer_id} to {self.session.username!r} even after "
                                "logging in again (403): the account needs the Feeds permission to import with this "
                                "importer (ask a site admin). Nothing was imported.", status=resp.status_code)
        if _again and self.session.lost_session(resp):
            await self.session.relogin()
            form, status = await self.import_form(importer_id)
            if status.locked:
                raise self._locked(importer_id, status, sent=False)
            return await self.send_upload(importer_id, form, path, delimiter=delimiter, encoding=encoding,
                                          no_headers=no_headers, _again=False)
        where = location_path(resp) if resp.status_code in (301, 302, 303) else ""
        if "/batch" in where:
            batch_id = _int(httpx.URL(where).params.get("id", ""))
            if batch_id is None:
                raise UnexpectedPage(f"The site started a batch for {path.name} without an id ({where}).")
            return UploadResult(importer_id, path.name, batch_id, False)
        if where:
            page = await self.session.get_page(where, f"read the answer to the upload of {path.name}")
            said = tuple(text for _, text in page.messages())
            if any(text == "Import scheduled." for text in said):
                return UploadResult(importer_id, path.name, None, True, said)
            raise UnexpectedPage(f"The site answered the upload of {path.name} with neither a batch nor "
                                 f"\"Import scheduled.\" ({'; '.join(said) or 'no message'}); check the importer's page.")
        if resp.status_code == 200:
            page = Page(resp.text, status=200)
            said = tuple(text for kind, text in page.messages() if kind in ("error", "warning"))
            status = parse_status(page, importer_id)
            if status.locked:
                raise self._locked(importer_id, status, sent=True, said=said)
            raise UploadRefused(f"The site refused the upload of {path.name} to {importer_id}: "
                                f"{'; '.join(said) or 'it returned the form with no message'}. Nothing was imported.",
                                site_messages=said)
        raise ServerError(f"The site answered HTTP {resp.status_code} to the upload of {path.name} to {importer_id}; "
                          "nothing is known to be imported. Check the importer's page.", status=resp.status_code)

    async def upload_header_only(self, importer_id: str, header: list[str], *, delimiter: str = ",") -> UploadResult:
        """Uploads a file with only `header` and no rows: the importer then holds a file that imports nothing.
        The safe way out of the background-mode trap (docs/ethosce.md): a dead cron job re-imports whatever
        file the importer holds, from row 1, when its lease ends."""
        import csv
        import tempfile

        with tempfile.TemporaryDirectory(prefix="importconsole-") as tmp:
            path = Path(tmp) / f"{importer_id}-header-only.csv"
            with path.open("w", encoding="utf-8", newline="") as fh:
                csv.writer(fh, delimiter=delimiter, lineterminator="\r\n").writerow(header)
            return await self.upload(importer_id, path, delimiter=delimiter)

    async def cron_last_run(self) -> int | None:
        """Seconds since the site's cron last ran, from its Cron page ("Last run: 5 sec ago."); None if unknown."""
        page = await self.session.get_page(CRON_PAGE, "read when the site's cron last ran")
        for p in page.root.find_all("p"):
            if (v := _between(p.text(), "Last run:", "ago.")) is not None:
                return interval_seconds(v)
        return None

    async def run_cron(self) -> CronRun:
        """Presses "Run cron" on the site's Cron page (needs the site permission "administer site configuration").
        Queued background imports run inside this request."""
        page = await self.session.get_page(CRON_PAGE, "open the site's Cron page")
        form = page.form(CRON_FORM)
        if form is None or form.button("Run cron") is None:
            raise UnexpectedPage(f"The site's Cron page ({self.session.url(CRON_PAGE)}) has no Run cron button for "
                                 f"{self.session.username!r}; wait for the site's own cron instead.")
        resp = await self.session.submit(CRON_PAGE, form, {**form.values(), "op": "Run cron"}, "run the site's cron")
        if resp.status_code in (301, 302, 303):
            after = await self.session.get_page(location_path(resp) or CRON_PAGE, "read the answer of the cron run")
            said = tuple(text for _, text in after.messages())
            return CronRun("Cron run successfully." in said, resp.status_code, said)
        return CronRun(False, resp.status_code)

    # ---- batch ---------------------------------------------------------------------------------

    async def start_batch(self, batch_id: int) -> None:
        """`GET /batch?op=start&id=N` (the progress page a browser shows; nothing is processed yet)."""
        resp = await self.session.request("GET", "/batch", f"open batch {batch_id}", params={"op": "start", "id": batch_id})
        if resp.status_code != 200:
            raise self._not_ours(batch_id, resp)

    def _not_ours(self, batch_id: int, resp: httpx.Response) -> BatchNotOurs:
        return BatchNotOurs(f"Batch {batch_id} does not answer to this session (HTTP {resp.status_code}): only the "
                            "browser session that started an import can drive its batch. If the importer stays "
                            "locked, diagnose and unlock it.", status=resp.status_code)

    async def step(self, batch_id: int) -> tuple[int, JsonObject | None]:
        """One `POST /batch?id=N&op=do`: (HTTP status, the JSON answer or None)."""
        resp = await self.session.request("POST", f"/batch?id={int(batch_id)}&op=do", f"drive batch {batch_id}",
                                          retry=False, content=b"", headers={"Accept": "application/json"})
        if resp.status_code in (301, 302, 303) or resp.status_code == 403:
            raise self._not_ours(batch_id, resp)
        if resp.status_code != 200:
            return resp.status_code, None
        try:
            data = json.loads(resp.text)
        except ValueError:
            raise self._not_ours(batch_id, resp) from None
        return 200, data if isinstance(data, dict) else None

    async def drive_batch(self, importer_id: str, batch_id: int, *, on_progress: BatchProgress | None = None,
                          started: bool = False) -> BatchOutcome:
        """Drives a batch this session started to its end. Returns a `BatchOutcome`: finished (with the site's
        messages), or died (HTTP 500 from a step), with the importer's status read again afterwards."""
        if not started:
            await self.start_batch(batch_id)
        steps, percentage = 0, 0.0
        while True:
            try:
                code, data = await self.step(batch_id)
            except Unreachable as exc:
                raise BatchInterrupted(
                    f"{exc} The import on {importer_id} (batch {batch_id}) was at {percentage:g} % of the file's bytes "
                    "and stays locked mid-import: it advances only while the session that started it drives it. "
                    "Resume it from this session if it still can, else diagnose and unlock it.",
                    batch_id=batch_id, percentage=percentage, steps=steps, reason=str(exc)) from None
            steps += 1
            if data is None or not data.get("status", False):
                status_after = await self.status(importer_id)
                return BatchOutcome(importer_id, batch_id, False, True, percentage, steps,
                                    status_after=status_after, http_status=code)
            try:
                percentage = float(str(data.get("percentage", "0")))
            except ValueError:
                raise UnexpectedPage(f"Batch {batch_id} answered an unreadable percentage {data.get('percentage')!r}.") from None
            if on_progress is not None:
                result = on_progress(percentage, steps)
                if inspect.isawaitable(result):
                    await result
            if percentage >= 100:
                break
        return await self.finish_batch(importer_id, batch_id, steps)

    async def finish_batch(self, importer_id: str, batch_id: int, steps: int = 0) -> BatchOutcome:
        """`GET op=finished`, then the import page it redirects to: its messages and the status."""
        resp = await self.session.request("GET", "/batch", f"finish batch {batch_id}", params={"op": "finished", "id": batch_id})
        target = location_path(resp) if resp.status_code in (301, 302, 303) else self.import_path(importer_id)
        page = await self.session.get_page(target, f"read the end of batch {batch_id}")
        said = tuple(text for _, text in page.messages())
        try:
            status = parse_status(page, importer_id)
        except UnexpectedPage:
            status = await self.status(importer_id)
        return BatchOutcome(importer_id, batch_id, True, False, 100.0, steps, said, status, resp.status_code)

    # ---- unlock --------------------------------------------------------------------------------

    async def unlock(self, importer_id: str, *, expected_percent: int | None = None, _again: bool = True) -> UnlockOutcome:
        """Feeds' Unlock tab. Not locked: nothing is posted (`was_locked` False). `expected_percent`: refuse with
        `UnlockRefused` when the progress shown no longer equals it (compare-and-unlock)."""
        path = self.import_path(importer_id) + "/unlock"
        page = await self.session.get_page(path, f"open the Unlock tab of {importer_id}")
        form = page.form(UNLOCK_FORM)
        if form is None or form.submit is None:
            raise UnexpectedPage(f"The Unlock tab of {importer_id} ({self.session.url(path)}) has no Unlock form; "
                                 "this Feeds version may not have one: unlock it on the site.")
        if form.button_disabled or NOT_LOCKED_TEXT in page.root.text():
            status = await self.status(importer_id)
            return UnlockOutcome(importer_id, False, False, (), status)
        percent = _status_percent(page)
        if expected_percent is not None and percent != expected_percent:
            raise UnlockRefused(f"Unlock refused: importer {importer_id} moved from {expected_percent} % to {percent} % "
                                "since it was read, so it may not be hung. Nothing was unlocked.")
        resp = await self.session.submit(path, form, {"op": form.button_label or "Unlock"}, f"unlock {importer_id}")
        if self.session.lost_session(resp):  # expired between the GET and the POST: nothing was done
            if not _again:
                raise SiteForbidden(f"The site refused the Unlock of {importer_id} to {self.session.username!r} even after "
                                    "logging in again (403): the account needs the Feeds permission to unlock "
                                    "this importer (ask a site admin).", status=resp.status_code)
            await self.session.relogin()
            return await self.unlock(importer_id, expected_percent=percent if expected_percent is None else expected_percent,
                                     _again=False)
        if resp.status_code not in (301, 302, 303):
            raise UnexpectedPage(f"The site answered HTTP {resp.status_code} to Unlock on {importer_id}, not the "
                                 "redirect it sends after unlocking; check the importer's page.", status=resp.status_code)
        after = await self.session.get_page(location_path(resp) or self.import_path(importer_id),
                                            f"read {importer_id} after Unlock")
        said = tuple(text for _, text in after.messages())
        try:
            status = parse_status(after, importer_id)
        except UnexpectedPage:
            status = await self.status(importer_id)
        return UnlockOutcome(importer_id, True, not status.locked, said, status)


def _status_percent(page: Page) -> int | None:
    """The progress on a Feeds tab's status fieldset (0 when the line is missing: exactly 0 %)."""
    box = page.root.find("div", cls="feeds-source-status")
    for li in box.find_all("li") if box is not None else ():
        if (v := _between(li.text(), "Importing -", "% complete.")) is not None:
            return _int(v)
    return 0
