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
from helpers.sandbox import dataset, start_sandbox

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

@pytest.mark.parametrize("delimiter,name", [(b";", "semicolon"), (b"\t", "tab")])
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


def test_a_pipe_file_is_read_but_is_an_error_the_lms_fails_it(tmp_path, capsys):
    # The reference LMS reads , ; and tab; with pipes it finds no learner column and fails the import.
    path = write(tmp_path, b"external_email|first_name|complete\na@example.org|Ann|1\n")
    report = validate(path)
    (finding,) = report.of("delimiter-unsupported")
    assert (finding.severity, finding.line, report.rows) == ("error", 1, 1) and "pipes" in finding.message
    assert not report.of("delimiter-not-comma") and main(["validate", str(path), "--offline"]) == 1
    fixed = tmp_path / "commas.csv"
    assert main(["fix", str(path), "--out", str(fixed), "--sanitize"]) == 0
    assert fixed.read_bytes() == b"external_email,first_name,complete\na@example.org,Ann,1\n"
    assert "instead of pipes" in capsys.readouterr().out and validate(fixed).errors == 0
    with start_sandbox(dataset(), rows_per_second=None) as lms:
        done = lms.wait_import(lms.submit(path.read_bytes(), course="C-FIXED").json()["id"])
        assert done["state"] == "failed" and "header row was not recognised" in done["error"]
        assert lms.wait_import(lms.submit(fixed.read_bytes(), course="C-FIXED").json()["id"])["state"] == "completed"


def test_a_comma_file_has_no_delimiter_finding(tmp_path):
    assert not validate(write(tmp_path, b"external_email,complete\na@example.org,0\n")).of("delimiter-not-comma")


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_a_file_read_as_one_column_says_which_delimiter_it_may_be(tmp_path, delimiter):
    path = write(tmp_path, f"external_email\na@example.org{delimiter}Ann{delimiter}1\n".encode())
    (finding,) = validate(path).of("delimiter-suspect")
    assert f"delimiter may be {delimiter!r}" in finding.message


# --- learner keys as the LMS matches them (case 29, duplicate rules) ----------------------------

KEYS = b"external_user_id,external_email,external_course_id,credit_type,credits,participant_category\n"


def keyed(tmp_path: Path, *lines: str) -> Path:
    return write(tmp_path, KEYS + "".join(line + "\n" for line in lines).encode())


@pytest.mark.parametrize("first,second", [
    ("A@x.org", "a@x.org"),
    ("Ann.Lee@Example.ORG", "ann.lee@example.org"),
    ("ZOË@x.org", "zoë@x.org"),
    ("STRASSE@x.org", "straße@x.org"),
    ('" a@x.org "', "a@x.org"),
    ("jose\u0301@x.org", "josé@x.org"),
], ids=["case", "mixed case", "non-ASCII case", "sharp s", "spaces", "NFD"])
def test_the_same_email_written_differently_is_a_duplicate_credit_row(tmp_path, first, second):
    report = validate(keyed(tmp_path, f",{first},CME-1,ama,1.00,", f",{second},CME-1,ama,1.00,"))
    (finding,) = report.of("duplicate-credit-row")
    assert (finding.row, finding.column) == (2, "credit_type")
    assert "as row 1" in finding.message and "written differently" in finding.message
    # Identical once the email is read as the LMS reads it: also a double import.
    (dup,) = report.of("duplicate-row")
    assert dup.row == 2 and "identical to row 1" in dup.message


def test_external_ids_with_spaces_or_in_nfd_are_the_same_learner_and_warn(tmp_path):
    report = validate(keyed(tmp_path, "u1,,CME-1,ama,1.00,", '" u1",,CME-1,ama,1.00,',
                            "Jos\u00e9,,CME-1,ama,1.00,", "Jose\u0301,,CME-1,ama,1.00,"))
    assert [(f.row, f.line) for f in report.of("duplicate-credit-row")] == [(2, 3), (4, 5)]
    (spaces,) = report.of("id-whitespace")
    assert (spaces.row, spaces.column) == (2, "external_user_id")
    (nfd,) = report.of("unicode-normalisation")
    assert (nfd.row, nfd.column) == (4, "external_user_id")
    assert report.rows == 4


def test_ids_are_not_case_folded_and_different_learners_are_not_duplicates(tmp_path):
    # External ids match exactly on the LMS (only emails are case-insensitive).
    report = validate(keyed(tmp_path, "U1,,CME-1,ama,1.00,", "u1,,CME-1,ama,1.00,",
                            ",a@x.org,CME-1,ama,1.00,", ",b@x.org,CME-1,ama,1.00,",
                            ",A@x.org,CME-1,ancc,1.00,", ",a@x.org,CME-2,ama,1.00,"))
    assert not report.of("duplicate-credit-row") and not report.of("duplicate-row")


