"""`importconsole validate FILE` and `importconsole fix FILE --out PATH`.

Exit codes (cli/common.py): 0 no errors (warnings allowed), 1 errors found, 2 the file cannot be read
as an import file or a usage error, 3 the LMS could not be reached or refused us.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from importconsole.cli.common import EXIT_LMS, EXIT_OK, EXIT_PROBLEM, EXIT_USAGE, Stop, err
from importconsole.importfile.safe_text import json_dumps  # bidi and control characters as \u escapes


def register(subparsers) -> None:
    val = subparsers.add_parser("validate", help="check an import file against every rule (no change to anything)")
    val.add_argument("file", type=Path)
    _common(val)
    val.add_argument("--json", action="store_true", help="print one JSON document (schema: docs/validate-json.md)")
    val.set_defaults(func=cmd_validate)

    fix = subparsers.add_parser("fix", help="write a fixed copy of an import file, with a manifest of every change")
    fix.add_argument("file", type=Path)
    fix.add_argument("--out", type=Path, required=True, metavar="PATH", help="the new file (never the input)")
    fix.add_argument("--sanitize", action="store_true", help="remove special characters, trim headers and ids")
    fix.add_argument("--split-credit-types", action="store_true", help="one row per credit type")
    fix.add_argument("--completion-only", action="store_true",
                     help="drop credit where the LMS awards and reports it (user exists, variable credit off; needs a profile)")
    fix.add_argument("--accept-award", metavar="ROWS",
                     help="with --completion-only: make these rows completion-only even though the LMS would then "
                          "record other credit than the file says (e.g. 3,7-9); without it such rows are left as they are")
    fix.add_argument("--rows", metavar="SPEC", help="keep only these rows, e.g. 7-20,25")
    _common(fix)
    fix.set_defaults(func=cmd_fix)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--importer", choices=("course", "global"), default="course",
                        help="course-level (default) or global course report importer")
    parser.add_argument("--course", metavar="EXTERNAL_ID", help="the course the course-level importer imports into")
    parser.add_argument("--offline", action="store_true", help="no LMS: rules that need it are listed as not checked")
    parser.add_argument("--profile", metavar="NAME", default=argparse.SUPPRESS, help="LMS profile from the config file")
    parser.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS, help="config file")


def _with_facts(args, job):
    """Run job(facts) in a worker thread: OfflineFacts, or the LMS of the profile."""
    from importconsole.importfile.facts import OfflineFacts

    if args.offline:
        return job(OfflineFacts())
    try:
        from importconsole.lms.port import facts_for
        from importconsole.cli import lms_cmds
    except ImportError:
        raise Stop(EXIT_USAGE, "LMS checks need a profile and the LMS client, which is not available here; "
                                "use --offline to check the file alone.") from None
    from importconsole.lms.errors import LmsError

    try:
        profile = lms_cmds._profile(args)
        token = lms_cmds._token(profile)
        client = lms_cmds._client(profile, token)
    except Stop as stop:
        hint = "" if stop.code == EXIT_LMS else (
            "\nLMS checks need a profile (importconsole config init, then --profile NAME); "
            "or use --offline to check the file alone.")
        raise Stop(stop.code if stop.code != EXIT_PROBLEM else EXIT_USAGE, f"{stop}{hint}") from None

    async def main():
        async with client as lms:
            facts = facts_for(lms, asyncio.get_running_loop())  # restws on an EthosCE profile
            return await asyncio.to_thread(job, facts)

    try:
        return asyncio.run(main())
    except LmsError as exc:  # a refused IMPORTCONSOLE_TOKEN is named: `login` alone cannot help then
        from importconsole.lms.connect import env_hint

        raise Stop(EXIT_LMS, str(exc) + env_hint(exc)) from None


def cmd_validate(args) -> int:
    from importconsole.importfile.reader import ImportFileError
    from importconsole.importfile.validate import validate

    try:
        report = _with_facts(args, lambda facts: validate(
            args.file, importer=args.importer, course_external_id=args.course, facts=facts))
    except ImportFileError as exc:
        return _unreadable(args, exc)
    except Stop as stop:
        err(str(stop))
        return stop.code
    if args.json:
        print(json_dumps(report.as_dict(), indent=2))
    else:
        print_report(report, sys.stdout)
    return EXIT_PROBLEM if report.errors else EXIT_OK


def _unreadable(args, exc) -> int:
    from importconsole.importfile.safe_text import visible

    if getattr(args, "json", False):
        print(json_dumps({"file": str(args.file), "error": exc.as_dict()}, indent=2))
    else:
        err(f"{visible(str(args.file))}: cannot be read as an import file: {visible(str(exc))}")
    return EXIT_USAGE


def print_report(report, out) -> None:
    from importconsole.importfile.reader import DELIMITER_NAMES
    from importconsole.importfile.safe_text import visible
    from importconsole.importfile.validate import MAX_FINDINGS_PER_RULE
    from importconsole.importfile.wording import plural

    name = visible(report.path)
    for f in report.findings:
        where = f"{name}:{f.line or '-'}:{f.column_number or '-'}"
        parts = []
        if f.row:
            parts.append(f"row {f.row}")
        if f.column:
            parts.append(f"column {f.column}")
        place = (" " + " ".join(parts)) if parts else ""
        print(f"{where} [{f.severity} {f.rule}]{place}: {f.message} -- {f.fix}", file=out)
    s = report.summary
    print(f"{name}: {plural(s['rows'], 'row')}; {plural(s['errors'], 'error')}, {plural(s['warnings'], 'warning')}, "
          f"{s['info']} info "
          f"({report.encoding}, {DELIMITER_NAMES.get(report.delimiter, report.delimiter)}-delimited, "
          f"{report.line_endings} line endings)", file=out)
    for rule, n in s["by_rule"].items():
        if n > MAX_FINDINGS_PER_RULE:
            print(f"  {rule}: {n} findings, the first {MAX_FINDINGS_PER_RULE} shown", file=out)
    if report.quoted_line_breaks:
        print(f"  {report.quoted_line_breaks} line break(s) inside quoted values: some records span several lines "
              f"(the first on line {report.first_multi_line}); check no quote swallowed whole rows", file=out)
    if report.cancelled:
        print("  validation was cancelled before the end of the file", file=out)
    if report.not_checked:
        print(f"Not checked ({report.not_checked_why}): " + ", ".join(report.not_checked), file=out)


def cmd_fix(args) -> int:
    from importconsole.importfile.fixes import FixRefused, parse_rows, write_fixed_file
    from importconsole.importfile.reader import ImportFileError
    from importconsole.importfile.safe_text import visible
    from importconsole.importfile.wording import plural

    if not (args.sanitize or args.split_credit_types or args.completion_only or args.rows):
        err("Nothing to fix: give --sanitize, --split-credit-types, --completion-only or --rows SPEC.")
        return EXIT_USAGE
    try:
        rows = parse_rows(args.rows) if args.rows else None
    except ValueError as exc:
        err(f"--rows {args.rows!r}: {exc}")
        return EXIT_USAGE
    accept = None
    if args.accept_award:
        if not args.completion_only:
            err("--accept-award goes with --completion-only (it confirms what the LMS will award for those rows).")
            return EXIT_USAGE
        try:
            accept = parse_rows(args.accept_award)
        except ValueError as exc:
            err(f"--accept-award {args.accept_award!r}: {exc}")
            return EXIT_USAGE
    if args.completion_only and args.offline:
        err("--completion-only needs the LMS (does the user exist? is variable credit off?): give a --profile, not --offline.")
        return EXIT_USAGE
    if not args.completion_only:
        args.offline = True  # the other fixes need no LMS

    try:
        manifest = _with_facts(args, lambda facts: write_fixed_file(
            args.file, args.out, sanitize=args.sanitize, split_credit_types=args.split_credit_types,
            completion_only=args.completion_only, rows=rows, facts=facts, importer=args.importer,
            course_external_id=args.course, accept_award=accept))
    except ImportFileError as exc:
        return _unreadable(args, exc)
    except FixRefused as exc:
        err(str(exc))
        return EXIT_USAGE
    except Stop as stop:
        err(str(stop))
        return stop.code
    print(f"Wrote {visible(str(args.out))}: {plural(manifest.rows_written, 'row')} "
          f"({manifest.rows_read} read, {plural(manifest.change_count, 'change')}).")
    if not (manifest.change_count or manifest.notes or manifest.left_as_is_count) \
            and manifest.rows_written == manifest.rows_read:
        print("Nothing needed fixing: the copy holds the same rows as the file (submit the file itself).")
    for note in manifest.notes:
        print(f"Note: {visible(note)}")
    for differs in manifest.award_differs:
        print(differs.sentence() + ".")
    left = manifest.left_as_is
    if manifest.left_as_is_count:
        rows = ",".join(str(d.row) for d in left[:50]) + (",..." if manifest.left_as_is_count > 50 else "")
        print(f"{plural(manifest.left_as_is_count, 'row')} not fixed (the LMS would record other credit than the "
              f"file says; the manifest lists {'it' if manifest.left_as_is_count == 1 else 'them all'}): check the credit, or accept what the LMS awards with "
              f"--accept-award {rows}")
    # Asked for completion-only rows and got none: said plainly, and exit 1 so a script notices.
    none_made = args.completion_only and manifest.left_as_is_count and not manifest.completion_only_rows
    if none_made:
        print(_none_made_completion_only(manifest))
    print(f"Manifest of every changed row: {visible(str(manifest.manifest_path))}")
    return EXIT_PROBLEM if none_made else EXIT_OK


def _none_made_completion_only(manifest) -> str:
    from importconsole.importfile.wording import plural

    same = not manifest.change_count and manifest.rows_written == manifest.rows_read
    copy = ("the copy holds the file's rows as they are: do not submit it as a completion-only fix" if same
            else f"the copy holds only the other fixes ({plural(manifest.change_count, 'change')})")
    rows = "the one row" if manifest.left_as_is_count == 1 else f"each of the {manifest.left_as_is_count} rows"
    return (f"No row was made completion-only: for {rows} it would apply to, the LMS would then record other credit "
            f"than the file says; {copy}.")
