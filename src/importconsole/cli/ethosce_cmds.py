"""The headless commands on an EthosCE profile: `imports`, `submit`, `watch`, `diagnose`, `unlock`,
`reimport`, `recover`. An import is named by its importer id (`watch course_record_import`).
Called by cli/lms_cmds.py and cli/operation_cmds.py when the profile's kind is "ethosce"; the
workflows are in operations/ethosce.py. Exit codes as everywhere (cli/common.py): 0 done, 1 a problem found or a
refusal, 2 usage, 3 the site could not be reached or refused us, 130 interrupted.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from importconsole.cli.common import (EXIT_INTERRUPTED, EXIT_LMS, EXIT_OK, EXIT_PROBLEM, EXIT_USAGE, Progress, emit, err,
                                      visible_lines)
from importconsole.importfile.reader import ImportFileError
from importconsole.importfile.safe_text import json_dumps, visible  # JSON: bidi and control characters as \u escapes
from importconsole.lms.models import FeedsState


def importer_of(args: Any, backend: Any) -> str | None:
    """The importer id the command names (None: every importer of the profile)."""
    ref = args.import_id
    if ref is None:
        return None
    if isinstance(ref, int) or str(ref).isdigit():
        from importconsole.lms.port import CapabilityMissing

        raise CapabilityMissing(backend.capabilities, "import_ids", f"find import {ref}",
                                f"name the importer instead, e.g. importconsole {args.command} {backend.importer_ids()[0]}")
    return str(ref)


class RowProgress(Progress):
    """Rows imported, as a bar on a terminal; `Importing: 20/50 rows` at the end otherwise."""

    def __init__(self, label: str = "Importing"):
        super().__init__(label, unit="rows", summary=lambda rows, total: f"{label}: {rows}/{total} rows")


# ---- imports ----------------------------------------------------------------------------------

async def imports(args: Any, backend: Any, journal: Any) -> int:
    from importconsole.operations.ethosce import last_own_upload, own_file, read_file_rows, read_view

    from importconsole.lms.errors import NotFound

    rows = []
    for importer_id in backend.importer_ids():
        own = last_own_upload(journal, backend.base_url, importer_id)
        path = own_file(own)  # the console's own upload: progress in rows, not bytes
        try:
            view = await read_view(backend, importer_id, own, await asyncio.to_thread(read_file_rows, path) if path else None)
        except NotFound:  # a typo'd importer id in the profile: this is where the admin looks for the right one
            return await _importer_not_found(args, backend, importer_id)
        status = view.status
        rows.append({"importer": importer_id, "title": status.title, "state": status.state, "locked": status.locked,
                     "percent": status.percent, "last_import": status.last_import, "rows_stored": status.items_total,
                     "queued_for_cron": status.queued_for_cron, "summary": view.describe()})
    if args.json:
        print(json_dumps(rows))
        return EXIT_OK
    print(f"{'importer':<28} {'state':<18} {'last import':<16} {'rows stored':>11}")
    for r in rows:
        state = f"{r['state']} {r['percent']} %" if r["locked"] else r["state"]
        stored = "-" if r["rows_stored"] is None else str(r["rows_stored"])
        print(f"{visible(r['importer']):<28} {state:<18} {visible(r['last_import'] or '-'):<16} {stored:>11}")
        print(f"  {visible(r['summary'])}")
    return EXIT_OK


async def _importer_not_found(args: Any, backend: Any, importer_id: str) -> int:
    """The profile names an importer the site does not have: list the ones it has."""
    found = await backend.feeds.importers()
    key = "course_importer" if importer_id == backend.profile_config.course_importer else "global_importer"
    names = ", ".join(f"{i.id} ({i.title})" for i in found) or "none"
    text = (f"The site has no Feeds importer {importer_id!r} ({key} in [profiles.{backend.profile}]). "
            f"The site's importers: {names}. Set {key} to one of them.")
    emit(args, {"error": "importer not found", "importer": importer_id, "profile_key": key,
                "site_importers": [{"importer": i.id, "title": i.title} for i in found]}, text, err=True)
    return EXIT_PROBLEM


# ---- submit -----------------------------------------------------------------------------------

async def submit(args: Any, backend: Any, profile: Any, journal: Any, confirm: Any) -> int:
    from importconsole.lms.ethosce.errors import ImportDied, UploadRefused
    from importconsole.operations.ethosce import BatchInterrupted, submit_to_importer
    from importconsole.operations.submit import prepare_submit

    importer_id = backend.importer_id(args.importer or profile.importer)
    await backend.me()
    # The course-level importer imports into the course --course names; without it each row names
    # its course (external_course_id), as the site's standalone importer reads it.
    mode = "global" if importer_id != profile.course_importer else "course"
    plan = await prepare_submit(backend, args.file, importer=mode, course_external_id=args.course, rows_name_course=True)
    for note in plan.notes:
        err(note)
    if plan.warnings:
        confirm(plan)  # raises SubmitRefused unless confirmed
    bar = RowProgress()
    try:
        outcome = await submit_to_importer(backend, plan, importer_id, journal=journal, progress=bar)
    except UploadRefused as error:
        bar.done()
        err(error)
        return EXIT_PROBLEM
    except ImportDied as error:
        bar.done()
        err(error)
        return EXIT_PROBLEM
    except BatchInterrupted as error:
        bar.done()
        err(error)
        return EXIT_INTERRUPTED if error.cancelled else EXIT_LMS
    bar.done()
    print(visible(outcome.sentence), flush=True)
    return EXIT_OK


# ---- watch ------------------------------------------------------------------------------------

class _SiteUnseen:
    """While reads of the site fail (down, network lost): why, since when, what to do, said again
    every UNSEEN_REMINDER seconds for as long as it lasts, and when it answers again (as the
    reference watch does). A refused password or role is not an outage: raised, watch ends."""

    def __init__(self, args: Any, backend: Any):
        self.args, self.backend, self.unseen, self.said_at, self.last_seen = args, backend, None, 0.0, time.time()

    async def read(self, reading: Any) -> Any:
        from importconsole.cli.operation_cmds import UNSEEN_REMINDER
        from importconsole.lms.errors import Forbidden, LmsError, Unauthorized
        from importconsole.operations.ethosce import site_unseen

        try:
            view = await reading
        except (Unauthorized, Forbidden):
            raise
        except LmsError as error:
            fresh = self.unseen is None or self.unseen.why != str(error)
            if fresh:
                self.unseen = site_unseen(self.backend, self.unseen.since if self.unseen else self.last_seen, error)
            if fresh or time.monotonic() - self.said_at >= UNSEEN_REMINDER:
                self.said_at = time.monotonic()
                emit(self.args, {"event": "lms_unseen", **self.unseen.to_json()}, self.unseen.sentence(), err=True)
            return None
        if self.unseen is not None:
            self.unseen = None
            emit(self.args, {"event": "lms_seen"}, f"The site at {self.backend.session.host} answers again.", err=True)
        self.last_seen = time.time()
        return view


async def watch(args: Any, backend: Any, profile: Any, journal: Any) -> int:
    from importconsole.operations.ethosce import HungWatch, last_own_upload, own_file, read_file_rows, read_view

    importer_id = importer_of(args, backend) or profile.course_importer
    own = last_own_upload(journal, backend.base_url, importer_id)
    path = own_file(own)
    file = await asyncio.to_thread(read_file_rows, path) if path else None
    hung_watch = HungWatch(args.hung_after or profile.hung_after)
    poll = args.poll_interval or profile.poll_interval
    last_text, last_at, site = "", 0.0, _SiteUnseen(args, backend)
    while True:
        seen = await site.read(read_view(backend, importer_id, own, file))
        if seen is None:  # not seen: nothing is known of the import; keep trying
            await asyncio.sleep(poll)
            continue
        view = hung_watch.observe(seen, batch_died=own is not None and own.batch_outcome == "died")
        text = view.describe()
        if view.status.state == FeedsState.IDLE and not view.settled:  # idle only once the stored rows stay put
            if view.storing and text != last_text:
                emit(args, {"event": "importer", "importer": importer_id, "state": "importing", "percent": 0,
                            "stalled_for": 0.0, "summary": text}, text)
                last_text, last_at = text, time.monotonic()
            await asyncio.sleep(poll)
            continue
        if text != last_text and (view.hung or view.status.state == FeedsState.IDLE or time.monotonic() - last_at >= args.every
                                  or text.split(",")[0] != last_text.split(",")[0]):
            emit(args, {"event": "importer", "importer": importer_id, "state": "hung" if view.hung else view.status.state,
                        "percent": view.status.percent, "stalled_for": round(view.stalled_for, 1),
                        "summary": text}, text)
            last_text, last_at = text, time.monotonic()
        if view.status.state == FeedsState.IDLE:
            return EXIT_OK
        if view.hung:
            hint = f" --file {path}" if path else " --file FILE"
            emit(args, {"event": "hung", "importer": importer_id, "next": f"importconsole diagnose {importer_id}{hint}"},
                 f"It is hung: locked at {view.status.percent} % and no row stored for {view.stalled_for:.0f}s. "
                 f"Next: importconsole diagnose {importer_id}{hint}, then importconsole recover {importer_id}{hint}")
            return EXIT_PROBLEM
        await asyncio.sleep(poll)


# ---- diagnose, unlock, reimport, recover ------------------------------------------------------

async def _plan(args: Any, backend: Any, journal: Any) -> tuple[str, Any]:
    """(importer, its plan); the plan is None once a --file that is no readable import file was said."""
    from importconsole.operations.ethosce import plan_importer

    importer_id = importer_of(args, backend)
    try:
        return importer_id, await plan_importer(backend, importer_id, file=args.file, journal=journal)
    except ImportFileError as error:
        emit(args, {"importer": importer_id, "error": str(error)}, str(error), err=True)
        return importer_id, None


async def diagnose(args: Any, backend: Any, journal: Any) -> int:
    importer_id, plan = await _plan(args, backend, journal)
    if plan is None:
        return EXIT_USAGE
    lines = [line for line in plan.describe() if line.startswith(("Importer", "  "))]  # what it found, not the steps
    d = plan.diagnosis
    if d is not None and plan.status.locked:
        lines.append(f"Fix: `importconsole recover {importer_id} --file {plan.file.path}` unlocks it and imports rows "
                     f"not stored ({len(plan.missing)}), sanitized.")
    elif d is not None:
        lines.append(f"The importer is not locked; the site did not store {len(plan.missing)} rows. "
                     f"`importconsole reimport {importer_id} --file {plan.file.path}` imports them, sanitized.")
    data = {"importer": importer_id, "locked": plan.status.locked, "percent": plan.status.percent,
            "rows": plan.file.count, "stored": plan.stored_since, "missing": list(plan.missing),
            "diagnosis": d.to_json() if d else None, "cause": plan.cause.cause if plan.cause else None,
            "cause_sentence": plan.cause.sentence(plan.file.path.name) if plan.cause else None}
    emit(args, data, "\n".join(lines))
    return EXIT_OK if d is None or d.known or (plan.cause is not None and plan.cause.cause != "unknown") else EXIT_PROBLEM


async def recover(args: Any, backend: Any, journal: Any, confirm: Any) -> int:
    from importconsole.operations.ethosce import recover_importer

    importer_id, plan = await _plan(args, backend, journal)
    if plan is None:
        return EXIT_USAGE
    mode = args.mode
    if mode == "unlock" and not plan.needs_unlock:
        emit(args, {"importer": importer_id, "outcome": "not locked"}, f"Importer {importer_id} is not locked: nothing to unlock.")
        return EXIT_PROBLEM
    if not args.json:
        print(visible_lines("\n".join(plan.describe())))
    if mode != "unlock" and not plan.missing and not plan.needs_unlock:
        return EXIT_OK
    if mode in ("unlock", "recover"):  # the reference LMS's rule: only a hung import is unlocked
        from importconsole.operations.ethosce import not_hung_yet

        profile = backend.profile_config
        refused = await not_hung_yet(backend, plan, journal=journal, poll_interval=profile.poll_interval,
                                     hung_after=args.hung_after if args.hung_after is not None else profile.hung_after,
                                     say=None if args.json else (lambda text: print(visible_lines(text), flush=True)))
        if refused:
            emit(args, {"importer": importer_id, "refused": refused}, refused)
            return EXIT_PROBLEM
    question = {"unlock": f"Unlock {importer_id}?", "reimport": f"Re-import the {len(plan.missing)} rows not stored?",
                "recover": f"Unlock {importer_id} and re-import the {len(plan.missing)} rows not stored?"
                if plan.needs_unlock else f"Re-import the {len(plan.missing)} rows not stored?"}[mode]
    if not confirm(args, question):
        emit(args, {"importer": importer_id, "outcome": "not confirmed"}, "Nothing was changed.")
        return EXIT_PROBLEM
    say = None if args.json else (lambda text: print(visible_lines(text), flush=True))
    bar = RowProgress("Re-importing")
    from importconsole.lms.ethosce.errors import ImportDied, UploadRefused
    from importconsole.operations.ethosce import BatchInterrupted

    try:
        result = await recover_importer(backend, plan, journal=journal, unlock=mode in ("unlock", "recover"),
                                        reimport=mode in ("reimport", "recover"), say=say, progress=bar)
    except (UploadRefused, ImportDied, BatchInterrupted) as error:
        bar.done()
        emit(args, {"importer": importer_id, "error": str(error)}, str(error), err=True)
        return EXIT_LMS if isinstance(error, BatchInterrupted) else EXIT_PROBLEM
    if result.reimported is not None:
        bar.done()
    emit(args, {"importer": importer_id, "unlocked": result.unlocked, "steps": result.steps},
         "Done." if result.steps else "Nothing was needed.")
    return EXIT_OK
