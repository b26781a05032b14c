"""Connect and submit: `config validate|init`, `login`, `logout`, `submit`, `imports`, `journal`.

Exit codes (cli/common.py): 0 done, 1 refused (findings, warnings not confirmed, bad config),
2 usage or unreadable file, 3 the LMS could not be reached or refused us.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import asdict
from pathlib import Path

from importconsole.cli.common import (EXIT_INTERRUPTED, EXIT_LMS, EXIT_OK, EXIT_PROBLEM, EXIT_SETUP, EXIT_USAGE, Progress,
                                      Stop, confirm, err, visible_lines)
from importconsole.importfile.safe_text import visible


def _common(parser: argparse.ArgumentParser) -> None:
    # SUPPRESS: given after the command it wins, else the global option before it is kept.
    parser.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS, help="config file")
    parser.add_argument("--profile", metavar="NAME", default=argparse.SUPPRESS, help="LMS profile from the config file")


def register(subparsers) -> None:
    cfg = subparsers.add_parser("config", help="check or create the config file")
    cfg_sub = cfg.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    val = cfg_sub.add_parser("validate", help="list every problem in the config file")
    _common(val)
    val.set_defaults(func=cmd_config_validate)
    init = cfg_sub.add_parser("init", help="write a first config file (never over an existing one)")
    _common(init)
    init.add_argument("--kind", choices=("reference", "ethosce"), default="reference",
                      help="ethosce: an EthosCE site (Drupal Feeds importers and restws); needs --restws-username")
    init.add_argument("--base-url", required=True, help="the LMS address, https://...")
    init.add_argument("--username", required=True, help="your LMS user name (EthosCE: a site admin)")
    init.add_argument("--restws-username", help="EthosCE: the restws web-services account (starts with restws)")
    init.add_argument("--ca-bundle", help="PEM file of your LMS's certificate authority (optional)")
    init.add_argument("--importer", choices=("course", "global"), default="course")
    init.set_defaults(func=cmd_config_init)

    login = subparsers.add_parser("login", help="store the API token for a profile in the OS keyring")
    _common(login)
    login.add_argument("--no-check", action="store_true", help="store without asking the LMS who the token belongs to")
    login.set_defaults(func=cmd_login)
    logout = subparsers.add_parser("logout", help="remove the profile's API token from the OS keyring")
    _common(logout)
    logout.set_defaults(func=cmd_logout)

    submit = subparsers.add_parser("submit", help="validate and submit an import file (exactly once)")
    _common(submit)
    submit.add_argument("file", type=Path)
    submit.add_argument("--importer", choices=("course", "global"), help="default: the profile's importer (course)")
    submit.add_argument("--course", metavar="EXTERNAL_ID", help="the course (course-level importer)")
    submit.add_argument("--yes", action="store_true", help="submit despite warnings (errors still refuse)")
    submit.add_argument("--watch", action="store_true", help="follow the import until it ends")
    submit.set_defaults(func=cmd_submit)

    imports = subparsers.add_parser("imports", help="list imports on the LMS")
    _common(imports)
    imports.add_argument("--state", choices=("queued", "running", "completed", "completed_with_errors", "failed", "unlocked"))
    imports.add_argument("--json", action="store_true")
    imports.add_argument("--limit", type=int, default=50)
    imports.set_defaults(func=cmd_imports)

    journal = subparsers.add_parser("journal", help="show what this console did to the LMS")
    _common(journal)
    journal.add_argument("--reconcile", action="store_true", help="settle entries left 'sending' by asking the LMS")
    journal.add_argument("--json", action="store_true")
    journal.add_argument("--limit", type=int, default=50)
    journal.set_defaults(func=cmd_journal)


# ---- shared plumbing ------------------------------------------------------------------------

def _profile(args):
    from importconsole.config import ConfigError, ConfigMissing, load_config

    try:
        config = load_config(getattr(args, "config", None))
        return config.profile(getattr(args, "profile", None))
    except ConfigMissing as exc:
        raise Stop(EXIT_USAGE, f"{exc}") from None
    except ConfigError as exc:
        raise Stop(EXIT_PROBLEM, f"The config has problems (importconsole config validate lists them):\n{exc}") from None


def _token(profile, *, prompt: bool = True):
    """The profile's credentials (API token, or an EthosCE profile's two passwords)."""
    from importconsole.lms.connect import ConnectFailed, find_credentials

    try:
        return find_credentials(profile, prompt=prompt)
    except ConnectFailed as exc:
        raise Stop(exc.exit_code, str(exc)) from None


ANNOUNCE_WAITS_FROM = 2.0  # seconds: a longer silent wait would look like a hang


def _announce_wait(seconds: float, refused: bool) -> None:
    if seconds >= ANNOUNCE_WAITS_FROM:
        why = "The connection to the LMS was refused (the site may be down)" if refused else "The LMS is busy or did not answer"
        err(f"{why}; trying again in {seconds:.0f} s (nothing is sent twice).")


def retry_policy():
    """The CLI's retry policy (tests replace this to keep retry paths fast)."""
    from importconsole.lms.client import RetryPolicy

    return RetryPolicy(announce=_announce_wait)


