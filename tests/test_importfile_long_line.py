"""One huge physical line (issue 12): refused with the field-size sentence, never held whole."""

from __future__ import annotations

import os
import subprocess
import sys
import tracemalloc

import pytest

from importconsole.importfile.reader import ImportFileError, open_import_file
from importconsole.importfile.scan import scan
from importconsole.importfile.validate import validate

HEADER = b"external_email,first_name,last_name,complete,date_completed\n"
MIB = 1 << 20


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "importconsole", *args], capture_output=True, text=True,
                          env=dict(os.environ), timeout=120)


def one_line(tmp_path, body: bytes, name: str = "huge.csv"):
    path = tmp_path / name
    path.write_bytes(body)
    return path


def test_validate_names_file_line_row_column_for_an_8_mib_line(tmp_path):
    path = one_line(tmp_path, HEADER + b"a@example.org," + b"z" * (8 * MIB) + b",Last,1,2026-03-01\n")
    result = run("validate", "--offline", str(path))
    assert result.returncode == 2, result.stderr
    assert "huge.csv" in result.stderr and "Traceback" not in result.stderr
    assert "a value is larger than the field-size cap of 64 KiB (line 2, row 1, column 2)" in result.stderr
    assert "shorten the value" in result.stderr


def test_fix_refuses_the_same_way_and_writes_nothing(tmp_path):
    body = HEADER + b"a@example.org," + b"z" * (8 * MIB) + b"\n"
    path = one_line(tmp_path, body)
    out = tmp_path / "fixed.csv"
    result = run("fix", "--offline", "--sanitize", "--out", str(out), str(path))
    assert result.returncode == 2, result.stderr
    assert "a value is larger than the field-size cap of 64 KiB (line 2, row 1, column 2)" in result.stderr
    assert not out.exists() and path.read_bytes() == body


def test_a_header_that_is_one_huge_line_gets_the_sentence(tmp_path):
    path = one_line(tmp_path, b"external_email," + b"z" * (8 * MIB) + b"\n")
    result = run("validate", "--offline", str(path))
    assert result.returncode == 2, result.stderr
    assert "a value is larger than the field-size cap of 64 KiB (line 1, column 2)" in result.stderr


def test_a_huge_line_of_short_values_is_refused_with_its_line(tmp_path):
    path = one_line(tmp_path, HEADER + b"a@example.org,Ann,Lee,1,2026-03-01\n" + b"z," * (2 * MIB) + b"\n")
    with pytest.raises(ImportFileError) as caught:
        validate(path)
    assert caught.value.line == 3 and caught.value.row == 2
    assert "1024 KiB long or more" in str(caught.value) and "one record a line" in str(caught.value)
    # The reader and the fast path say the same.
    with pytest.raises(ImportFileError) as by_reader:
        list(open_import_file(path).records())
    assert str(by_reader.value) == str(caught.value)


@pytest.mark.parametrize("header_line", [False, True])
def test_the_line_is_never_held_whole(tmp_path, header_line):
    # Allocation peak (tracemalloc counts bytes, not time): before the fix the 8 MiB line was read
    # whole, then copied by the csv module (131 MiB traced).
    body = b"a," + b"z" * (8 * MIB) + b"\n" if header_line else HEADER + b"a@x.org," + b"z" * (8 * MIB) + b"\n"
    path = one_line(tmp_path, body)
    tracemalloc.start()
    try:
        with pytest.raises(ImportFileError, match="field-size cap"):
            validate(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 6 * MIB, f"{peak / MIB:.1f} MiB traced"


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
def test_a_long_line_under_the_cap_reads_as_before(tmp_path, encoding):
    # 15 values of 60 KiB (900 KiB): under the field cap and the line cap, read alike by both paths.
    values = ["é" * (60 * 1024) for _ in range(15)]
    text = ",".join(f"c{i}" for i in range(15)) + "\r\n" + ",".join(values) + "\r\nx" + ",y" * 14 + "\r\n"
    path = tmp_path / "wide.csv"
    path.write_bytes(text.encode(encoding))
    f = open_import_file(path)
    records = [r.cells for r in f.records()]
    assert records == [values, ["x"] + ["y"] * 14]
    scanned = [cells for chunk in scan(open_import_file(path)) for cells in chunk.rows]
    assert scanned == records


def test_utf16_one_huge_line_gets_the_sentence(tmp_path):
    text = "external_email,first_name\r\na@example.org," + "z" * (2 * MIB) + "\r\n"
    path = one_line(tmp_path, text.encode("utf-16"))
    with pytest.raises(ImportFileError) as caught:
        validate(path)
    assert "field-size cap of 64 KiB" in str(caught.value)
    assert (caught.value.line, caught.value.row, caught.value.column) == (2, 1, 2)


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"])
def test_a_huge_line_after_many_rows_names_its_own_row(tmp_path, eol):
    # 20,000 rows (several of scan's parts) before it: the fast path hands over at the right place.
    rows = b"".join(b"u%d@example.org,Ann,Lee,1,2026-03-01" % i + eol for i in range(20_000))
    path = one_line(tmp_path, HEADER.replace(b"\n", eol) + rows + b"x@example.org," + b"z" * (3 * MIB) + eol)
    with pytest.raises(ImportFileError) as caught:
        validate(path)
    assert (caught.value.line, caught.value.row, caught.value.column) == (20_002, 20_001, 2)
    assert "field-size cap of 64 KiB" in str(caught.value)
