"""The CLI's one plumbing: exit codes, how text reaches the terminal, the confirmation, the progress bar.

Exit codes (every command): 0 done; 1 the job found a problem (findings, a refusal, hung, not
confirmed); 2 a usage error, a file that cannot be read as an import file, no config yet, or a setup
problem on this host (no keyring, no token); 3 the LMS could not be reached or refused us; 130
interrupted.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

from importconsole.importfile.safe_text import json_dumps, visible  # JSON: bidi and control characters as \u escapes
from importconsole.lms.connect import EXIT_LMS, EXIT_NO_SECRET  # the core's own (ConnectFailed.exit_code)

if TYPE_CHECKING:  # rich is imported when a bar is first drawn: a command that draws none never loads it
    from rich.progress import Progress as Bar
    from rich.progress import TaskID

EXIT_OK = 0
EXIT_PROBLEM = 1  # findings, a refusal, not confirmed
EXIT_USAGE = 2  # usage, an unreadable file, no config yet
EXIT_SETUP = EXIT_NO_SECRET  # this host lacks something (a keyring, a token): not the LMS's answer
EXIT_INTERRUPTED = 130

__all__ = ["EXIT_LMS", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_PROBLEM", "EXIT_SETUP", "EXIT_USAGE", "NOT_ASKED",
           "Progress", "Stop", "ask", "confirm", "emit", "err", "visible_lines"]


class Stop(Exception):
    """The command ends here: `str()` is the sentence for stderr, `code` the exit code."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code


def visible_lines(text: Any) -> str:
    """Each line made visible on its own (`visible` would show a line break as <U+000A>): a message
    can quote a file name, a cell or the LMS, and no escape sequence reaches the terminal."""
    return "\n".join(visible(line) for line in ("" if text is None else str(text)).split("\n"))


def err(text: Any) -> None:
    """An error or a note for the admin, on stderr."""
    print(visible_lines(text), file=sys.stderr, flush=True)


def emit(args: Any, data: dict[str, Any], text: str, *, err: bool = False) -> None:
    """`data` as one JSON line with --json, else `text` (on stderr with err=True)."""
    if getattr(args, "json", False):  # argparse: only the commands that take --json have it
        print(json_dumps(data), flush=True)
    else:
        print(visible_lines(text), file=sys.stderr if err else sys.stdout, flush=True)


NOT_ASKED = "Not confirmed: no terminal to ask on. Run again with --yes to go ahead."


def ask(question: str) -> str | None:
    """Ask on the terminal, on stderr (stdout may be a log): the answer typed, stripped; None when
    there is no terminal to ask on (piped input is not an answer)."""
    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        return None
    sys.stderr.write(f"{visible_lines(question)} ")
    sys.stderr.flush()
    return sys.stdin.readline().strip()


def confirm(question: str, *, yes: bool = False, not_asked: str | None = NOT_ASKED) -> bool:
    """The one confirmation: --yes goes ahead; on a terminal `question [y/N]` is asked and only y or
    yes goes ahead; with no terminal to ask on nothing is asked, the answer is no, and the question
    is shown with `not_asked` (None: the caller says why)."""
    if yes:
        return True
    answer = ask(f"{question} [y/N]")
    if answer is None:
        if not_asked is not None:
            err(f"{question}\n{not_asked}")
        return False
    return answer.lower() in ("y", "yes")


class Progress:
    """A progress bar on stderr, drawn by rich.progress on a terminal only. Elsewhere (a pipe, a log)
    nothing while it runs and at most one line at the end, `summary(done, total)`, so no escape code
    reaches a file. Call it with (done, total); `end_line()` before an error is printed, `done()` at
    the end."""

    REDRAW_EVERY = 0.1  # seconds: a slow link is not flooded with redraws

    def __init__(self, label: str, *, unit: str = "bytes", stream: TextIO | None = None,
                 summary: Callable[[int, int], str] | None = None, width: int = 30):
        self.stream = stream or sys.stderr  # looked up now: tests and the TUI swap sys.stderr
        self.label, self.unit, self.width, self.summary = label, unit, width, summary
        self.tty = self.stream.isatty()
        self.sent = self.total = 0
        self._bar: Bar | None = None  # started at the first step on a terminal
        self._task: TaskID | None = None
        self._last = 0.0

    def __call__(self, done: int, total: int) -> None:
        self.sent, self.total = done, total
        if not self.tty:
            return
        now = time.monotonic()
        if self._bar is not None and now - self._last < self.REDRAW_EVERY and done < total:
            return
        self._last = now
        if self._bar is None or self._task is None:
            self._bar, self._task = self._start()
        self._bar.update(self._task, completed=done, total=total or None)
        self._bar.refresh()

    def _start(self) -> tuple[Bar, TaskID]:
        from rich.console import Console
        from rich.progress import BarColumn, DownloadColumn, MofNCompleteColumn, TaskProgressColumn, TextColumn
        from rich.progress import Progress as Bar

        amount = [DownloadColumn()] if self.unit == "bytes" else [MofNCompleteColumn(), TextColumn(self.unit)]
        # No auto-refresh thread and no redirection: stdout stays where it was sent (a log file),
        # and only this call draws.
        # Plain colours: on a 16-colour terminal rich's default "finished" green becomes the grey of the empty bar.
        columns = BarColumn(bar_width=self.width, complete_style="green", finished_style="green")
        bar = Bar(TextColumn("{task.description}"), columns, TaskProgressColumn(),
                  *amount, console=Console(file=self.stream), auto_refresh=False,
                  redirect_stdout=False, redirect_stderr=False)
        task = bar.add_task(self.label, total=self.total or None)
        bar.start()
        return bar, task

    def end_line(self) -> None:
        """End the bar's line if one was drawn (before an error is printed)."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def done(self) -> None:
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, completed=self.sent, total=self.total or None)
            self.end_line()
        elif self.tty:
            self.stream.write("\n")
        elif self.total and self.summary is not None:
            self.stream.write(self.summary(self.sent, self.total) + "\n")
        self.stream.flush()
