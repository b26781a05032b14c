"""Credit fixes against the real reference LMS: after the fix the reporting queue holds the
expected entries for each fixed learner, once; nothing is proposed for variable credit or
unknown users."""

import asyncio
import csv
import io
import json

import pytest
from helpers.profiles import profile_env, use_env
from helpers.sandbox import dataset, start_sandbox
from helpers.workflows import client_for, count, course_file, learners

from importconsole.cli import main
from importconsole.journal import Journal
from importconsole.operations.credit_fix import (CreditFixStopped, propose_credit_fixes, submit_proposals,
                                                 write_proposal_file)

ENROLLMENTS = [
    # Imported credit on an incomplete enrollment, non-variable: fixable (page: Importing enrollments 2).
    {"external_user_id": "u1", "course_external_id": "C-FIXED", "status": "incomplete",
     "credits": [{"credit_type": "ama", "amount": 0.5, "source": "import"}]},
    # Same, variable credit: completing would drop it and award nothing. Not proposed.
    {"external_user_id": "u2", "course_external_id": "C-VAR", "status": "incomplete",
     "credits": [{"credit_type": "ama", "amount": 1.5, "source": "import"}]},
    # Complete, imported PARS credit: never reported, and the importer cannot update it. By hand.
    {"external_user_id": "u3", "course_external_id": "C-FIXED", "status": "complete", "date_completed": "2026-01-05",
     "credits": [{"credit_type": "ama", "amount": 1.0, "source": "import"}]},
    # Imported AMS credit on an incomplete enrollment: fixable.
    {"external_user_id": "u4", "course_external_id": "C-ZERO", "status": "incomplete",
     "credits": [{"credit_type": "ancc", "amount": 1.0, "source": "import"}]},
    # Already awarded and reported: nothing to do.
    {"external_user_id": "u5", "course_external_id": "C-FIXED", "status": "complete", "date_completed": "2026-01-05",
     "credits": [{"credit_type": "ama", "amount": 1.0, "source": "awarded"}]},
]


def queue(lms):
    return sorted(tuple(r) for r in lms.db().execute(
        "SELECT u.external_user_id, q.entity, q.credit_type, q.amount FROM reporting_queue q "
        "JOIN users u ON u.id = q.user_id ORDER BY q.id"))


async def test_completion_only_fixes_reach_the_reporting_queue_once(tmp_path):
    with start_sandbox(dataset(users=learners(6), enrollments=ENROLLMENTS), rows_per_second=1000) as lms:
        assert queue(lms) == []
        async with client_for(lms) as client:
            proposals = await propose_credit_fixes(client)
            decided = {(p.learner, p.course_external_id): p for p in proposals}
            assert set(decided) == {("u1", "C-FIXED"), ("u2", "C-VAR"), ("u3", "C-FIXED"), ("u4", "C-ZERO")}
            assert [k for k, p in decided.items() if p.proposed] == [("u1", "C-FIXED"), ("u4", "C-ZERO")]
            assert "variable credit is enabled for ama" in decided[("u2", "C-VAR")].reason
            assert "cannot update" in decided[("u3", "C-FIXED")].reason
            u1 = decided[("u1", "C-FIXED")]
            assert [(a.credit_type, a.amount, a.reports_to) for a in u1.awards] == [("ama", 1.0, ("pars",))]
            assert "reported to PARS" in u1.describe()

            written = write_proposal_file(proposals, tmp_path / "fix")
            assert sorted(written.import_files) == ["C-FIXED", "C-ZERO"]
            journal = Journal(tmp_path / "journal.jsonl")
            submitted = await submit_proposals(client, written, journal=journal)
            for item in submitted.values():
                await asyncio.to_thread(lms.wait_import, item.id)
            # What the admin was told is what the LMS now holds, once per fixed learner.
            assert queue(lms) == [("u1", "pars", "ama", 1.0), ("u4", "ams", "ancc", 1.0)]
            assert count(lms, "SELECT count(*) FROM credit_records WHERE source = 'import' AND user_id IN "
                              "(SELECT id FROM users WHERE external_user_id IN ('u1', 'u4'))") == 0
            # u2 (variable) and u3 (complete) were left alone.
            assert count(lms, "SELECT count(*) FROM credit_records WHERE source = 'import'") == 2

            # Submitting the same proposals again is the same imports, not new ones.
            again = await submit_proposals(client, written, journal=journal)
            assert {c: i.id for c, i in again.items()} == {c: i.id for c, i in submitted.items()}
            assert count(lms, "SELECT count(*) FROM imports") == 2
            assert queue(lms) == [("u1", "pars", "ama", 1.0), ("u4", "ams", "ancc", 1.0)]
            # And nothing is left to propose for the fixed learners.
            left = await propose_credit_fixes(client)
            assert {(p.learner, p.proposed) for p in left} == {("u2", False), ("u3", False)}


