"""What a good value looks like: ISO 8601 dates, credit amounts, complete 0/1, one credit type;
the letters worth a closer look (Windows-1252, mojibake, smart quotes, NFC)."""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime

from .. import safe_text

CREDIT_TYPE_SEPARATORS = re.compile(r"\s*[;,|/]\s*")
COURSE_ID_MAX = 128

_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}:?\d{2})?)?")
_NUMBER_RE = re.compile(r"\d{1,4}(?:\.\d{1,2})?|\.\d{1,2}")
_COMPLETE_VALUES = frozenset(("", "0", "1"))
_SMART_QUOTES = "\u201c\u201d\u201e\u2018\u2019\u201a\u00ab\u00bb"


def _cp1252_letters(cell: str) -> list[tuple[int, str]]:
    """(index, character) of characters beyond ASCII read as Windows-1252 (not the special ones:
    find_special has those, undecodable bytes included)."""
    return [(i, ch) for i, ch in enumerate(cell)
            if ord(ch) > 127 and not safe_text.SPECIAL_RE.match(ch)]


def _describe_cp1252(ch: str) -> str:
    return f"byte 0x{ch.encode('cp1252')[0]:02X} ({ch} in Windows-1252, not UTF-8)"


def _parse_date(value: str) -> bool:
    if not _DATE_RE.fullmatch(value):
        return False
    try:
        if len(value) == 10:
            date.fromisoformat(value)
        else:
            datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _parse_number(value: str) -> bool:
    return bool(_NUMBER_RE.fullmatch(value))


def _letters_to_check(text: str, beyond_ascii: str | None, nfc: bool | None) -> bool:
    """May the text hold mojibake, smart quotes or a value not in NFC? beyond_ascii: its characters
    beyond ASCII in order, and nfc, when scan knows them (a part of quoted values): they tell
    the same quicker."""
    part = text if beyond_ascii is None else beyond_ascii
    if ("\u00c3" in part or "\u00c2" in part) and safe_text.MOJIBAKE_RE.search(text):
        return True
    if any(q in part for q in _SMART_QUOTES):
        return True
    return not (unicodedata.is_normalized("NFC", text) if nfc is None else nfc)
