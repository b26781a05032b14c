"""Properties over generated files: no input makes the engine crash, no record goes missing,
and a fixed file has none of the problems it was fixed for."""

from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from importconsole.importfile.fixes import write_fixed_file
from importconsole.importfile.index import RowIndex
from importconsole.importfile.reader import ImportFileError, open_import_file
from importconsole.importfile.scan import scan
from importconsole.importfile.validate import validate

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _file(content: bytes) -> Path:
    tmp = Path(tempfile.mkdtemp(prefix="importfile-prop-"))
    path = tmp / "f.csv"
    path.write_bytes(content)
    return path


HEADERS = [b"external_email,first_name,complete\n", b"external_user_id;credits\r\n", b"a\tb\n", b"",
           b"\xff\xfe" + "external_email\tcomplete\r\n".encode("utf-16-le"), b"\xfe\xff" + "external_email,x\n".encode("utf-16-be")]


@SETTINGS
@given(head=st.sampled_from(HEADERS), body=st.binary(max_size=1500))
def test_arbitrary_bytes_only_ever_raise_import_file_error(head, body):
    path = _file(head + body)
    try:
        report = validate(path)
        opened = open_import_file(path)
        records = list(opened.records())
        index = RowIndex(opened)
        index.build()
        assert report.rows == len(records) == index.count
        assert [index.record(r.row).cells for r in records[:3]] == [r.cells for r in records[:3]]
        manifest = write_fixed_file(path, path.with_name("fixed.csv"), sanitize=True, split_credit_types=True)
        assert manifest.rows_read == len(records)
        # Without --sanitize the rows are written as they were, undecodable bytes included.
        kept = write_fixed_file(path, path.with_name("rows.csv"), rows="1-")
        assert kept.rows_written == len(records)
    except ImportFileError as exc:
        assert str(exc)  # a sentence, never empty


CELL = st.text(alphabet=st.sampled_from(list("ab ,;\"'\n\t=-éë王\u200b\u00a0\x00")), max_size=8)


@SETTINGS
@given(rows=st.lists(st.lists(CELL, min_size=3, max_size=3), max_size=30),
       ending=st.sampled_from(["\n", "\r\n"]), chunk=st.integers(min_value=5, max_value=200))
def test_every_record_is_accounted_for(rows, ending, chunk):
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator=ending)
    writer.writerow(["external_email", "first_name", "complete"])
    writer.writerows(rows)
    content = buf.getvalue().encode("utf-8")
    assume(content.count(b"\x00") * 3 < len(content))  # mostly NUL bytes is refused as binary, rightly
    path = _file(content)
    expected = [r for r in rows if any(r)]  # rows of only empty cells are blank rows, not records
    opened = open_import_file(path)
    records = list(opened.records())
    assert [r.cells for r in records] == expected
    assert [r.row for r in records] == list(range(1, len(expected) + 1))
    # The fast path (any chunk size) and the index agree with the reader, row for row.
    scanned = []
    for c in scan(open_import_file(path), chunk_chars=chunk):
        scanned += [(c.first_row + i, c.line_of(i), cells) for i, cells in enumerate(c.rows)]
    assert scanned == [(r.row, r.line, r.cells) for r in records]
    index = RowIndex(open_import_file(path))
    index.build()
    assert index.count == len(records)
    assert [index.record(r.row).cells for r in records] == expected
    assert validate(path).rows == len(expected)


NAME = st.text(alphabet=st.sampled_from(list("abcé ") + ["\u200b", "\u00a0", "\x07", "\u202e", "\ufeff"]), min_size=1, max_size=6)


@SETTINGS
@given(names=st.lists(NAME, min_size=1, max_size=15),
       types=st.lists(st.sampled_from(["ama", "ama;ancc", "acpe|ama", "ama/ancc/acpe", ""]), min_size=15, max_size=15),
       header_pad=st.sampled_from(["", " ", "\u00a0", "  "]))
def test_fix_then_validate_leaves_none_of_the_fixed_kinds(names, types, header_pad):
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["external_email", f"{header_pad}first_name", "credit_type", "complete", "date_completed"])
    for n, name in enumerate(names):
        writer.writerow([f"l{n}@example.org", name, types[n], "1", "2026-01-02"])
    path = _file(buf.getvalue().encode("utf-8"))
    out = path.with_name("fixed.csv")
    manifest = write_fixed_file(path, out, sanitize=True, split_credit_types=True)
    report = validate(out)
    fixed_kinds = {"special-characters", "header-whitespace", "multiple-credit-types-in-row"}
    assert not [f for f in report.findings if f.rule in fixed_kinds]
    # Nothing lost: one row per credit type of each input row.
    expected = sum(max(1, len([p for p in t.replace("|", ";").replace("/", ";").split(";") if p])) for t in types[:len(names)])
    assert manifest.rows_written == report.rows == expected