def test_cli_credit_fix_for_a_file_skips_unknown_users_and_variable_credit(monkeypatch, tmp_path, capsys):
    with start_sandbox(dataset(users=learners(3)), rows_per_second=1000) as lms:
        _cli(monkeypatch, tmp_path, lms)
        source = tmp_path / "completions.csv"
        source.write_bytes(b"external_user_id,external_course_id,complete,date_completed,credit_type,credits\r\n"
                           b"u1,C-FIXED,1,2026-02-01,ama,1.0\r\n"
                           b"ghost,C-FIXED,1,2026-02-01,ama,1.0\r\n"
                           b"u2,C-VAR,1,2026-02-01,ama,1.5\r\n"
                           b"u3,C-FIXED,1,2026-02-01,cme_other,\r\n")
        # In text, the admin is told which rows of the file the proposals replace.
        main(["credit-fix", "--file", str(source), "--out", str(tmp_path / "out2"), "--date", "file"])
        assert f"replace rows 1 of {source}: import the other rows without them" in capsys.readouterr().out
        code = main(["credit-fix", "--file", str(source), "--out", str(tmp_path / "out"), "--submit", "--yes", "--json",
                     "--date", "file"])
        out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert code == 1  # some rows need the admin's hand
        decided = {(p["external_user_id"], p["course_external_id"]): p for p in out["proposals"]}
        assert set(decided) == {("u1", "C-FIXED"), ("ghost", "C-FIXED"), ("u2", "C-VAR")}  # cme_other reports nowhere
        assert decided[("u1", "C-FIXED")]["proposed"] and decided[("u1", "C-FIXED")]["rows"] == [1]
        assert not decided[("ghost", "C-FIXED")]["proposed"] and "does not exist" in decided[("ghost", "C-FIXED")]["reason"]
        assert not decided[("u2", "C-VAR")]["proposed"]
        assert [s["course_external_id"] for s in out["submitted"]] == ["C-FIXED"]
        lms.wait_import(out["submitted"][0]["import_id"])
        assert queue(lms) == [("u1", "pars", "ama", 1.0)]
        assert (tmp_path / "out" / "credit-fix-C-FIXED.csv").read_bytes() == (
            b"external_user_id,external_email,complete,date_completed\r\nu1,,1,2026-02-01\r\n")
        assert lms.admin_token not in json.dumps(out)


async def test_credit_fix_for_one_import_looks_only_at_that_imports_credit(tmp_path):
    """`--import ID`: credit put on incomplete enrollments by that import (behaviour 4) only."""
    with start_sandbox(dataset(users=learners(6), enrollments=ENROLLMENTS), rows_per_second=1000) as lms:
        response = lms.submit(b"external_user_id,complete,credit_type,credits\r\nu6,0,ama,1.0\r\n", course="C-FIXED")
        item = lms.wait_import(response.json()["id"])
        assert item["state"] == "completed"
        async with client_for(lms) as client:
            proposals = await propose_credit_fixes(client, import_id=item["id"])
        assert [(p.learner, p.course_external_id, p.kind, p.proposed) for p in proposals] == [
            ("u6", "C-FIXED", "credit-on-incomplete", True)]
        assert proposals[0].current_credit == (("ama", 1.0, "import"),)


def _incomplete(user, course, credit_type):
    return {"external_user_id": user, "course_external_id": course, "status": "incomplete",
            "credits": [{"credit_type": credit_type, "amount": 1.0, "source": "import"}]}


# Fixes in two courses: the course importer's one lock means one import after the other.
TWO_COURSES = [_incomplete("u1", "C-FIXED", "ama"), _incomplete("u2", "C-FIXED", "ama"),
               _incomplete("u3", "C-FIXED", "ama"), _incomplete("u4", "C-ZERO", "ancc"),
               _incomplete("u5", "C-ZERO", "ancc")]
FIXED_QUEUE = [("u1", "pars", "ama", 1.0), ("u2", "pars", "ama", 1.0), ("u3", "pars", "ama", 1.0),
               ("u4", "ams", "ancc", 1.0), ("u5", "ams", "ancc", 1.0)]


