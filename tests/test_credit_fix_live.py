"""Credit fixes against the real reference LMS: after the fix the reporting queue holds the
expected entries for each fixed learner, once; nothing is proposed for variable credit or
unknown users."""

import asyncio
import json

from test_operations_support import client_for, count, dataset, learners, start_sandbox

from importconsole.cli import main
from importconsole.journal import Journal
from importconsole.operations.credit_fix import propose_credit_fixes, submit_proposals, write_proposal_file

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
        config = tmp_path / "config.toml"
        config.write_text(f'[profiles.t]\nbase_url = "{lms.base_url}"\nusername = "admin"\n', encoding="utf-8")
        monkeypatch.setenv("IMPORTCONSOLE_CONFIG", str(config))
        monkeypatch.setenv("IMPORTCONSOLE_TOKEN", lms.admin_token)
        monkeypatch.setenv("IMPORTCONSOLE_STATE_DIR", str(tmp_path / "state"))
        source = tmp_path / "completions.csv"
        source.write_bytes(b"external_user_id,external_course_id,complete,date_completed,credit_type,credits\r\n"
                           b"u1,C-FIXED,1,2026-02-01,ama,1.0\r\n"
                           b"ghost,C-FIXED,1,2026-02-01,ama,1.0\r\n"
                           b"u2,C-VAR,1,2026-02-01,ama,1.5\r\n"
                           b"u3,C-FIXED,1,2026-02-01,cme_other,\r\n")
        code = main(["credit-fix", "--file", str(source), "--out", str(tmp_path / "out"), "--submit", "--yes", "--json"])
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
