"""Headless commands. Each area registers its own subcommands; all of them call operations.
Exit codes, errors, the confirmation and the progress bar: cli/common.py, for every command.
"""

from __future__ import annotations

import argparse
import importlib

from importconsole import __version__

# Modules that add subcommands: each has register(subparsers) and sets `func` on its parsers.
COMMAND_MODULES = [
    "importconsole.cli.sandbox_cmd",
    "importconsole.cli.file_cmds",
    "importconsole.cli.lms_cmds",
    "importconsole.cli.operation_cmds",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="importconsole",
        description="Operate course record imports on your LMS: validate, submit, watch, unlock, fix credit.",
    )
    parser.add_argument("--version", action="version", version=f"importconsole {__version__}")
    parser.add_argument("--config", metavar="PATH", help="config file (default: the platform config dir, or $IMPORTCONSOLE_CONFIG)")
    parser.add_argument("--profile", metavar="NAME", help="LMS profile from the config file")
    parser.add_argument("--demo", action="store_true", help="open the console against a fresh reference LMS with demo data")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command is None:
            from importconsole.tui.launch import run_console  # Textual is imported only for the TUI

            return run_console(args)
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        from importconsole.cli.common import EXIT_INTERRUPTED, err

        err("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return 0
    except Exception as exc:  # the last line of defence: never a traceback in front of an admin
        from importconsole.crash import report_unexpected

        return report_unexpected(exc)