def test_participant_category_repeated_whatever_the_case_and_spaces_of_the_email(tmp_path):
    report = validate(keyed(tmp_path, ",Ann@x.org,CME-1,ama,1.00,physician",
                            '," ann@X.org",CME-1,ancc,1.00,physician'))
    (finding,) = report.of("participant-category-repeated")
    assert (finding.row, finding.column) == (2, "participant_category")


def test_an_email_in_another_case_in_a_big_clean_file_is_found_across_parts(tmp_path):
    # Several parts through the fast path; the repeat is in the last one.
    body = "".join(f"u{n},l{n}@example.org,CME-1,ama,1.00,\n" for n in range(40_000))
    path = write(tmp_path, KEYS + body.encode() + b"u7,L7@Example.org,CME-1,ama,1.00,\n")
    report = validate(path)
    (finding,) = report.of("duplicate-credit-row")
    assert finding.row == 40_001 and "as row 8" in finding.message


from importconsole.importfile.validate import key_column, key_value  # noqa: E402

ANY_TEXT = st.text(alphabet=st.sampled_from(list("aAzZ @.é\u0301ÉßŁł\u00a0\t\u200b\n\u1100\u1161\udce9İ") + ["\u212b"]),
                   max_size=6)


@settings(max_examples=300, deadline=None)
@given(col=st.lists(ANY_TEXT, min_size=1, max_size=8), fold=st.booleans())
def test_key_column_equals_key_value_of_each_value(col, fold):
    assert list(key_column(col, fold)) == [key_value(v, fold) for v in col]


# --- cases 10 and 12: an unbalanced quote is told from a valid quoted line break -----------------

QUOTED_NEWLINES = [
    # (header, rows): every value quoted as csv.writer quotes it; the later lines hold delimiters.
    (b"external_email,first_name\n", [b'a@example.org,"Ann\nb@example.org,Bo"', b"c@example.org,Cy"]),
    (b"external_email,first_name\n", [b'a@example.org,"Ann,\n,\n,"', b"c@example.org,Cy"]),
    (b"external_email,first_name,complete\n", [b'a@example.org,"Ann,\nb@example.org,Bo,1",1', b"c@example.org,Cy,1"]),
    (b"external_email,first_name,complete\n", [b'"a@example.org\n,,\n",Ann,1', b"c@example.org,Cy,1"]),
    (b"external_email;first_name\n", [b'a@example.org;"Ann\nb@example.org;Bo"', b"c@example.org;Cy"]),
]


@pytest.mark.parametrize("header,lines", QUOTED_NEWLINES)
@pytest.mark.parametrize("stray", [False, True], ids=["well-quoted part", "csv path"])
def test_a_valid_quoted_value_with_line_breaks_and_delimiters_is_never_an_unbalanced_quote(tmp_path, header, lines, stray):
    delim = b";" if b";" in header else b","
    # A row with a stray quote sends the part through the csv module with each record's text.
    extra = [delim.join([b'd@example.org', b'D"i', b"1"][: header.count(delim) + 1])] if stray else []
    content = header + b"".join(line + b"\n" for line in lines + extra)
    report = validate(write(tmp_path, content))
    assert not report.of("unbalanced-quote"), report.of("unbalanced-quote")
    assert [f.row for f in report.of("stray-quote")] == ([3] if stray else [])
    assert not report.of("ragged-row")
    assert report.rows == 2 + len(extra)
    records = list(open_import_file(write(tmp_path, content)).records())
    assert records[1].line == 2 + lines[0].count(b"\n") + 1  # later lines keep their numbers


def test_an_unbalanced_quote_that_closes_on_a_later_row_with_the_right_width_is_reported(tmp_path):
    # The quote on line 2 closes at "Cy" on line 4: three rows read as one record of 3 cells.
    content = (b"external_email,first_name,complete\n" b'a@example.org,"Ann,1\n' b"b@example.org,Bo,1\n"
               b'c@example.org,"Cy",1\n' b"d@example.org,Di,1\n")
    report = validate(write(tmp_path, content))
    (finding,) = report.of("unbalanced-quote")
    assert (finding.row, finding.line, finding.column) == (1, 2, "first_name")
    assert "lines 2-4" in finding.message and "not counted" in finding.message
    assert report.rows == 2 and not report.of("stray-quote")


def test_an_unbalanced_quote_is_reported_on_the_line_where_it_opened(tmp_path):
    # The record starts on line 2 with a valid two-line value; value 3 opens a quote on line 3.
    content = b"external_email,first_name,complete\n" b'a@example.org,"Ann\nMarie","1\n' b"b@example.org,Bo,1\n"
    report = validate(write(tmp_path, content))
    (finding,) = report.of("unbalanced-quote")
    assert (finding.row, finding.line, finding.column) == (1, 3, "complete")
    assert "never closes" in finding.message and "lines 3-4" in finding.message