def test_cli_submit_sends_course_after_course_and_each_learner_is_queued_once(monkeypatch, tmp_path, capsys):
    # 20 rows/s: C-FIXED's import still runs when C-ZERO is ready to go (a second import at once gets 423).
    with start_sandbox(dataset(users=learners(5), enrollments=TWO_COURSES), rows_per_second=20) as lms:
        _cli(monkeypatch, tmp_path, lms)
        code = main(["credit-fix", "--out", str(tmp_path / "out"), "--submit", "--yes", "--date", "today"])
        out = capsys.readouterr()
        assert code == 0, out.err
        rows = lms.db().execute("SELECT course_external_id, state, rows_total FROM imports ORDER BY id").fetchall()
        assert [tuple(r) for r in rows] == [("C-FIXED", "completed", 3), ("C-ZERO", "completed", 2)]
        assert queue(lms) == FIXED_QUEUE
        # What the admin read: each course, its import, and that it ended.
        assert "Course 1 of 2: C-FIXED" in out.out and "Course 2 of 2: C-ZERO" in out.out
        assert "Submitted C-FIXED: import 1 ended completed." in out.out
        assert "Submitted C-ZERO: import 2 ended completed." in out.out


async def test_someone_elses_import_on_the_lock_stops_the_rest_and_says_what_was_submitted(tmp_path):
    with start_sandbox(dataset(users=learners(5), enrollments=TWO_COURSES), rows_per_second=200) as lms:
        async with client_for(lms) as client:
            proposals = await propose_credit_fixes(client)
            written = write_proposal_file(proposals, tmp_path / "fix")
            journal = Journal(tmp_path / "journal.jsonl")
            steps, other = [], {}

            def on_progress(step):
                steps.append((step.course, step.phase, step.import_.state if step.import_ else None))
                if step.course == "C-FIXED" and step.phase == "ended" and not other:
                    # Another admin starts an import (one that hangs) between our two courses.
                    response = lms.submit(course_file(3, bad_row=1), course="C-ZERO")
                    assert response.status_code == 201, response.text
                    other.update(response.json())

            with pytest.raises(CreditFixStopped) as stopped:
                await submit_proposals(client, written, journal=journal, on_progress=on_progress, poll_interval=0.05)
            sentence = str(stopped.value)
            assert f"locked by import {other['id']}" in sentence
            assert "Submitted: C-FIXED as import 1 (completed). Not submitted: C-ZERO;" in sentence
            assert list(stopped.value.submitted) == ["C-FIXED"] and stopped.value.not_submitted == ["C-ZERO"]
            assert ("C-FIXED", "waiting", "running") in steps or ("C-FIXED", "waiting", "queued") in steps
            # Nothing was sent for C-ZERO: the LMS holds our import and the other admin's, no more.
            assert count(lms, "SELECT count(*) FROM imports") == 2
            assert queue(lms) == FIXED_QUEUE[:3]
            assert [e.outcome for e in journal.entries() if e.action == "submit"] == ["created", "refused"]

            # Once the other import is unlocked, submitting again sends only what was not sent.
            await client.unlock("course", other["id"])
            again = await submit_proposals(client, written, journal=journal, poll_interval=0.05)
            assert again["C-FIXED"].id == 1 and again["C-ZERO"].state == "completed"
            assert count(lms, "SELECT count(*) FROM imports") == 3
            assert queue(lms) == FIXED_QUEUE


async def test_waiting_for_an_import_is_bounded_when_it_stops_moving(tmp_path):
    from importconsole.operations.credit_fix import wait_for_import_end

    with start_sandbox(dataset(users=learners(3)), rows_per_second=200) as lms:
        hung = lms.submit(course_file(3, bad_row=2), course="C-FIXED").json()
        async with client_for(lms) as client:
            item = await client.get_import(hung["id"])
            seen = []
            with pytest.raises(TimeoutError, match=f"Import {hung['id']} has not moved for 0.5 s .*may be hung"):
                await wait_for_import_end(client, item, poll_interval=0.05, stall_timeout=0.5,
                                          on_progress=lambda i: seen.append(i.rows_processed))
            assert seen and seen[-1] == 1  # it was followed until it stopped at row 2
            assert lms.get_import(hung["id"])["state"] == "running"  # waiting never changes anything


