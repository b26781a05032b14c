"""Exactness of the engine where it used to estimate: learner keys as the LMS matches them,
unbalanced quotes told from valid quoted line breaks, the delimiter named, and the first invalid
byte's offset right across read boundaries (RELIABILITY.md cases 10, 12, 18, 29 and 6)."""

from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from importconsole.cli import main
from importconsole.importfile.reader import first_invalid_byte, open_import_file
from importconsole.importfile.validate import validate

MIB = 1 << 20


def write(tmp_path: Path, content: bytes, name: str = "f.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


# --- case 6: the first invalid byte, exact across 1 MiB reads ------------------------------------

@pytest.mark.parametrize("char", ["é", "€", "😀"])
@pytest.mark.parametrize("tail", [b"\xff", b"\x80z", b"\xe2(", b""], ids=["ff", "lone-continuation", "bad-sequence", "eof"])
def test_first_invalid_byte_right_after_a_character_cut_by_the_read_boundary(tmp_path, char, tail):
    encoded = char.encode()
    for cut in range(1, len(encoded)):  # the character's first `cut` bytes end the first read
        start = 5  # reading starts after a header, like validate's
        before = b"a" * (start + MIB - cut)
        if tail:
            content, expected = before + encoded + tail, len(before) + len(encoded)
        else:  # the file ends inside the character: its first byte is the invalid one
            content, expected = before + encoded[:cut], len(before)
        path = write(tmp_path, content)
        assert first_invalid_byte(path, "utf-8", start) == expected, (char, cut, tail)


def test_a_character_cut_short_by_the_end_of_the_file_is_named_at_its_first_byte(tmp_path):
    assert first_invalid_byte(write(tmp_path, b"abc\xe2\x82"), "utf-8") == 3
    assert first_invalid_byte(write(tmp_path, b"ab" + "😀".encode()[:3]), "utf-8") == 2
    assert first_invalid_byte(write(tmp_path, "ab".encode("utf-16-le") + b"\x3d\xd8"), "utf-16-le") == 4
    assert first_invalid_byte(write(tmp_path, b"abc\xe2\x82\xac"), "utf-8") is None


def test_validate_names_the_exact_offset_of_a_cut_character_at_the_end_of_a_big_file(tmp_path):
    header = b"external_email,first_name\n"
    line = b"u@example.org,Ann\n"
    body = line * ((MIB - 200) // len(line))
    last = b"z@example.org,Jos"
    pad = MIB - 1 - len(body) - len(last)  # the cut character's first byte is the read's last byte
    body += b"y@example.org," + b"B" * (pad - 15) + b"\n"
    content = header + body + last + b"\xe2\x82"
    assert len(content) - 2 == len(header) + MIB - 1
    report = validate(write(tmp_path, content))
    (finding,) = report.of("special-characters")
    assert f"first invalid byte is at byte offset {len(content) - 2}" in finding.message


# --- case 18: the delimiter ----------------------------------------------------------------------

@pytest.mark.parametrize("delimiter,name", [(b";", "semicolon"), (b"\t", "tab"), (b"|", "pipe")])
def test_a_file_delimited_by_another_character_gets_an_info_finding(tmp_path, delimiter, name, capsys):
    content = b"external_email,first_name,complete\na@example.org,Ann,1\n".replace(b",", delimiter)
    path = write(tmp_path, content)
    report = validate(path)
    (finding,) = report.of("delimiter-not-comma")
    assert finding.severity == "info" and finding.line == 1
    assert name in finding.message and "comma" in finding.message and "CSV UTF-8" in finding.fix
    assert report.ok and report.rows == 1  # read all the same: info only
    assert main(["validate", str(path), "--offline"]) == 0
    assert "[info delimiter-not-comma]" in capsys.readouterr().out


def test_a_comma_file_has_no_delimiter_finding(tmp_path):
    assert not validate(write(tmp_path, b"external_email,complete\na@example.org,0\n")).of("delimiter-not-comma")


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_a_file_read_as_one_column_says_which_delimiter_it_may_be(tmp_path, delimiter):
    path = write(tmp_path, f"external_email\na@example.org{delimiter}Ann{delimiter}1\n".encode())
    (finding,) = validate(path).of("delimiter-suspect")
    assert f"delimiter may be {delimiter!r}" in finding.message