def _client(profile, credentials):
    """The profile's backend, not yet connected (lms.connect is the one place that builds it)."""
    from importconsole.lms.connect import ConnectFailed, open_backend

    try:
        return open_backend(profile, credentials, retry=retry_policy())
    except ConnectFailed as exc:
        raise Stop(exc.exit_code, str(exc)) from None


async def _connect(profile, *, check: bool = True):
    """The profile's backend, connected (ConnectFailed is turned into a sentence and exit 3 by _run)."""
    from importconsole.lms.connect import connect

    return await connect(profile, _token(profile), retry=retry_policy(), check=check)


def _run(coro_factory) -> int:
    from importconsole.journal import JournalWriteFailed
    from importconsole.lms.connect import ConnectFailed, failure_sentence
    from importconsole.lms.errors import LmsError
    from importconsole.lms.port import CapabilityMissing
    from importconsole.operations.submit import SubmitRefused

    try:
        return asyncio.run(coro_factory())
    except Stop as stop:
        err(str(stop))
        return stop.code
    except SubmitRefused as exc:
        err(str(exc))
        return EXIT_USAGE if exc.unreadable else EXIT_PROBLEM
    except JournalWriteFailed as exc:  # e.g. settling an earlier entry, before anything is sent
        err(f"Stopped: {exc}. Free space there, then run the command again.")
        return EXIT_PROBLEM
    except CapabilityMissing as exc:  # this LMS cannot do it: a refusal, not a network failure
        err(str(exc))
        return EXIT_PROBLEM
    except (ConnectFailed, LmsError) as exc:
        code, sentence = failure_sentence(exc)
        err(sentence)
        return code


def _wrap(func):
    def inner(args) -> int:
        try:
            return func(args)
        except Stop as stop:
            err(str(stop))
            return stop.code

    return inner


def _journal():
    from importconsole.journal import Journal

    return Journal()


# ---- config ---------------------------------------------------------------------------------

def cmd_config_validate(args) -> int:
    from importconsole.config import config_path, validate_config

    path = config_path(getattr(args, "config", None))
    problems = validate_config(path)
    if not problems:
        print(visible_lines(f"{path}: OK"))
        return EXIT_OK
    for problem in problems:
        print(visible_lines(problem))  # a problem quotes the file: its path, keys and values
    err(f"{len(problems)} problem(s). See config.example.toml for every key, with a comment.")
    return EXIT_PROBLEM


def cmd_config_init(args) -> int:
    from importconsole.config import ConfigError, init_config

    name = getattr(args, "profile", None) or "default"
    try:
        path = init_config(getattr(args, "config", None), profile=name, base_url=args.base_url, username=args.username,
                           ca_bundle=args.ca_bundle, importer=args.importer, kind=args.kind,
                           restws_username=args.restws_username)
    except ConfigError as exc:
        err(str(exc))
        return EXIT_USAGE
    print(f"Wrote {path} with profile {name!r}. Next: importconsole login --profile {name}")
    return EXIT_OK


# ---- login / logout -------------------------------------------------------------------------

