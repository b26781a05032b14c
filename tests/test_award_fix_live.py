"""`fix --completion-only` never calls a row fixed when the LMS would then record other credit than
the file says (issue 10, section 1). Proved in the reference LMS's database after submitting what
the fix wrote."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path


from importconsole.cli import main
from helpers.profiles import cli_env

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "rule-partial-credit-not-variable.csv"


def credit_of(lms, user: str, course: str = "CARD-101") -> dict[str, tuple[Decimal, str, int]]:
    rows = lms.db().execute(
        "SELECT cr.credit_type, cr.amount, cr.source, (SELECT count(*) FROM reporting_queue q WHERE q.credit_record_id"
        " = cr.id AND q.entity = 'pars') FROM credit_records cr JOIN users u ON u.id = cr.user_id"
        " JOIN courses c ON c.id = cr.course_id WHERE u.external_user_id = ? AND c.external_id = ?",
        (user, course)).fetchall()
    return {t: (Decimal(str(a)), s, q) for t, a, s, q in rows}


def test_the_partial_credit_example_is_not_called_fixed_and_both_credits_are_shown(demo_sandbox, tmp_path,
                                                                                      monkeypatch, capsys):
    cli_env(monkeypatch, tmp_path, demo_sandbox)
    out = tmp_path / "fixed.csv"
    code = main(["fix", str(EXAMPLE), "--out", str(out), "--completion-only", "--course", "CARD-101"])
    text = capsys.readouterr().out
    # Asked for completion-only rows, got none: said plainly, and exit 1 so a script notices (it was 0).
    assert code == 1
    assert ("No row was made completion-only: for the one row it would apply to, the LMS would then record other "
            "credit than the file says; the copy holds the file's rows as they are: do not submit it as a "
            "completion-only fix.") in text
    assert "the file says 0.50 ama; the LMS will record 1.5 ama and 1.5 moc_abim" in text
    assert "row 1 (U0019 in CARD-101): not made completion-only, left as it is" in text
    assert "1 row not fixed" in text and "--accept-award 1\n" in text
    assert "the LMS awards it and reports it" not in text
    # The row is not changed: the copy still carries 0.50 ama, and validate still says why.
    assert out.read_text().splitlines()[1].endswith("ama,0.50,")
    assert "left-as-is" in (tmp_path / "fixed.csv.manifest.csv").read_text()
    assert main(["validate", str(out), "--course", "CARD-101"]) == 1
    assert "partial-credit-not-variable" in capsys.readouterr().out


def test_only_rows_whose_award_equals_the_file_are_fixed_and_the_lms_holds_what_the_file_said(demo_sandbox, tmp_path,
                                                                                                monkeypatch, capsys):
    cli_env(monkeypatch, tmp_path, demo_sandbox)
    source = tmp_path / "in.csv"
    source.write_bytes(
        b"external_user_id,complete,date_completed,credit_type,credits\n"
        b"U0020,1,2026-10-01,ama,1.5\n"       # row 1 } U0020: the file says what the LMS awards:
        b"U0020,1,2026-10-01,moc_abim,1.50\n"  # row 2 } fixed, and reported to PARS
        b"U0021,1,2026-10-01,ama,0.75\n"      # row 3: the LMS would award 1.5 ama and 1.5 moc_abim: left
        b"U0022,1,2026-10-01,ama,1.5\n")      # row 4: would add moc_abim: accepted by the admin
    out = tmp_path / "fixed.csv"
    assert main(["fix", str(source), "--out", str(out), "--completion-only", "--course", "CARD-101",
                 "--accept-award", "4"]) == 0
    text = capsys.readouterr().out
    assert "row 3 (U0021 in CARD-101): not made completion-only, left as it is: the file says 0.75 ama" in text
    assert "row 4 (U0022 in CARD-101): made completion-only as you accepted: the file says 1.5 ama; " \
           "the LMS will record 1.5 ama and 1.5 moc_abim" in text
    assert "--accept-award 3" in text
    lines = out.read_text().splitlines()
    assert lines[1:] == ["U0020,1,2026-10-01,,", "U0021,1,2026-10-01,ama,0.75", "U0022,1,2026-10-01,,"]

    created = demo_sandbox.submit(out.read_bytes(), course="CARD-101").json()
    demo_sandbox.wait_import(created["id"])
    # Fixed without a word: exactly the file's credit, now awarded and queued for PARS.
    assert credit_of(demo_sandbox, "U0020") == {"ama": (Decimal("1.5"), "awarded", 1),
                                                "moc_abim": (Decimal("1.5"), "awarded", 1)}
    # Left as it is: the file's row went in unchanged (validate still flags its partial credit).
    assert {t: s for t, (_, s, _) in credit_of(demo_sandbox, "U0021").items()} == {"ama": "import"}
    # Confirmed: the award the admin accepted.
    assert credit_of(demo_sandbox, "U0022") == {"ama": (Decimal("1.5"), "awarded", 1),
                                                "moc_abim": (Decimal("1.5"), "awarded", 1)}


def test_accept_award_needs_completion_only(tmp_path, capsys):
    source = tmp_path / "in.csv"
    source.write_bytes(b"external_user_id,complete\nU1,1\n")
    assert main(["fix", str(source), "--out", str(tmp_path / "o.csv"), "--sanitize", "--accept-award", "1"]) == 2
    assert "--accept-award goes with --completion-only" in capsys.readouterr().err


def test_validate_online_without_a_course_lists_the_course_rules_as_not_checked(demo_sandbox, tmp_path, monkeypatch,
                                                                                 capsys):
    cli_env(monkeypatch, tmp_path, demo_sandbox)
    assert main(["validate", str(EXAMPLE)]) == 0
    out = capsys.readouterr().out
    assert "Not checked (the course is not named: give --course EXTERNAL_ID" in out
    assert "partial-credit-not-variable" in out.split("Not checked")[1]
    assert main(["validate", str(EXAMPLE), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert "partial-credit-not-variable" in doc["not_checked"] and "--course" in doc["not_checked_why"]
    # With the course every rule runs, and the fix sentence is the award's.
    assert main(["validate", str(EXAMPLE), "--course", "CARD-101", "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["not_checked"] == []
    (finding,) = [f for f in doc["findings"] if f["rule"] == "imported-credit-not-reported"]
    assert "1.5 ama (awarded, reported to PARS) and 1.5 moc_abim (awarded, reported to PARS)" in finding["fix"]
    assert "this row says 0.50 ama" in finding["fix"]


def test_the_submit_confirmation_says_what_the_lms_will_record_and_the_lms_records_it(demo_sandbox, tmp_path,
                                                                                        monkeypatch, capsys):
    cli_env(monkeypatch, tmp_path, demo_sandbox)
    source = tmp_path / "mixed.csv"
    source.write_bytes(
        b"external_user_id,complete,date_completed,credit_type,credits\n"
        b"U0030,1,2026-10-01,,\n"            # completion only: both types, awarded, reported to PARS
        b"U0031,1,2026-10-01,,\n"
        b"U0032,1,2026-10-01,ama,1.5\n")    # imported: recorded, reported to nobody
    assert main(["submit", str(source), "--course", "CARD-101", "--yes"]) == 0
    err = capsys.readouterr().err
    assert "What the LMS will record for these rows:\n" \
           "  each of 2 rows: the LMS will record 1.5 ama (awarded, reported to PARS) and 1.5 moc_abim (awarded, reported to PARS)\n" \
           "  1 row: the LMS will record 1.5 ama (imported, reported to nobody)\n" in err
    imports = demo_sandbox.db().execute("SELECT id FROM imports ORDER BY id DESC LIMIT 1").fetchone()
    demo_sandbox.wait_import(imports[0])
    for user in ("U0030", "U0031"):
        assert credit_of(demo_sandbox, user) == {"ama": (Decimal("1.5"), "awarded", 1),
                                                 "moc_abim": (Decimal("1.5"), "awarded", 1)}
    assert credit_of(demo_sandbox, "U0032") == {"ama": (Decimal("1.5"), "import", 0)}


def test_completion_only_never_calls_a_row_for_a_completed_enrollment_fixed(demo_sandbox, tmp_path, monkeypatch,
                                                                             capsys):
    """U0001 completed CARD-101 (demo data): the LMS refuses any row for it, credit or not."""
    cli_env(monkeypatch, tmp_path, demo_sandbox)
    source = tmp_path / "in.csv"
    source.write_bytes(b"external_user_id,complete,date_completed,credit_type,credits\n"
                       b"U0001,1,2026-10-01,ama,1.5\nU0001,1,2026-10-01,moc_abim,1.5\n")
    out = tmp_path / "o.csv"
    assert main(["fix", str(source), "--out", str(out), "--completion-only", "--course", "CARD-101"]) == 1
    text = capsys.readouterr().out
    assert "No row was made completion-only: for each of the 2 rows it would apply to" in text
    assert "row 1 (U0001 in CARD-101): not made completion-only, left as it is: the file says 1.5 ama and " \
           "1.5 moc_abim; the LMS will record nothing (the row is refused)" in text
    assert out.read_bytes() == source.read_bytes()


def test_a_new_learner_in_a_course_without_required_objects_is_told_what_the_lms_will_award(demo_sandbox, tmp_path,
                                                                                             monkeypatch, capsys):
    cli_env(monkeypatch, tmp_path, demo_sandbox)
    source = tmp_path / "new.csv"
    source.write_bytes(b"external_email,complete,credit_type,credits\nnobody.yet@example.org,0,,\n")
    main(["validate", str(source), "--course", "GRAND-ROUNDS", "--json"])
    doc = json.loads(capsys.readouterr().out)
    (finding,) = [f for f in doc["findings"] if f["rule"] == "new-user-no-required-objects"]
    # Behaviour 3: every type at its max, the variable one too, whatever the row (complete=0) says.
    assert ("whatever the row says, the row waits in the holding table until the account exists; then the LMS will "
            "record 1 ama (awarded, reported to PARS) and 1 cme_other (awarded, reported to nobody)") in finding["message"]
    assert doc["awards"][0]["outcome"] == "held" and doc["awards"][0]["rows"] == 1
    # What the LMS does: the row waits; the account appears; every credit at its max, queued as said.
    created = demo_sandbox.submit(source.read_bytes(), course="GRAND-ROUNDS").json()
    demo_sandbox.wait_import(created["id"])
    assert demo_sandbox.client().post("/users", json={"email": "nobody.yet@example.org"}).status_code in (200, 201)
    rows = demo_sandbox.db().execute(
        "SELECT cr.credit_type, cr.amount, cr.source, (SELECT group_concat(q.entity) FROM reporting_queue q "
        "WHERE q.credit_record_id = cr.id) FROM credit_records cr JOIN users u ON u.id = cr.user_id "
        "WHERE u.email_lower = 'nobody.yet@example.org' ORDER BY cr.credit_type").fetchall()
    assert [tuple(r) for r in rows] == [("ama", 1.0, "awarded", "pars"), ("cme_other", 1.0, "awarded", None)]
