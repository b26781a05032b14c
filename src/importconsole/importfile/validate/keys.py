"""Learner, course and credit-type keys as the LMS matches them (ids trimmed, NFC; emails also
case-folded): what makes two rows the same credit. Whole-column work in C on the common case."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

from ..columns import ID_COLUMNS

KEY_COLUMNS = ID_COLUMNS  # learner, course and credit type: what makes two rows the same credit
FOLDED_COLUMNS = ("external_email",)  # the LMS matches emails case-insensitively (docs/api.md)


def key_value(value: str, fold: bool = False) -> str:
    """An id as the LMS compares it: stripped (it strips), NFC; an email also case-folded."""
    value = unicodedata.normalize("NFC", value.strip())
    return unicodedata.normalize("NFC", value.casefold()) if fold else value


# Bytes that may make a value differ from its key: ASCII whitespace, A-Z (emails only), non-ASCII.
_WS_BYTES = b" \t\r\x0b\x0c\x1c\x1d\x1e\x1f"
_ODD = {False: bytes(b for b in range(256) if b not in _WS_BYTES and b < 128),
        True: bytes(b for b in range(256) if b not in _WS_BYTES and b < 128 and not 65 <= b <= 90)}
_ASCII = bytes(range(128))
_NOT_WS = bytes(b for b in range(256) if b not in _WS_BYTES)


def key_column(col: Sequence[str], fold: bool = False, *, one_line: bool = False) -> Sequence[str]:
    """key_value of every value of a column; the column itself when no value changes, which the
    common case shows with a few whole-column operations in C (no per-value work).
    one_line: no value holds a line break (a part without quotes)."""
    if not col:
        return col
    joined = "\n".join(col)
    if not one_line and joined.count("\n") != len(col) - 1:  # a value holds a line break: value by value
        return [key_value(v, fold) for v in col]
    raw = joined.encode("utf-8", "surrogatepass")
    odd = raw.translate(None, _ODD[fold])
    if not odd:
        return col
    high = odd.translate(None, _ASCII)
    ws = bool(odd.translate(None, _NOT_WS))
    upper = len(odd) - len(high) > len(odd.translate(None, _NOT_WS) if ws else b"")
    plain = True  # the non-ASCII characters need no folding or composing
    if high:
        # Only the non-ASCII characters, side by side: folding and NFC are checked on them alone
        # (a combining mark after an ASCII letter is caught by combining()).
        residue = high.decode("utf-8", "surrogatepass")
        chars = set(residue)
        ws = ws or any(ch.isspace() for ch in chars)
        plain = ((not fold or residue.casefold() == residue) and unicodedata.is_normalized("NFC", residue)
                 and not any(map(unicodedata.combining, chars)))
    if plain and not upper and not ws:
        return col
    if plain:  # only ASCII letters to lower, which bytes.lower() does alone
        text = raw.lower().decode("utf-8", "surrogatepass") if upper else joined
    else:
        text = unicodedata.normalize("NFC", joined)
        if fold:
            text = unicodedata.normalize("NFC", text.casefold())
    values = text.split("\n")
    return list(map(str.strip, values)) if ws else values


def _key_columns(columns: Sequence[Sequence[str]], cols: dict[str, int],
                 trusted: bool = False) -> dict[str, Sequence[str]]:
    """The learner, course and credit-type columns (those the header has), as the LMS matches them.

    learner: the row's external_user_id when it has one (the LMS looks that up first), else its
    email, case-folded and marked so that an id never equals an email. trusted: the part is
    clean and no value has edge spaces (scan says so): ids need no look, only emails' case (a
    clean part holds no U+0300-U+036F combining mark, the NFD form of accented Latin letters)."""
    def norm(name: str, fold: bool = False) -> Sequence[str]:
        col = columns[cols[name]]
        return key_column(col, fold, one_line=trusted) if fold or not trusted else col

    out: dict[str, Sequence[str]] = {}
    if "external_user_id" in cols:
        learner = norm("external_user_id")
        if not all(learner):  # rows without an id: their email names the learner
            emails = norm("external_email", True) if "external_email" in cols else ("",) * len(learner)
            learner = [u if u or not e else "\0" + e for u, e in zip(learner, emails)]
        out["learner"] = learner
    elif "external_email" in cols:
        out["learner"] = ["\0" + e if e else e for e in norm("external_email", True)]
    for name in ("external_course_id", "credit_type"):
        if name in cols:
            out[name] = norm(name)
    return out