@_wrap
def cmd_login(args) -> int:
    import getpass

    from importconsole import crash
    from importconsole.secrets import (KEYRING_TIMEOUT, TokenError, _find_backend, _no_backend_sentence,
                                       no_backend_passwords_sentence, store_token)

    profile = _profile(args)
    try:
        backend = _find_backend(KEYRING_TIMEOUT)
    except TokenError as exc:  # a keyring that does not answer: said before a token is typed
        err(str(exc))
        return EXIT_SETUP
    if backend is None:  # this host, not the LMS (exit 3 is the LMS's)
        err(no_backend_passwords_sentence() if profile.is_ethosce else _no_backend_sentence())
        return EXIT_SETUP
    if profile.is_ethosce:
        return _login_ethosce(args, profile)
    if sys.stdin.isatty():
        token = getpass.getpass(visible_lines(f"API token for {profile.username} on {profile.base_url} (not shown): "),
                                stream=sys.stderr)
    else:
        token = sys.stdin.readline()  # e.g. `pass show lms | importconsole login`
    token = token.strip()
    if not token:
        err("No token given; nothing was stored.")
        return EXIT_USAGE
    crash.register_secret(token)
    if not args.no_check:
        from importconsole.secrets import Credentials

        try:
            me = asyncio.run(_who(profile, Credentials(token=token)))
        except Exception as exc:  # a ConnectFailed sentence, or Stop
            err(f"{exc} The token was not stored.")
            return EXIT_LMS
        if me.username != profile.username:
            err(f"Note: this token belongs to {me.username}, not {profile.username} as the profile says.")
    try:
        print(store_token(profile, token))
    except TokenError as exc:
        err(str(exc))
        return EXIT_SETUP
    return EXIT_OK


async def _who(profile, credentials):
    from importconsole.lms.connect import connect

    async with await connect(profile, credentials, retry=retry_policy()) as lms:
        return await lms.me()


def _login_ethosce(args, profile) -> int:
    """Both passwords of an EthosCE profile: asked (or one per line on stdin), checked by logging
    in once (never retried: Drupal locks an account after 5 failures), then stored."""
    import getpass

    from importconsole import crash
    from importconsole.secrets import Credentials, TokenError, password_specs, store_passwords

    values = []
    for spec in password_specs(profile):
        if sys.stdin.isatty():
            value = getpass.getpass(visible_lines(f"{spec.what[0].upper()}{spec.what[1:]} {spec.whose} (not shown): "),
                                    stream=sys.stderr)
        else:
            value = sys.stdin.readline()
        value = value.strip()
        if not value:
            err(f"No {spec.what} given; nothing was stored.")
            return EXIT_USAGE
        crash.register_secret(value)
        values.append(value)
    if not args.no_check:
        try:
            asyncio.run(_who(profile, Credentials(password=values[0], restws_password=values[1])))
        except Exception as exc:
            err(f"{exc} The passwords were not stored.")
            return EXIT_LMS
    try:
        print(store_passwords(profile, values[0], values[1]))
    except TokenError as exc:
        err(str(exc))
        return EXIT_SETUP
    return EXIT_OK


@_wrap
def cmd_logout(args) -> int:
    from importconsole.secrets import TokenError, delete_token

    profile = _profile(args)
    try:
        removed = delete_token(profile)
    except TokenError as exc:
        err(str(exc))
        return EXIT_SETUP
    what = f"Passwords of {profile.username} and {profile.restws_username}" if profile.is_ethosce else f"Token for {profile.username}"
    print(f"{what} on profile {profile.name} removed from the keyring." if removed
          else f"Nothing was stored for {profile.username} on profile {profile.name}.")
    return EXIT_OK


# ---- submit ---------------------------------------------------------------------------------

def upload_progress(label: str = "Uploading", *, quiet_end: bool = False, stream=None) -> Progress:
    """Bytes sent, as a bar on a terminal; redirected stderr gets `Uploaded N bytes` at the end
    (nothing with quiet_end: the check before the upload)."""
    return Progress(label, unit="bytes", stream=stream,
                    summary=None if quiet_end else (lambda sent, total: f"Uploaded {total} bytes"))