def _cli(monkeypatch, tmp_path, lms):
    """The CLI on this LMS: one profile (not named the default), the site admin's token, a private journal."""
    use_env(monkeypatch, profile_env(tmp_path, lms, default=False))


def test_cli_credit_fix_file_keeps_the_rows_pars_fields_on_the_completion(monkeypatch, tmp_path, capsys):
    """A completion-only row made from a file row keeps what PARS counts (enrollment_start,
    participant_category) and the learner's names: only the credit is dropped."""
    with start_sandbox(dataset(users=learners(3)), rows_per_second=1000) as lms:
        _cli(monkeypatch, tmp_path, lms)
        source = tmp_path / "course.csv"  # a course-level file: no external_course_id column
        source.write_bytes(b"external_user_id,first_name,last_name,enrollment_start,complete,date_completed,"
                           b"credit_type,credits,participant_category\r\n"
                           b"u1,Ana,Lopez,2026-01-10,1,2026-02-01,ama,1.0,physician\r\n")
        code = main(["credit-fix", "--file", str(source), "--course", "C-FIXED", "--out", str(tmp_path / "out"),
                     "--submit", "--yes", "--json", "--date", "file"])
        out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert code == 0, out
        rows = list(csv.DictReader(io.StringIO((tmp_path / "out" / "credit-fix-C-FIXED.csv").read_text())))
        assert rows == [{"external_user_id": "u1", "external_email": "", "complete": "1", "date_completed": "2026-02-01",
                         "first_name": "Ana", "last_name": "Lopez", "enrollment_start": "2026-01-10",
                         "participant_category": "physician"}]
        lms.wait_import(out["submitted"][0]["import_id"])
        assert queue(lms) == [("u1", "pars", "ama", 1.0)]
        pars = lms.client().get("/reports/pars", params={"course_external_id": "C-FIXED"}).json()["items"]
        assert [(p["external_user_id"], p["enrollment_start"], p["participant_category"], p["date_completed"])
                for p in pars] == [("u1", "2026-01-10", "physician", "2026-02-01")]


def test_cli_credit_fix_reads_the_header_as_the_lms_does_case_and_spaces_aside(monkeypatch, tmp_path, capsys):
    """`External_User_ID` and ` Credit_Type ` name their columns on the LMS (and for validate): the
    credit fix finds the learner and the credit there too, instead of a learner with no id."""
    with start_sandbox(dataset(users=learners(3)), rows_per_second=1000) as lms:
        _cli(monkeypatch, tmp_path, lms)
        source = tmp_path / "excel.csv"
        source.write_bytes(b"External_User_ID,External_Course_ID,Complete,Date_Completed, Credit_Type ,CREDITS\r\n"
                           b"u1,C-FIXED,1,2026-02-01,ama,1.0\r\n")
        code = main(["credit-fix", "--file", str(source), "--out", str(tmp_path / "out"), "--submit", "--yes", "--json",
                     "--date", "file"])
        out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert code == 0, out
        assert [(p["external_user_id"], p["course_external_id"], p["proposed"], p["rows"]) for p in out["proposals"]] \
            == [("u1", "C-FIXED", True, [1])]
        assert (tmp_path / "out" / "credit-fix-C-FIXED.csv").read_bytes() == (
            b"external_user_id,external_email,complete,date_completed\r\nu1,,1,2026-02-01\r\n")
        lms.wait_import(out["submitted"][0]["import_id"])
        assert queue(lms) == [("u1", "pars", "ama", 1.0)]


def test_cli_credit_fix_course_file_without_course_says_to_name_it(monkeypatch, tmp_path, capsys):
    with start_sandbox(dataset(users=learners(1)), rows_per_second=1000) as lms:
        _cli(monkeypatch, tmp_path, lms)
        source = tmp_path / "course.csv"
        source.write_bytes(b"external_user_id,complete,date_completed,credit_type,credits\r\nu1,1,2026-02-01,ama,1.0\r\n")
        assert main(["credit-fix", "--file", str(source), "--out", str(tmp_path / "out")]) == 2
        captured = capsys.readouterr()
        assert "external_course_id" in captured.err and "--course" in captured.err and str(source) in captured.err
        assert "Traceback" not in captured.err and not (tmp_path / "out").exists()