CELL = st.text(alphabet=st.sampled_from(list('ab ,;"\n\té')), max_size=8)  # a lone CR is not quoted by csv.writer with \n endings


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(width=st.sampled_from([2, 3]), delim=st.sampled_from([",", ";"]), ending=st.sampled_from(["\n", "\r\n"]),
       rows=st.lists(st.lists(CELL, min_size=3, max_size=3), min_size=1, max_size=20))
def test_files_written_by_a_csv_writer_never_get_a_quote_finding(width, delim, ending, rows):
    header = ["external_email", "first_name", "complete"][:width]
    rows = [r[:width] for r in rows]
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=delim, lineterminator=ending)
    writer.writerow(header)
    writer.writerows(rows)
    path = write(Path(tempfile.mkdtemp(prefix="importfile-exact-")), buf.getvalue().encode())
    report = validate(path)
    assert not [f for f in report.findings if f.rule in ("unbalanced-quote", "stray-quote", "ragged-row")]
    assert report.rows == len([r for r in rows if any(r)])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(width=st.sampled_from([2, 3]), count=st.integers(min_value=1, max_value=12), data=st.data())
def test_an_opened_quote_is_reported_where_it_opened_and_no_row_goes_uncounted(width, count, data):
    # Rows without quotes; one value opens a quote that never closes.
    names = data.draw(st.lists(st.text(alphabet="ab ,", max_size=5), min_size=count, max_size=count))
    at = data.draw(st.integers(min_value=0, max_value=count - 1))
    column = data.draw(st.integers(min_value=1, max_value=width - 1))
    header = ["external_email", "first_name", "complete"][:width]
    lines = []
    for n, name in enumerate(names):
        cells = [f"u{n}@example.org", name.replace(",", ""), "1"][:width]
        if n == at:
            cells[column] = '"' + cells[column]
        lines.append(",".join(cells))
    content = (",".join(header) + "\n" + "\n".join(lines) + "\n").encode()
    report = validate(write(Path(tempfile.mkdtemp(prefix="importfile-exact-")), content))
    (finding,) = report.of("unbalanced-quote")
    assert finding.line == at + 2 and finding.row == at + 1
    last = count + 1
    if at + 2 < last:
        assert f"lines {at + 2}-{last}" in finding.message
    # Rows before it, plus the record it opened, plus the lines it swallowed: every row accounted.
    assert report.rows == at + 1


def test_rows_a_quote_swallowed_but_closed_validly_are_not_silent(tmp_path, capsys):
    # Two slips that make valid CSV: a quote opened on line 2 and a stray one closing it on line 3.
    # It reads as one record with a line break (never an error), but the admin is told records span lines.
    content = b"external_email,first_name,complete\n" b'a@example.org,"Ann,1\n' b'b@example.org,Bo",1\n' b"c@example.org,Cy,1\n"
    path = write(tmp_path, content)
    report = validate(path)
    assert report.rows == 2 and not report.of("unbalanced-quote")
    assert report.quoted_line_breaks == 1 and report.first_multi_line == 2
    assert any("inside quoted values" in note and "line 2" in note for note in report.notes)
    main(["validate", str(path), "--offline"])
    assert "1 line break(s) inside quoted values: some records span several lines (the first on line 2)" \
        in capsys.readouterr().out


def test_a_file_without_quoted_line_breaks_has_no_such_note(tmp_path):
    report = validate(write(tmp_path, b"external_email,first_name\na@example.org,Ann\n\nb@example.org,\"Bo\"\n"))
    assert report.quoted_line_breaks == 0 and not any("quoted values" in n for n in report.notes)


def test_the_external_user_id_names_the_learner_first_as_on_the_lms(tmp_path):
    report = validate(keyed(tmp_path, "u1,a@x.org,CME-1,ama,1.00,", "u1,other@x.org,CME-1,ama,1.00,",
                            "a@x.org,,CME-1,ama,1.00,", ",a@x.org,CME-1,ama,1.00,"))
    (finding,) = report.of("duplicate-credit-row")  # rows 1 and 2; an id never equals an email (rows 3, 4)
    assert finding.row == 2 and "same external_user_id with another email" in finding.message
    assert not report.of("duplicate-row")


@settings(max_examples=200, deadline=None)
@given(col=st.lists(ANY_TEXT.filter(lambda v: "\n" not in v), min_size=1, max_size=8), fold=st.booleans())
def test_key_column_of_one_line_values_equals_key_value_of_each(col, fold):
    assert list(key_column(col, fold, one_line=True)) == [key_value(v, fold) for v in col]
