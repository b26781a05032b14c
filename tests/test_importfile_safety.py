"""What the audit found: `fix` must never touch its input whatever it is called, never crash on
bytes it could not decode; and no file validates clean when the LMS hangs on it or refuses its rows
(another encoding than UTF-8, credit it cannot place), checked against the reference LMS."""

from __future__ import annotations

import asyncio
import codecs
import json
import time

from importconsole.cli import main
from importconsole.importfile.validate import validate
from importconsole.lms.client import LmsClient
from importconsole.lms.facts import ApiFacts
from helpers.sandbox import ADMIN_TOKEN, dataset, start_sandbox

H = b"external_email,first_name,complete\n"
ROWS = b"a@example.org,Ann,0\nb@example.org,Bo,0\n"


def test_an_input_named_like_fixs_temporary_file_is_never_touched(tmp_path, capsys):
    source = tmp_path / "records.csv.part"  # what fix once used as its temporary file for --out records.csv
    source.write_bytes(H + ROWS)
    assert main(["fix", str(source), "--out", str(tmp_path / "records.csv"), "--rows", "1-"]) == 0
    assert source.read_bytes() == H + ROWS
    assert (tmp_path / "records.csv").read_bytes() == H + ROWS
    assert sorted(p.name for p in tmp_path.iterdir()) == ["records.csv", "records.csv.manifest.csv", "records.csv.part"]


def test_fix_refuses_when_its_manifest_would_land_on_the_input(tmp_path, capsys):
    source = tmp_path / "out.csv.manifest.csv"
    source.write_bytes(H + ROWS)
    assert main(["fix", str(source), "--out", str(tmp_path / "out.csv"), "--sanitize"]) == 2
    assert "input file" in capsys.readouterr().err
    assert source.read_bytes() == H + ROWS and not (tmp_path / "out.csv").exists()


