"""Where a record's text breaks RFC 4180 (unbalanced or stray quotes), read as the csv module reads it."""

from __future__ import annotations

from typing import NamedTuple

from .. import safe_text


def _line_breaks(text: str) -> int:
    return text.count("\n") + text.count("\r") - text.count("\r\n")


class QuoteProblem(NamedTuple):
    column: int  # 0-based value the problem is in
    what: str
    unbalanced: bool  # a quoted value ran over line ends to a quote that cannot be its end (or none)
    opened_at: int  # offset in the record's text: the value's opening quote, or the stray quote


def _quote_problem(raw: str, delim: str) -> QuoteProblem | None:
    """Where the record's text breaks RFC 4180, read as the csv module reads it; None if it does not.

    A quoted value that spans line ends and then never closes, or closes with text after the
    quote, is an unbalanced quote: its opening quote swallowed the lines (rows) after it. A
    quoted value that spans line ends and closes properly is valid and never a problem."""
    col = 0
    i = 0
    n = len(raw)
    body = raw.rstrip("\r\n")  # the record's own line end is no line break inside a value
    at_start = True
    while i < n:
        ch = raw[i]
        if at_start:
            if ch == '"':
                opened = i
                i += 1
                while True:
                    j = raw.find('"', i)
                    if j < 0:
                        return QuoteProblem(col, "never closes", True, opened)
                    if j + 1 < n and raw[j + 1] == '"':
                        i = j + 2
                        continue
                    i = j + 1
                    break
                if i < n and raw[i] not in (delim, "\r", "\n"):
                    if _line_breaks(body[opened:i]):  # the quote it closed on opened another value
                        return QuoteProblem(col, "closes only on a later line, where text follows the quote "
                                            f"({safe_text.visible(raw[max(i - 10, opened):i + 10])!r})", True, opened)
                    return QuoteProblem(col, f"text after the closing quote of value {col + 1}", False, opened)
                at_start = False
                continue
            if ch == " ":
                k = i
                while k < n and raw[k] == " ":
                    k += 1
                if k < n and raw[k] == '"':
                    return QuoteProblem(col, f"spaces before the opening quote of value {col + 1}", False, k)
            at_start = False
            continue
        if ch == delim:
            col += 1
            at_start = True
        elif ch == '"':
            return QuoteProblem(col, f"a quote inside unquoted value {col + 1}", False, i)
        elif ch in "\r\n":
            at_start = False
        i += 1
    return None