def confirm_warnings(args, plan) -> None:
    """The warnings, then --yes goes ahead (saying what it confirmed) or a terminal is asked;
    otherwise SubmitRefused: nothing is sent."""
    from importconsole.importfile.wording import plural
    from importconsole.operations.submit import SubmitRefused

    warnings = plural(len(plan.warnings), "warning")
    err(f"Submitting despite {warnings} (--yes):" if args.yes else "Warnings:")
    for warning in plan.warnings:
        err(f"  {warning}")
    if not confirm(f"Submit {plan.path.name} anyway?", yes=args.yes, not_asked=None):
        raise SubmitRefused(f"Not submitted: {warnings} to confirm; read them, then run again with --yes.")


def cmd_submit(args) -> int:
    from importconsole.operations.submit import prepare_submit, reconcile_pending, send_plan

    async def go() -> int:
        profile = _profile(args)
        importer = args.importer or profile.importer
        journal = _journal()
        if profile.is_ethosce:
            from importconsole.cli import ethosce_cmds

            async with await _connect(profile, check=False) as site:
                return await ethosce_cmds.submit(args, site, profile, journal, lambda plan: confirm_warnings(args, plan))
        async with await _connect(profile) as lms:
            for item in await reconcile_pending(journal, lms):
                err(item.sentence)
            checking = upload_progress("Validating", quiet_end=True)
            try:
                plan = await prepare_submit(lms, args.file, importer=importer, course_external_id=args.course,
                                            validation_progress=checking)
            except BaseException:
                checking.end_line()  # what follows starts on its own line; the bar shows where it stopped
                raise
            if checking.total:
                checking(checking.total, checking.total)  # read to the end (the last step reported may be earlier)
                checking.done()
            recorded = plan.report.award_lines() if plan.report is not None else []
            if recorded:  # importfile.award: the one answer, shown before anything is sent
                err("What the LMS will record for these rows:")
                for line in recorded:
                    err(f"  {line}")
            for note in plan.notes:  # what this LMS cannot tell (e.g. no record of earlier imports)
                err(note)
            if plan.warnings:
                confirm_warnings(args, plan)
            bar = upload_progress()
            sending.append(plan.path)
            try:
                outcome = await send_plan(plan, client=lms, journal=journal, profile=profile.name,
                                          lms_user=lms.username, progress=bar)
            except BaseException:
                bar.end_line()  # a refusal that follows starts on its own line, never glued to the bar
                raise
            bar.done()
            print(outcome.sentence, flush=True)
            for note in outcome.notes:
                err(note)
            created.append(outcome.import_.id)
            if outcome.journal_problem:
                return EXIT_PROBLEM  # created, but not recorded: not a clean success
            if args.watch:
                return await _watch_after_submit(args, lms, profile, journal, outcome.import_.id)
            return EXIT_OK

    sending: list[Path] = []
    created: list[int] = []
    try:
        return _run(go)
    except KeyboardInterrupt:
        if created:
            # The LMS answered and the journal says created: only the watching stops.
            err(f"\nStopped watching. Import {created[0]} was created on the LMS (the journal records it) and goes "
                 f"on there: follow it with `importconsole watch {created[0]}`.")
            return EXIT_INTERRUPTED
        if not sending:
            raise
        err(f"\nInterrupted during the upload of {sending[0].name}: it may or may not have reached the LMS. "
             "Nothing will be sent again on its own; `importconsole journal --reconcile` tells which.")
        return EXIT_INTERRUPTED


async def _watch_after_submit(args, lms, profile, journal, import_id: int) -> int:
    """`submit --watch`: the same watch loop as `importconsole watch ID` (operations area), on
    this run's client, so a token typed at the prompt is not asked for twice."""
    from types import SimpleNamespace

    from importconsole.cli.operation_cmds import _watch

    watch_args = SimpleNamespace(import_id=import_id, json=False, hung_after=None, poll_interval=None, every=1.0)
    session = SimpleNamespace(client=lms, profile=profile, journal=journal,
                              journal_fields=lambda: {"profile": profile.name, "base_url": lms.base_url, "lms_user": profile.username})
    return await _watch(watch_args, session)


# ---- imports --------------------------------------------------------------------------------