def test_fix_into_a_missing_folder_is_a_sentence_not_a_crash(tmp_path, capsys):
    source = tmp_path / "in.csv"
    source.write_bytes(H + ROWS)
    assert main(["fix", str(source), "--out", str(tmp_path / "nowhere" / "o.csv"), "--sanitize"]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_fix_rows_keeps_undecodable_bytes_as_they_were_and_says_so(tmp_path, capsys):
    # The first 64 KiB are UTF-8; an invalid byte after them cannot be decoded.
    big = b"".join(b"u%05d@example.org,Ann,1\n" % n for n in range(3000))
    source = tmp_path / "late.csv"
    source.write_bytes(H + big + b"z@example.org,Jos\xe9,1\n")
    out = tmp_path / "tail.csv"
    assert main(["fix", str(source), "--out", str(out), "--rows", "2999-"]) == 0
    printed = capsys.readouterr().out
    assert out.read_bytes() == H + b"u02998@example.org,Ann,1\nu02999@example.org,Ann,1\nz@example.org,Jos\xe9,1\n"
    assert "row(s) 3001 keep bytes that are not valid UTF-8" in printed and "--sanitize" in printed


def _windows_1252(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes(b"external_user_id,first_name,last_name,complete,date_completed\n"
                     b"u2,Ann,Smith,1,2026-03-01\n"
                     b"u3,Jos\xe9,Mu\xf1oz,1,2026-03-01\n"
                     b"u4,Bo,Ek\x07,1,2026-03-01\n")
    return path


def test_a_windows_1252_file_is_an_error_at_each_value_the_lms_would_hang_on(tmp_path, capsys):
    path = _windows_1252(tmp_path)
    report = validate(path)
    found = [(f.row, f.line, f.column) for f in report.of("special-characters")]
    assert found == [(2, 3, "first_name"), (2, 3, "last_name"), (3, 4, "last_name")]
    first = report.of("special-characters")[0]
    assert "byte 0xE9 (é in Windows-1252, not UTF-8)" in first.message and "--sanitize" in first.fix
    assert "U+0007" in report.of("special-characters")[2].message
    assert report.of("encoding-fallback") and main(["validate", str(path), "--offline"]) == 1


def test_a_windows_1252_file_on_the_lms_hangs_and_its_fixed_copy_imports_every_row(tmp_path, capsys):
    path = _windows_1252(tmp_path)
    fixed = tmp_path / "fixed.csv"
    assert main(["fix", str(path), "--out", str(fixed), "--sanitize"]) == 0
    assert "José" in fixed.read_text(encoding="utf-8")
    assert validate(fixed).errors == 0
    with start_sandbox(dataset(), rows_per_second=None) as lms:
        # What the rule warns about: the LMS stops at the first row with a Windows-1252 letter.
        hung = lms.submit(path.read_bytes(), course="C-FIXED").json()
        lms.wait_rows(hung["id"], 1)
        time.sleep(0.1)  # unthrottled: hundreds of rows' worth of time; it must not move
        assert (lms.get_import(hung["id"])["state"], lms.get_import(hung["id"])["rows_processed"]) == ("running", 1)
        assert lms.client().post("/locks/course/unlock", json={"import_id": hung["id"]}).status_code == 200
        # Row 1 went in before the hang; the fixed copy of the rest brings in rows 2-3, each once.
        rest = tmp_path / "rest.csv"
        assert main(["fix", str(path), "--out", str(rest), "--sanitize", "--rows", "2-"]) == 0
        done = lms.submit(rest.read_bytes(), course="C-FIXED").json()
        assert lms.wait_import(done["id"])["state"] == "completed"
        imported = lms.db().execute(
            "SELECT u.external_user_id, count(*) FROM import_rows r JOIN enrollments e ON e.id = r.enrollment_id "
            "JOIN users u ON u.id = e.user_id WHERE r.status = 'imported' GROUP BY u.external_user_id").fetchall()
        assert sorted(map(tuple, imported)) == [("u2", 1), ("u3", 1), ("u4", 1)]


def test_a_utf16_file_is_read_but_is_an_error_because_the_lms_refuses_it(tmp_path, capsys):
    path = tmp_path / "unicode.txt"
    path.write_bytes(codecs.BOM_UTF16_LE + "external_email\tcomplete\r\na@example.org\t0\r\n".encode("utf-16-le"))
    assert main(["validate", str(path), "--offline", "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    (finding,) = [f for f in doc["findings"] if f["rule"] == "encoding-not-utf8"]
    assert finding["severity"] == "error" and "UTF-16 LE" in finding["message"] and "fix" in finding["fix"]
    fixed = tmp_path / "fixed.csv"
    assert main(["fix", str(path), "--out", str(fixed), "--sanitize"]) == 0
    assert fixed.read_bytes() == b"external_email\tcomplete\r\na@example.org\t0\r\n"
    assert validate(fixed).errors == 0


async def test_credit_the_lms_cannot_place_is_an_error_before_it_refuses_the_row(tmp_path):
    path = tmp_path / "credit.csv"
    path.write_bytes(b"external_user_id,complete,date_completed,credit_type,credits\n"
                     b"u2,1,2026-03-01,,1.0\n"      # credits with no credit type
                     b"u3,1,2026-03-01,ama,\n"      # ama is Variable on C-VAR: how much?
                     b"u4,1,2026-03-01,ama,1.5\n")  # fine
    offline = validate(path)
    assert [(f.row, f.column) for f in offline.of("credits-without-credit-type")] == [(1, "credits")]
    assert "variable-credit-without-amount" in offline.not_checked
    with start_sandbox(dataset(), rows_per_second=None) as lms:
        async with LmsClient(lms.base_url, ADMIN_TOKEN) as client:
            facts = ApiFacts(client, asyncio.get_running_loop())
            report = await asyncio.to_thread(validate, path, course_external_id="C-VAR", facts=facts)
        assert [(f.row, f.column) for f in report.of("variable-credit-without-amount")] == [(2, "credits")]
        assert {f.row for f in report.findings if f.severity == "error"} == {1, 2}
        # The LMS refuses exactly those rows.
        done = lms.submit(path.read_bytes(), course="C-VAR").json()
        lms.wait_import(done["id"])
        statuses = lms.db().execute("SELECT row, status FROM import_rows WHERE import_id = ? ORDER BY row",
                                    (done["id"],)).fetchall()
        assert [tuple(s) for s in statuses] == [(1, "failed"), (2, "failed"), (3, "imported")]


def test_a_broken_utf16_file_is_findings_not_a_crash(tmp_path, capsys):
    head = codecs.BOM_UTF16_LE + "external_email,first_name,complete\na@example.org,".encode("utf-16-le")
    for name, content in [("lone surrogate", head + b"\x00\xd8" + ",0\n".encode("utf-16-le")),
                          ("odd final byte", head + "Ann,0\n".encode("utf-16-le") + b"\x00")]:
        path = tmp_path / "unicode.txt"
        path.write_bytes(content)
        assert main(["validate", str(path), "--offline"]) == 1, name
        out = capsys.readouterr()
        assert "U+FFFD" in out.out and "Traceback" not in out.out + out.err, name


def test_a_row_after_the_learners_completion_in_the_same_file_is_an_error_the_lms_refuses_it(tmp_path):
    path = tmp_path / "twice.csv"
    path.write_bytes(b"external_user_id,complete,date_completed\n"
                     b"u2,0,\n"             # enrolled...
                     b"u2,1,2026-03-01\n"   # ...then completed: fine
                     b"u2,0,\n"             # after the completion: refused
                     b"u3,1,2026-03-01\n")
    report = validate(path)
    assert [(f.row, f.column) for f in report.of("completed-earlier-in-file")] == [(3, "complete")]
    assert "row 2" in report.of("completed-earlier-in-file")[0].message
    with start_sandbox(dataset(), rows_per_second=None) as lms:
        done = lms.submit(path.read_bytes(), course="C-VAR").json()
        lms.wait_import(done["id"])
        statuses = lms.db().execute("SELECT row, status FROM import_rows WHERE import_id = ? ORDER BY row",
                                    (done["id"],)).fetchall()
        assert [tuple(s) for s in statuses] == [(1, "imported"), (2, "imported"), (3, "refused"), (4, "imported")]


def test_rows_past_the_end_of_the_file_are_named(tmp_path, capsys):
    source = tmp_path / "in.csv"
    source.write_bytes(H + ROWS)
    assert main(["fix", str(source), "--out", str(tmp_path / "o.csv"), "--rows", "2,7-9"]) == 0
    printed = capsys.readouterr().out
    assert "1 row (2 read" in printed and "--rows asks for row 7, but the file has 2 rows" in printed


def test_an_import_hung_on_a_windows_1252_letter_is_diagnosed_with_its_byte(tmp_path):
    from importconsole.importfile.diagnosis import CAUSE_SPECIAL_CHARACTERS, diagnose_file

    diagnosis = diagnose_file(7, _windows_1252(tmp_path), rows_processed=1, rows_total=3)
    assert (diagnosis.row, diagnosis.cause) == (2, CAUSE_SPECIAL_CHARACTERS)
    assert [c.describe() for c in diagnosis.characters] == [
        "byte 0xE9 (é in Windows-1252, not UTF-8) in row 2, column 'first_name', at character 4",
        "byte 0xF1 (ñ in Windows-1252, not UTF-8) in row 2, column 'last_name', at character 3"]


def test_a_few_scattered_duplicates_do_not_make_validation_hold_every_key(tmp_path, monkeypatch):
    import importconsole.importfile.validate as validation
    import importconsole.importfile.validate.duplicates as duplicates
    from test_importfile_reader import big_file

    lines = big_file(tmp_path / "clean.csv", 60_000).read_bytes().split(b"\r\n")
    for n in (45_001, 30_001, 15_001):  # row 10 again in parts far apart
        lines.insert(n, lines[10])
    path = tmp_path / "dups.csv"
    path.write_bytes(b"\r\n".join(lines))
    second_pass = []
    real = duplicates._report_duplicates
    monkeypatch.setattr(duplicates, "_report_duplicates", lambda checks: (second_pass.append(len(checks.dup_keys)),
                                                                          real(checks)))
    report = validation.validate(path)
    assert [f.row for f in report.of("duplicate-row")] == [15_001, 30_002, 45_003]
    # The keys kept for the second pass: at most the first repeating part's, not every part's
    # (a 1M-row file with 100 such rows peaked at 648 MiB before, 125 MiB now).
    assert second_pass and second_pass[0] < 25_000, second_pass  # a part is ~5,400 rows here; all: 60,003
