"""`watch`, `diagnose`, `unlock`, `reimport`, `recover`, `credit-fix`: thin wrappers over
importconsole.operations (the TUI calls the same functions).

Exit codes (cli/common.py): 0 done, 1 the job found a problem (hung, refused, not proposed),
2 usage, 3 the LMS could not be reached or refused us.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from importconsole.cli.common import EXIT_INTERRUPTED, EXIT_LMS, EXIT_OK, EXIT_PROBLEM, EXIT_USAGE, Stop, ask, confirm, emit, err
from importconsole.importfile.safe_text import json_dumps, visible  # JSON: bidi and control characters as \u escapes
from importconsole.importfile.wording import plural
from importconsole.lms.models import ACTIVE_STATES, ImportState


def register(subparsers) -> None:
    from importconsole.cli.lms_cmds import _common  # --profile/--config before or after the command, like every command

    p = subparsers.add_parser("watch", help="follow imports live until the import ends or hangs")
    p.add_argument("import_id", nargs="?", type=_import_ref, metavar="IMPORT_ID",
                   help="one import (default: every active import); on an EthosCE profile the importer id")
    p.add_argument("--json", action="store_true", help="JSON lines instead of text")
    p.add_argument("--hung-after", type=float, metavar="SECONDS", help="no progress for this long while locked = hung (default: the profile's hung_after)")
    p.add_argument("--poll-interval", type=float, metavar="SECONDS", help="polling/tick interval (default: the profile's poll_interval)")
    p.add_argument("--every", type=float, default=1.0, metavar="SECONDS", help="at most one progress line per import this often (default 1)")
    _common(p)
    p.set_defaults(func=cmd_watch)

    p = subparsers.add_parser("diagnose", help="name the row a hung import stopped at and why")
    p.add_argument("import_id", type=_import_ref, metavar="IMPORT_ID", help="the import (EthosCE: the importer id)")
    p.add_argument("--file", metavar="FILE", help="EthosCE: the file that was uploaded (when this console did not upload it)")
    p.add_argument("--json", action="store_true")
    _common(p)
    p.set_defaults(func=cmd_diagnose)

    for name, helptext in (("unlock", "compare-and-unlock a hung import (after showing the plan)"),
                           ("reimport", "re-import the rows an unlocked import never reached, sanitized"),
                           ("recover", "unlock a hung import and re-import the rest, after one confirmation")):
        p = subparsers.add_parser(name, help=helptext)
        p.add_argument("import_id", type=_import_ref, metavar="IMPORT_ID", help="the import (EthosCE: the importer id)")
        p.add_argument("--file", metavar="FILE", help="EthosCE: the file that was uploaded (when this console did not upload it)")
        p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
        p.add_argument("--json", action="store_true", help="print the plan and the outcome as JSON")
        if name != "reimport":
            p.add_argument("--hung-after", type=float, metavar="SECONDS",
                           help="unlock only an import that has not moved for this long (default: the profile's hung_after)")
        _common(p)
        p.set_defaults(func=cmd_recover, mode=name)

    p = subparsers.add_parser("credit-fix", help="propose completion-only re-imports for credit that is never reported")
    p.add_argument("--course", metavar="EXTERNAL_ID", help="only this course")
    p.add_argument("--import", dest="import_id", type=int, metavar="ID", help="only credit imported by this import")
    p.add_argument("--file", metavar="FILE", help="look at the rows of this import file instead of the LMS's records")
    p.add_argument("--out", metavar="DIR", default=".", help="where to write the proposal files (default: here)")
    p.add_argument("--date", metavar="WHEN", help="date_completed of every completion-only row of this batch: today, "
                   "file (each file row's own date; with --file) or YYYY-MM-DD; asked when not given")
    p.add_argument("--submit", action="store_true", help="submit the proposals through the course-level importer")
    p.add_argument("--yes", action="store_true", help="submit without asking")
    p.add_argument("--json", action="store_true")
    _common(p)
    p.set_defaults(func=cmd_credit_fix)


def _import_ref(text: str) -> int | str:
    """An import id (the console's own API), or an importer id (EthosCE: `course_record_import`)."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    if not text or not all(ch.isalnum() or ch == "_" for ch in text):
        raise argparse.ArgumentTypeError(f"{text!r} is neither an import id (a number) nor an importer id (a-z, 0-9, _)")
    return text


def _ethosce(session) -> bool:
    return session.profile.is_ethosce


def _numbered(args, session) -> None:
    """The console's own API names an import by number: a word there is a usage error, said."""
    if not _ethosce(session) and isinstance(args.import_id, str):
        raise _UsageError(f"{args.import_id!r} is an importer id; on profile {session.profile.name} imports are "
                          "numbered (importconsole imports lists them).")


class _UsageError(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# Connecting (profile from the config, token from env/keyring)


class _Session:
    """The profile, its connected backend (lms.connect, the one place that builds it) and the journal."""

    def __init__(self, args):
        from importconsole.cli.lms_cmds import _client, _profile, _token  # Stop: the sentence and exit code
        from importconsole.journal import Journal

        self.profile = _profile(args)
        self.client = _client(self.profile, _token(self.profile))
        self.journal = Journal()

    def journal_fields(self) -> dict[str, Any]:
        return {"profile": self.profile.name, "base_url": self.client.base_url, "lms_user": self.profile.username}


def _run(args, body) -> int:
    """Open the session, run `body(session)`, turn every known failure into one sentence.
    Exit codes as everywhere: config 1 (2 when there is none), LMS unreachable or refusing 3."""
    from importconsole.lms.connect import ConnectFailed, failure_sentence
    from importconsole.journal import JournalWriteFailed
    from importconsole.lms.errors import LmsError, NotFound
    from importconsole.lms.port import CapabilityMissing
    from importconsole.operations.recover import RecoveryRefused

    try:
        session = _Session(args)
    except Stop as stop:
        err(f"importconsole: {stop}")
        return stop.code

    async def main():
        async with session.client:
            return await body(session)

    try:
        _numbered(args, session)
        return asyncio.run(main())
    except _UsageError as error:
        err(f"importconsole: {error}")
        return EXIT_USAGE
    except JournalWriteFailed as error:
        emit(args, {"error": str(error)}, f"Stopped: {error}. Check `importconsole journal` and the import on the LMS "
                                           "before running the command again.", err=True)
        return EXIT_PROBLEM
    except RecoveryRefused as error:
        emit(args, {"refused": str(error)}, f"Refused: {error}")
        return EXIT_PROBLEM
    except NotFound as error:
        if args.import_id is None:
            code, text = failure_sentence(error)
        else:  # the LMS answered: the id the admin gave names no import (exit 3 is for an LMS not reached)
            code, text = EXIT_USAGE, f"{error} See the imports and their ids with `importconsole imports`."
        emit(args, {"error": text}, f"importconsole: {text}", err=True)
        return code
    except CapabilityMissing as error:  # this LMS cannot do it: said, not a network failure
        emit(args, {"refused": str(error), "capability": error.capability}, f"importconsole: {error}", err=True)
        return EXIT_PROBLEM
    except (ConnectFailed, LmsError) as error:
        code, sentence = failure_sentence(error)
        emit(args, {"error": sentence}, f"importconsole: {sentence}", err=True)
        return code


def _ranges(rows: list[int]) -> str:
    """[3, 4, 5, 9] -> "3-5, 9"."""
    out, start = [], None
    for i, row in enumerate(rows):
        if start is None:
            start = row
        if i + 1 == len(rows) or rows[i + 1] != row + 1:
            out.append(str(start) if start == row else f"{start}-{row}")
            start = None
    return ", ".join(out)


def _confirm(args, question: str) -> bool:
    return confirm(question, yes=args.yes)


# ---------------------------------------------------------------------------------------------
# watch


UNSEEN_REMINDER = 30.0  # seconds between "the LMS is still not seen" lines, for as long as it lasts


def cmd_watch(args) -> int:
    def body(session):
        if _ethosce(session):
            from importconsole.cli import ethosce_cmds

            return ethosce_cmds.watch(args, session.client, session.profile, session.journal)
        return _watch(args, session)

    args.watched = set()
    try:
        return _run(args, body)
    except KeyboardInterrupt:
        # Watching stops; the imports do not: say so, and how to pick them up again.
        ids = sorted(args.watched)
        again = " or ".join(f"`importconsole watch {i}`" for i in ids[:3]) or "`importconsole watch`"
        which = (f"import{'s' if len(ids) > 1 else ''} {', '.join(map(str, ids))} go{'es' if len(ids) == 1 else ''}"
                 if ids else "any import goes")
        err(f"Stopped watching. Nothing was changed: {which} on on the LMS. Follow again with {again}, "
            "or see them all with `importconsole imports`.")
        return EXIT_INTERRUPTED


async def _watch(args, session) -> int:
    """Follow until settled (operations.watch.UntilSettled): exit 0 when every import followed completed."""
    from importconsole.operations.hung import diagnose_import
    from importconsole.operations.watch import ImportWatcher, UntilSettled

    client = session.client
    watcher = ImportWatcher(
        client,
        hung_after=args.hung_after or session.profile.hung_after,
        poll_interval=args.poll_interval or session.profile.poll_interval,
        diagnose=lambda item: diagnose_import(client, item.id, journal=session.journal),
    )
    queue: asyncio.Queue = asyncio.Queue()
    watcher.on_change(queue.put_nowait)
    await watcher.poll_once()
    if args.import_id is not None:
        await watcher.follow(args.import_id)
    runner = asyncio.create_task(watcher.run())
    until = UntilSettled(watcher, args.import_id)
    lines = _WatchLines(args, watcher)
    if until.idle:
        emit(args, {"event": "idle", "message": "no import is queued or running"}, "No import is queued or running.")
        watcher.stop()
        await runner
        return EXIT_OK
    for view in until.targets():
        lines.show(view, force=True)
    args.watched = {v.import_id for v in until.targets()}
    try:
        while watcher.fatal is None:
            args.watched = until.still_going()
            if until.settled():
                break
            lines.say_unseen()
            try:
                update = await asyncio.wait_for(queue.get(), timeout=watcher.poll_interval)
            except TimeoutError:
                continue
            lines.tell(update, until)
    finally:
        watcher.stop()
        await runner
    if watcher.fatal is not None:
        raise watcher.fatal  # the token was refused: say so and stop (exit 3), never loop in silence
    final = until.targets()
    for view in final:
        lines.show(view, force=True)
    return EXIT_OK if all(v.state == ImportState.COMPLETED for v in final) else EXIT_PROBLEM


class _WatchLines:
    """What `watch` prints: at most one line per import every --every seconds (or when its state
    changes), never the same line twice; while the LMS is not seen, why, repeated every UNSEEN_REMINDER."""

    def __init__(self, args, watcher):
        self.args, self.watcher = args, watcher
        self.last_line: dict[int, tuple[float, str]] = {}
        self.printed: dict[int, str] = {}
        self.unseen_said = 0.0  # monotonic time of the last "not seen" line

    def say_unseen(self, force: bool = False) -> None:
        """While the LMS is not seen: why, since when, what to do; repeated while it lasts."""
        unseen = self.watcher.unseen
        if unseen is None or (not force and time.monotonic() - self.unseen_said < UNSEEN_REMINDER):
            return
        self.unseen_said = time.monotonic()
        emit(self.args, {"event": "lms_unseen", **unseen.to_json()}, unseen.sentence(), err=not self.args.json)

    def show(self, view, force: bool = False) -> None:
        now = time.monotonic()
        seen = self.last_line.get(view.import_id)
        key = f"{view.shown_state}:{view.diagnosis is not None}"
        if not force and seen and seen[1] == key and now - seen[0] < self.args.every:
            return
        data = {"event": "import", **view.to_json()}
        line = json_dumps(data) if self.args.json else view.describe()
        if self.printed.get(view.import_id) == line:
            return  # nothing new to say (e.g. the final line, already printed when it arrived)
        self.last_line[view.import_id] = (now, key)
        self.printed[view.import_id] = line
        emit(self.args, data, view.describe())

    def tell(self, update, until) -> None:
        """One WatchUpdate: the LMS seen or not, the event stream's state, or an import followed."""
        args, watcher = self.args, self.watcher
        if update.kind == "lms":
            if update.unseen is not None:
                self.say_unseen(force=True)
            else:
                emit(args, {"event": "lms_seen"}, "The LMS answers again.", err=not args.json)
        elif update.kind == "connection":
            emit(args, {"event": "connection", "connection": update.connection},
                 "event stream live" if update.connection == "live" else
                 f"event stream {update.connection}: {watcher.last_error or ''}".rstrip(": "))
        elif update.kind == "import" and update.view is not None and until.concerns(update.view):
            finished = update.view.finished or (update.view.hung and update.view.diagnosis is not None)
            self.show(update.view, force=finished)


# ---------------------------------------------------------------------------------------------
# diagnose


def cmd_diagnose(args) -> int:
    async def body(session):
        from importconsole.operations.hung import diagnose_import

        if _ethosce(session):
            from importconsole.cli import ethosce_cmds

            return await ethosce_cmds.diagnose(args, session.client, session.journal)

        item = await session.client.get_import(args.import_id)
        head = f"Import {item.id} ({item.file_name}): {item.state.replace('_', ' ')}, {item.rows_processed}/{item.rows_total} rows processed"
        if item.state in (ImportState.COMPLETED, ImportState.COMPLETED_WITH_ERRORS, ImportState.FAILED):
            # It ended by itself: it did not hang, there is no stuck row to name.
            text = f"{head}. It ended by itself, so it did not hang: nothing to diagnose."
            if item.error:
                text += f"\nThe LMS said: {item.error}"
            emit(args, {"import_id": item.id, "state": item.state, "cause": None, "summary": text}, text)
            return EXIT_PROBLEM
        diagnosis = await diagnose_import(session.client, args.import_id, journal=session.journal)
        verdict = await _stall(session, item) if item.state in ACTIVE_STATES else None
        # Only an unlocked import is known to have stopped; a running one may still move.
        where = "Stopped at" if item.state == ImportState.UNLOCKED else "Next row to process:"
        lines = [head + (f". {verdict.sentence}" if verdict else ""),
                 f"{where} row {diagnosis.row}" + (f" (line {diagnosis.line})" if diagnosis.line else "") +
                 f": {diagnosis.summary()}",
                 f"File read from: {diagnosis.file_source}"]
        if diagnosis.known and item.state == ImportState.UNLOCKED:
            lines.append(f"Fix: `importconsole reimport {item.id}` re-imports rows {diagnosis.row}-{item.rows_total} sanitized.")
        elif diagnosis.known and verdict is not None and not verdict.hung:
            lines.append(f"Once it counts as hung, `importconsole recover {item.id}` unlocks it and re-imports rows "
                         f"{diagnosis.row}-{item.rows_total} sanitized (recover refuses before that).")
        elif diagnosis.known:
            lines.append(f"Fix: `importconsole recover {item.id}` unlocks it and re-imports rows {diagnosis.row}-{item.rows_total} sanitized.")
        data = diagnosis.to_json()
        if verdict is not None:
            data.update(moved_ago=verdict.moved_ago, hung=verdict.hung, stall=verdict.sentence)
        emit(args, data, "\n".join(lines))
        return EXIT_OK if diagnosis.known else EXIT_PROBLEM

    return _run(args, body)


async def _stall(session, item):
    """How long the import has not moved by the LMS's clock, and the watcher's hung rule on it."""
    from importconsole.operations.hung import stall_verdict

    page = await session.client.list_imports(state=item.state)
    listed = next((i for i in page.items if i.id == item.id), item)
    lock = await session.client.lock(item.importer)
    return stall_verdict(listed, server_time=page.server_time, lock_holder=lock.import_id if lock.locked else None,
                         hung_after=session.profile.hung_after)


# ---------------------------------------------------------------------------------------------
# unlock / reimport / recover


async def _not_hung_yet(session, args) -> str | None:
    """Unlocking ends an import: only one that is hung by the watcher's rule (the console's TUI
    waits for the same verdict), else a healthy import on a slow row would be cut short."""
    from importconsole.operations.hung import stall_verdict

    item = await session.client.get_import(args.import_id)
    if item.state != ImportState.RUNNING:
        return None
    hung_after = args.hung_after if args.hung_after is not None else session.profile.hung_after
    page = await session.client.list_imports(state=item.state)
    listed = next((i for i in page.items if i.id == item.id), item)
    lock = await session.client.lock(item.importer)
    verdict = stall_verdict(listed, server_time=page.server_time, lock_holder=lock.import_id if lock.locked else None,
                            hung_after=hung_after)
    if verdict.hung:
        return None
    return (f"Import {item.id} is not hung, so it was not unlocked. {verdict.sentence} "
            f"Follow it with `importconsole watch {item.id}`; if you know it is dead, "
            f"`--hung-after SECONDS` sets a shorter wait.")


def cmd_recover(args) -> int:
    async def body(session):
        from importconsole.operations.recover import execute_recovery, plan_recovery

        if _ethosce(session):
            from importconsole.cli import ethosce_cmds

            return await ethosce_cmds.recover(args, session.client, session.journal, _confirm)

        mode = args.mode
        plan = await plan_recovery(session.client, args.import_id, journal=session.journal, unlock_only=mode == "unlock")
        if mode in ("unlock", "recover") and not plan.needs_unlock:
            if mode == "unlock":
                emit(args, {"plan": plan.to_json(), "outcome": "already unlocked"},
                      f"Import {plan.import_id} is already unlocked. Re-import the rest with `importconsole reimport {plan.import_id}`.")
                return EXIT_PROBLEM
        if mode in ("unlock", "recover") and plan.needs_unlock:
            refused = await _not_hung_yet(session, args)
            if refused:
                emit(args, {"refused": refused, "plan": plan.to_json()}, refused)
                return EXIT_PROBLEM
        if mode == "reimport" and plan.needs_unlock:
            raise_text = (f"Import {plan.import_id} still holds the {plan.importer} importer's lock: unlock it first "
                          f"(`importconsole recover {plan.import_id}` does both).")
            emit(args, {"refused": raise_text, "plan": plan.to_json()}, raise_text)
            return EXIT_PROBLEM
        if not args.json:
            print(visible("\n".join(plan.describe())).replace("<U+000A>", "\n"))
        rows = f"rows {plan.first_row_left}-{plan.rows_total} ({plural(plan.remainder_rows, 'row')}" + (
            f"; the LMS will refuse {len(plan.already_complete)} of them)" if plan.already_complete else ")")
        question = {
            "unlock": f"Unlock import {plan.import_id} ({plan.rows_committed} of {plan.rows_total} rows committed; {rows} will not be imported until you re-import them)?",
            "reimport": f"Re-import {rows} of import {plan.import_id} as a new import?",
            "recover": (f"Unlock import {plan.import_id} and re-import {rows}?" if plan.needs_unlock
                        else f"Import {plan.import_id} is already unlocked. Re-import {rows}?"),
        }[mode]
        if plan.already_reimported is not None:
            question = ""  # nothing will be sent: no question to ask
        if question and not _confirm(args, question):
            emit(args, {"plan": plan.to_json(), "outcome": "not confirmed"}, "Nothing was changed.")
            return EXIT_PROBLEM
        say = None if args.json else (lambda text: print(visible(text)))
        result = await execute_recovery(session.client, plan, journal=session.journal,
                                        unlock=mode in ("unlock", "recover"), reimport=mode in ("reimport", "recover"),
                                        say=say, journal_fields=session.journal_fields())
        if args.json:
            print(json_dumps({"plan": plan.to_json(), "outcome": result.to_json()}))
        elif mode == "unlock" and not plan.reimport_ready:
            print(f"Next: fix rows {plan.first_row_left}-{plan.rows_total} in a copy of the file by hand and submit them.")
        elif mode == "unlock":
            print(f"Next: `importconsole reimport {plan.import_id}` re-imports {rows}.")
        elif result.reimport is not None:
            print(f"Follow it with `importconsole watch {result.reimport.id}`.")
        return EXIT_OK

    return _run(args, body)


# ---------------------------------------------------------------------------------------------
# credit-fix


def _completion_date(args) -> str | None:
    """The batch's completion date: --date, else asked once on a terminal; None = not chosen."""
    if args.date:
        return args.date
    if args.json:
        return None
    return ask("date_completed for these completion-only rows: today, file (the file's own dates) or YYYY-MM-DD?") or None


def _date_problem(choice: str, args) -> str | None:
    from importconsole.operations.credit_fix import DATE_FROM_FILE, date_proposals

    if choice == DATE_FROM_FILE and not args.file:
        return "--date file needs --file: the LMS's credit records carry no completion date; give --date today or a date."
    try:
        date_proposals([], choice)
    except ValueError as error:
        return f"--date: {error}"
    return None


def cmd_credit_fix(args) -> int:
    if args.file:
        from importconsole.importfile.reader import ImportFileError, check_regular_file

        try:  # a FIFO, a folder or a missing file, said as validate and fix say it, before the LMS is asked
            check_regular_file(args.file)
        except ImportFileError as error:
            err(f"importconsole: {args.file}: {error}")
            return EXIT_USAGE
    if args.date and (problem := _date_problem(args.date, args)):
        err(f"importconsole: {problem}")
        return EXIT_USAGE

    async def body(session):
        from importconsole.operations.credit_fix import write_proposal_file

        proposals = await _dated_proposals(args, session)
        if isinstance(proposals, int):
            return proposals  # refused: said
        try:
            written = write_proposal_file(proposals, args.out)
        except OSError as error:
            text = (f"cannot write the proposal files to {args.out}: {error.strerror or error}. "
                    "Give a folder you can write to with --out DIR. Nothing was submitted.")
            emit(args, {"error": text}, f"importconsole: {text}", err=True)
            return EXIT_USAGE
        if not args.json:
            _print_proposals(args, proposals, written)
        outcome: dict[str, Any] = {"proposals": [p.to_json() for p in proposals],
                                   "files": {c: str(p) for c, p in written.import_files.items()},
                                   "report": str(written.report) if written.report else None, "submitted": []}
        if args.submit and any(p.proposed for p in proposals):
            stopped = await _submit_proposals(args, session, proposals, written, outcome)
            if stopped is not None:
                return stopped
        if args.json:
            print(json_dumps(outcome))
        if outcome["submitted"] is None:
            return EXIT_PROBLEM  # not confirmed: as unlock and recover say it (exit 1)
        return EXIT_OK if all(p.proposed for p in proposals) else EXIT_PROBLEM

    return _run(args, body)


async def _dated_proposals(args, session):
    """The proposals, dated by the batch's one completion date; an exit code when refused (said)."""
    from importconsole.importfile.reader import ImportFileError
    from importconsole.lms.errors import NotFound
    from importconsole.operations.credit_fix import date_proposals, propose_credit_fixes

    try:
        proposals = await propose_credit_fixes(session.client, course_external_id=args.course,
                                               import_id=args.import_id, file=args.file)
    except (ImportFileError, NotFound) as error:  # a file or filter that names nothing to look at
        emit(args, {"error": str(error)}, f"importconsole: {error}", err=True)
        return EXIT_USAGE
    if not any(p.proposed for p in proposals):
        return proposals
    # Asked once for the batch, never silently today (issue 10).
    choice = _completion_date(args)
    problem = _date_problem(choice, args) if choice else (
        "Which date_completed should these completion-only rows carry? Give --date today, --date file "
        "(the file's own dates, with --file) or --date YYYY-MM-DD. Nothing was written.")
    if problem:
        emit(args, {"error": problem}, f"importconsole: {problem}", err=True)
        return EXIT_USAGE
    return date_proposals(proposals, choice)


def _print_proposals(args, proposals, written) -> None:
    if not proposals:
        print("Nothing to fix: no imported credit that would stay unreported or sit on an incomplete enrollment.")
    for p in proposals:
        print(visible(("+ " if p.proposed else "- ") + p.describe()))
    for course, path in written.import_files.items():
        print(f"Wrote {visible(str(path))} (completion-only rows for {visible(course)})")
    if written.report:
        print(f"Wrote {visible(str(written.report))} (every decision)")
    covered = sorted({r for p in proposals if p.proposed for r in p.rows})
    if args.file and covered:
        # The proposal file replaces these rows; the rest of the file still needs importing.
        print(visible(f"The completion-only rows replace rows {_ranges(covered)} of {args.file}: import the "
                      "other rows without them, or make the whole file completion-only where it is safe "
                      f"with `importconsole fix {args.file} --completion-only --out FIXED.csv`."))


async def _submit_proposals(args, session, proposals, written, outcome: dict[str, Any]) -> int | None:
    """--submit, once confirmed: one import per course. Fills outcome["submitted"] (None: not
    confirmed); an exit code when it stopped part-way (said)."""
    from importconsole.lms.errors import ImporterLocked, LmsError
    from importconsole.operations.credit_fix import CreditFixStopped, describe_dates, submit_proposals

    proposed = [p for p in proposals if p.proposed]
    courses = ", ".join(sorted(written.import_files))
    more = sum(1 for p in proposed if p.beyond_current())
    beyond = f"; {plural(more, 'learner')} of them get more credit than they hold now" if more else ""
    if not _confirm(args, f"Submit {plural(len(proposed), 'completion-only row')}, {describe_dates(proposed)}, "
                          f"through the course-level importer (one import per course: {courses}){beyond}?"):
        outcome["submitted"] = None
        if not args.json:
            print("Nothing was submitted: the proposal files are written; submit them after checking.")
        return None

    def warn(course, text):
        if not args.json:
            print(visible(f"warning ({course}): {text}"))

    shown_steps: set = set()

    def step(p):
        # One line per course and phase, not one per poll (a log, not a spinner).
        if not args.json and (p.course, p.phase) not in shown_steps:
            shown_steps.add((p.course, p.phase))
            print(p.sentence, flush=True)

    try:
        submitted = await submit_proposals(session.client, written, journal=session.journal,
                                           journal_fields=session.journal_fields(), on_warning=warn, on_progress=step)
    except CreditFixStopped as error:
        outcome["submitted"] = [{"course_external_id": c, "import_id": i.id, "state": i.state}
                                for c, i in error.submitted.items()]
        outcome["not_submitted"] = error.not_submitted
        emit(args, {**outcome, "refused": str(error)}, f"Stopped: {visible(str(error))}", err=True)
        unreached = isinstance(error.cause, LmsError) and not isinstance(error.cause, ImporterLocked)
        return EXIT_LMS if unreached else EXIT_PROBLEM
    for course, item in submitted.items():
        outcome["submitted"].append({"course_external_id": course, "import_id": item.id, "state": item.state})
        if not args.json:
            print(f"Submitted {visible(course)}: import {item.id} ended {item.state}.")
    return None