def cmd_imports(args) -> int:
    from importconsole.importfile.wording import clip

    async def go() -> int:
        profile = _profile(args)
        if profile.is_ethosce:
            from importconsole.cli import ethosce_cmds

            async with await _connect(profile) as site:  # logs in and checks the restws account first
                return await ethosce_cmds.imports(args, site, _journal())
        async with await _connect(profile, check=False) as lms:
            page = await lms.list_imports(state=args.state, limit=max(1, min(args.limit, 1000)))
            hung = await _hung_ids(lms, page, profile.hung_after)
        if args.json:
            print(json.dumps([asdict(i) for i in page.items], indent=2))
            return EXIT_OK
        if not page.items:
            print("No imports" + (f" in state {args.state}" if args.state else "") + ".")
            return EXIT_OK
        print(f"{'id':>6}  {'state':<22} {'importer':<8} {'course':<16} {'rows':>11}  {'by':<12} {'created':<20} file")
        for i in page.items:
            rows = f"{i.rows_processed}/{i.rows_total}"
            # Ids are clipped with a visible "…", never cut silently (`importconsole imports --json` has them whole).
            state = f"{i.state} (HUNG)" if i.id in hung else i.state
            print(f"{i.id:>6}  {state:<22} {i.importer:<8} {clip(visible(i.course_external_id or '-'), 16):<16} "
                  f"{rows:>11}  {clip(visible(i.created_by or ''), 12):<12} {(i.created_at or '')[:19]:<20} "
                  f"{visible(i.file_name or '')}")
        if page.next_offset is not None:
            print(f"({len(page.items)} shown; there are more: --limit N shows up to 1000.)")
        for import_id in sorted(hung):
            print(f"Import {import_id} is hung: `importconsole diagnose {import_id}` says where and why, "
                  f"`importconsole recover {import_id}` unlocks it and re-imports the rest.")
        return EXIT_OK

    return _run(go)


async def _hung_ids(lms, page, hung_after: float) -> set[int]:
    """The watcher's rule (operations.hung.stall_verdict) for each running import listed: the LMS's
    state says "running" for a hung import too."""
    from importconsole.lms.models import ImportState
    from importconsole.operations.hung import stall_verdict

    running = [i for i in page.items if i.state == ImportState.RUNNING]
    holders = {}
    for importer in {i.importer for i in running}:
        lock = await lms.lock(importer)
        holders[importer] = lock.import_id if lock.locked else None
    return {i.id for i in running if stall_verdict(i, server_time=page.server_time, lock_holder=holders[i.importer],
                                                     hung_after=hung_after).hung}


# ---- journal --------------------------------------------------------------------------------

def cmd_journal(args) -> int:
    journal = _journal()

    async def settle() -> int:
        from importconsole.operations.submit import reconcile_pending

        profile = _profile(args)
        async with await _connect(profile, check=False) as lms:
            results = await reconcile_pending(journal, lms)
        for item in results:
            print(item.sentence)
        if not results:
            print("Nothing was left pending.")
        return EXIT_OK

    if args.reconcile:
        code = _run(settle)
        if code:
            return code
    entries = journal.entries()[-max(1, args.limit):]
    if args.json:
        print(json.dumps([asdict(e) for e in entries], indent=2))
        return EXIT_OK
    if not entries:
        print(f"The journal ({journal.path}) is empty.")
        return EXIT_OK
    print(f"Journal: {journal.path}")
    for e in entries:
        what = f"{e.action} {Path(e.file_path).name if e.file_path else ''}".strip()
        imp = f"import {e.import_id}" if e.import_id is not None else "no import"
        print(f"{e.time[:19]}  {e.outcome:<15} {imp:<14} {visible(what)}  ({visible(e.lms_user or '?')} as {visible(e.os_user or '?')}, profile {visible(e.profile or '?')})")
        if e.message:
            print(f"{'':21}{visible(e.message)}")
    pending = [e for e in entries if e.pending]
    if pending and not args.reconcile:
        print(f"{len(pending)} entr{'y' if len(pending) == 1 else 'ies'} left 'sending': run `importconsole journal --reconcile` to settle with the LMS.")
    if journal.skipped_lines:
        print(f"({journal.skipped_lines} damaged line(s) skipped.)")
    return EXIT_OK
