"""What an admin sees when something we did not foresee goes wrong: one sentence on screen, and a
crash report (traceback WITHOUT local variables: the token could be one) in a 0600 file.

Secret values the process learns (the API token) are registered here so that every crash text
is scrubbed of them before it is shown or written.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from pathlib import Path

from importconsole.private_files import open_private, private_folder

_SECRETS: set[str] = set()


def register_secret(value: str | None) -> None:
    """Remember a secret (token, password, session cookie) so neither crash output nor a log
    line ever contains it."""
    if value and len(value) >= 4:
        _SECRETS.add(value)
        _scrub_logs()


_scrubbing = False


def _scrub_logs() -> None:
    """Every log record made from now on is rendered and scrubbed when it is created, so no
    handler (a debug log, pytest's capture) sees a registered secret, whichever logger it uses."""
    global _scrubbing
    if _scrubbing:
        return
    import logging

    make = logging.getLogRecordFactory()

    def scrubbed(*args, **kwargs):
        record = make(*args, **kwargs)
        try:
            text = record.getMessage()
        except Exception:  # a broken format string: leave it to logging's own error report
            return record
        clean = redact(text)
        if clean != text:
            record.msg, record.args = clean, None
        return record

    logging.setLogRecordFactory(scrubbed)
    _scrubbing = True


def redact(text: str) -> str:
    for secret in sorted(_SECRETS, key=len, reverse=True):
        text = text.replace(secret, "[token hidden]")
    return text


def crash_dir() -> Path:
    override = os.environ.get("IMPORTCONSOLE_STATE_DIR")
    if override:
        return Path(override) / "crashes"
    from platformdirs import user_state_dir

    return Path(user_state_dir("importconsole")) / "crashes"


def write_crash_report(exc: BaseException) -> Path | None:
    """Write the traceback (frames and lines only, never locals) to a private file."""
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    try:
        folder = private_folder(crash_dir())
        stamp = time.strftime("crash-%Y%m%d-%H%M%S")
        for n in range(100):  # two crashes in one second (or two consoles) each keep their report
            path = folder / (f"{stamp}.txt" if n == 0 else f"{stamp}-{n}.txt")
            try:
                fd = open_private(path, "new")
                break
            except FileExistsError:
                continue
        else:
            return None
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(redact(text))
        return path
    except OSError:
        return None


def report_unexpected(exc: BaseException) -> int:
    """Tell the admin in one sentence, keep the details in a file; exit code 70 (internal error)."""
    path = write_crash_report(exc)
    where = f" Details for the developers: {path}" if path else ""
    print(
        redact(f"importconsole hit an unexpected problem ({type(exc).__name__}: {exc}). Nothing more was sent to the LMS.{where}"),
        file=sys.stderr,
    )
    return 70
