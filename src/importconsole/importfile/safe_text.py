"""Text from an import file, made safe to show and checked for what makes imports hang.

`visible(text)` is for everything shown to a terminal: control, escape, bidi, invisible and
unusual space characters become `<U+200B>`; ordinary letters of any script stay as they are.
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any

# What the special-characters rule flags ("Unlocking imports": special characters hang an
# import). Line breaks are not here: inside quoted values they are legal CSV.
_SPECIAL_CLASS = (
    "\x00-\x09\x0b\x0c\x0e-\x1f\x7f-\x9f"  # C0 (tab included), DEL, C1
    "\u00a0\u00ad\u1680\u180e\u2000-\u200f\u2028-\u202f\u205f-\u2064\u2066-\u206f\u3000"  # spaces, zero-width, bidi
    "\u0600-\u0605\u061c\u06dd\u070f\ufeff\ufff9-\ufffb\ufffd\ufdd0-\ufdef\ufffe\uffff"
    "\ud800-\udfff"  # lone surrogates: invalid bytes decoded with surrogateescape
    "\ue000-\uf8ff\U000f0000-\U0010ffff"  # private use
    "\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0000-\U000e007f"
)
SPECIAL_RE = re.compile(f"[{_SPECIAL_CLASS}]")


def special_pattern(delimiter: str = ",") -> re.Pattern[str]:
    """SPECIAL_RE minus the delimiter, for a whole-line fast path (a tab-delimited file)."""
    if delimiter == "\t":
        return re.compile(f"[{_SPECIAL_CLASS.replace(chr(0) + '-' + chr(9), chr(0) + '-' + chr(8))}]")
    return SPECIAL_RE


# What `visible` escapes: the special set plus line breaks and ESC-like sequences.
_SHOW_RE = re.compile(f"[{_SPECIAL_CLASS}\n\r]")

# "NumÃ©ro": UTF-8 bytes read as cp1252 and saved again. A lead byte 0xC2-0xDF (or 0xE0-0xEF)
# read as cp1252, then continuation bytes 0x80-0xBF read as cp1252.
_CONT = re.escape(bytes(range(0x80, 0xC0)).decode("cp1252", errors="ignore"))
MOJIBAKE_RE = re.compile(f"[\u00c2-\u00df][{_CONT}]|[\u00e0-\u00ef][{_CONT}]{{2}}")

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def code_point(ch: str) -> str:
    return f"U+{ord(ch):04X}"


def describe(ch: str) -> str:
    """`U+200B ZERO WIDTH SPACE`; invalid bytes (surrogateescape) as `byte 0x96`."""
    if 0xDC80 <= ord(ch) <= 0xDCFF:
        return f"invalid byte 0x{ord(ch) - 0xDC00:02X}"
    name = unicodedata.name(ch, "")
    if not name and unicodedata.category(ch) == "Cc":
        name = _CONTROL_NAMES.get(ord(ch), "control character")
    return f"{code_point(ch)} {name}".rstrip()


_CONTROL_NAMES = {0: "NUL", 9: "TAB", 10: "LINE FEED", 13: "CARRIAGE RETURN", 27: "ESCAPE", 127: "DELETE"}


def visible(text: str) -> str:
    """Make control, escape, bidi and invisible characters visible: `<U+200B>`."""
    if text.isascii() and text.isprintable():
        return text
    return _SHOW_RE.sub(lambda m: f"<{code_point(m.group())}>", text)


def find_special(text: str) -> list[tuple[int, str]]:
    """(index, character) of every special character in a value."""
    return [(m.start(), m.group()) for m in SPECIAL_RE.finditer(text)]


def escape_formula(value: str) -> str:
    """For CSV reports the project writes (never for import files): a spreadsheet must not run it."""
    return "'" + value if value.startswith(FORMULA_START) else value


# Unusual spaces become a plain space; everything else special is dropped.
_SPACE_LIKE = set("\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000\t")


# A terminal escape sequence, whole: removing only its ESC would leave `[2J[HA` in a learner's
# name. CSI (ESC [ or U+009B) parameters, intermediates, final byte; OSC, DCS, SOS, PM, APC strings
# up to their terminator (BEL or ST), or to the next ESC or the end of the value, where a terminal
# would stop; any other ESC sequence (intermediates, one final byte).
ESCAPE_SEQUENCE_RE = re.compile(
    r"(?:\x1b\[|\x9b)[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]?"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[\x20-\x2f]*[\x30-\x7e]?"
)


def escape_sequences(value: str) -> list[str]:
    """The terminal escape sequences in a value, whole."""
    if value.isascii() and value.isprintable():
        return []
    return ESCAPE_SEQUENCE_RE.findall(value)


def sanitize(value: str) -> str:
    """What `fix --sanitize` writes: terminal escape sequences removed whole, other special
    characters removed (unusual spaces -> space), NFC."""
    if value.isascii() and value.isprintable():
        return value
    cleaned = ESCAPE_SEQUENCE_RE.sub("", value)
    cleaned = SPECIAL_RE.sub(lambda m: " " if m.group() in _SPACE_LIKE else "", cleaned)
    return unicodedata.normalize("NFC", cleaned)


# In a JSON document for a terminal or a pipe: what `visible` would mark, as \u escapes (the
# text stays the same JSON value; a bidi override cannot reorder the line, an invalid byte kept
# by surrogateescape cannot stop the print).
_JSON_ESCAPE_RE = re.compile(f"[{_SPECIAL_CLASS}\u2028\u2029]")


def _json_escape(m: re.Match[str]) -> str:
    ch = m.group()
    code = ord(ch)
    if code > 0xFFFF:  # a surrogate pair, as JSON writes it
        code -= 0x10000
        return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
    return f"\\u{code:04x}"


def json_dumps(obj: object, **kwargs: Any) -> str:
    """json.dumps for output a person may read: letters of any script as they are, control,
    bidi and invisible characters (and invalid bytes) as \\u escapes."""
    text = json.dumps(obj, ensure_ascii=False, **kwargs)
    return _JSON_ESCAPE_RE.sub(_json_escape, text)


def clean_header(name: str) -> str:
    """A header as the importer expects it: no special characters, single spaces, trimmed."""
    return " ".join(sanitize(name).split())