def test_cli_credit_fix_filters_that_name_nothing_say_so_instead_of_nothing_to_fix(monkeypatch, tmp_path, capsys):
    with start_sandbox(dataset(users=learners(1)), rows_per_second=1000) as lms:
        _cli(monkeypatch, tmp_path, lms)
        assert main(["credit-fix", "--import", "999", "--out", str(tmp_path / "out")]) == 2
        captured = capsys.readouterr()
        assert "no import 999" in captured.err and "Nothing to fix" not in captured.out
        assert main(["credit-fix", "--course", "C-NOPE", "--out", str(tmp_path / "out")]) == 2
        captured = capsys.readouterr()
        assert "no course 'C-NOPE'" in captured.err and "Nothing to fix" not in captured.out
        assert not (tmp_path / "out").exists()
        assert main(["credit-fix", "--course", "C-FIXED", "--out", str(tmp_path / "out")]) == 0
        assert "Nothing to fix" in capsys.readouterr().out
        (tmp_path / "a-file").write_text("")
        assert main(["credit-fix", "--out", str(tmp_path / "a-file")]) == 2
        captured = capsys.readouterr()
        assert "cannot write the proposal files to" in captured.err and "--out DIR" in captured.err
        assert "unexpected problem" not in captured.err


def test_cli_credit_fix_asks_the_date_and_the_confirmation_on_the_terminal_not_on_stdout(monkeypatch, tmp_path, capsys):
    """Both questions go through the CLI's one way of asking (cli.common.ask): on stderr, so a
    redirected stdout (a log) never swallows them; "n" sends nothing."""
    import sys

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    with start_sandbox(dataset(users=learners(5), enrollments=TWO_COURSES), rows_per_second=1000) as lms:
        _cli(monkeypatch, tmp_path, lms)
        monkeypatch.setattr(sys, "stdin", Terminal("2026-05-05\nn\n"))
        screen = Terminal()
        monkeypatch.setattr(sys, "stderr", screen)
        assert main(["credit-fix", "--out", str(tmp_path / "out"), "--submit"]) == 1
        assert count(lms, "SELECT count(*) FROM imports") == 0
    out = capsys.readouterr().out
    asked = screen.getvalue()
    assert "date_completed for these completion-only rows: today, file (the file's own dates) or YYYY-MM-DD? " in asked
    assert "Submit 5 completion-only rows, dated 2026-05-05, through the course-level importer" in asked
    assert asked.rstrip().endswith("[y/N]") and "date_completed for" not in out and "[y/N]" not in out
    assert "Nothing was submitted" in out
    rows = list(csv.DictReader(io.StringIO((tmp_path / "out" / "credit-fix-C-FIXED.csv").read_text())))
    assert {r["date_completed"] for r in rows} == {"2026-05-05"}


def test_cli_credit_fix_asks_the_completion_date_once_and_shows_it_in_the_confirmation(monkeypatch, tmp_path, capsys):
    """Proposals no longer take today silently: the batch's date is chosen (--date) and confirmed."""
    with start_sandbox(dataset(users=learners(5), enrollments=TWO_COURSES), rows_per_second=1000) as lms:
        _cli(monkeypatch, tmp_path, lms)
        assert main(["credit-fix", "--out", str(tmp_path / "out"), "--submit", "--yes"]) == 2
        captured = capsys.readouterr()
        assert "Which date_completed should these completion-only rows carry? Give --date today" in captured.err
        assert not (tmp_path / "out").exists() and count(lms, "SELECT count(*) FROM imports") == 0
        assert main(["credit-fix", "--out", str(tmp_path / "out"), "--date", "file"]) == 2
        assert "--date file needs --file" in capsys.readouterr().err
        assert main(["credit-fix", "--out", str(tmp_path / "out"), "--date", "03/04/2026"]) == 2
        assert "give today, file or a date like 2026-03-01" in capsys.readouterr().err
        # No --yes and no terminal: the confirmation is shown, nothing is sent.
        assert main(["credit-fix", "--out", str(tmp_path / "out"), "--submit", "--date", "2026-05-05"]) == 1
        captured = capsys.readouterr()
        assert "Nothing was submitted" in captured.out
        assert "Submit 5 completion-only rows, dated 2026-05-05, through the course-level importer" in captured.err
        assert "(one import per course: C-FIXED, C-ZERO)?" in captured.err  # each row holds what it gets
        assert "complete on 2026-05-05 (the date given for this batch)" in captured.out
        rows = list(csv.DictReader(io.StringIO((tmp_path / "out" / "credit-fix-C-FIXED.csv").read_text())))
        assert {r["date_completed"] for r in rows} == {"2026-05-05"}
        assert count(lms, "SELECT count(*) FROM imports") == 0
