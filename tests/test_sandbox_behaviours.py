"""Behaviours 1-7 of DOMAIN.md, traps included: what the LMS holds after an import (checked in its DB)."""

from __future__ import annotations

import pytest

from helpers.sandbox import dataset, start_sandbox


def _credit(db, user: str, course: str):
    return db.execute(
        """SELECT cr.credit_type, cr.amount, cr.source, e.status FROM credit_records cr
           JOIN enrollments e ON e.id = cr.enrollment_id JOIN users u ON u.id = cr.user_id
           JOIN courses c ON c.id = cr.course_id WHERE u.external_user_id = ? AND c.external_id = ? ORDER BY cr.id""",
        (user, course),
    ).fetchall()


def _import(sandbox, body: str, **kwargs) -> dict:
    r = sandbox.submit(body.encode(), **kwargs)
    assert r.status_code == 201, r.text
    return sandbox.wait_import(r.json()["id"])


def test_1_partial_credit_on_a_non_variable_type_records_the_maximum(sandbox):
    _import(sandbox, "external_user_id,complete,date_completed,credit_type,credits\nu1,1,2026-04-01,ama,0.5\n",
            course="C-FIXED")
    assert [tuple(r) for r in _credit(sandbox.db(), "u1", "C-FIXED")] == [("ama", 1.0, "import", "complete")]


def test_1_variable_credit_records_the_amount_given(sandbox):
    _import(sandbox, "external_user_id,complete,credit_type,credits\nu1,1,ama,0.75\n", course="C-VAR")
    assert [tuple(r) for r in _credit(sandbox.db(), "u1", "C-VAR")] == [("ama", 0.75, "import", "complete")]


def test_2_an_unknown_course_on_the_global_importer_makes_a_shell_without_certificate(sandbox):
    body = "external_user_id,external_course_id,title,complete\nu1,NEW-9,Legacy course 9,1\nu2,C-FIXED,x,1\n"
    imp = _import(sandbox, body, importer="global")
    assert imp["state"] == "completed"
    shell = sandbox.db().execute("SELECT * FROM courses WHERE external_id = 'NEW-9'").fetchone()
    assert (shell["title"], shell["has_certificate"], shell["required_objects"], shell["is_shell"]) == \
        ("Legacy course 9", 0, 0, 1)
    course = sandbox.client().get("/courses", params={"external_id": "NEW-9"}).json()["items"][0]
    assert (course["has_certificate"], course["is_shell"]) == (False, True)
    assert sandbox.db().execute("SELECT count(*) FROM courses").fetchone()[0] == 4


def test_2_the_course_importer_never_makes_a_shell(sandbox):
    r = sandbox.submit(b"external_user_id,complete\nu1,1\n", course="NOT-A-COURSE")
    assert (r.status_code, r.json()["error"]) == (404, "not_found")
    assert sandbox.db().execute("SELECT count(*) FROM imports").fetchone()[0] == 0


def test_3_an_unknown_user_waits_in_the_holding_table_and_completes_at_once_with_0_required_objects(sandbox):
    body = "external_user_id,external_email,complete,credit_type,credits\nnew1,new1@example.org,0,,\n"
    imp = _import(sandbox, body, course="C-ZERO")
    assert (imp["rows_held"], imp["rows_processed"]) == (1, 1)
    db = sandbox.db()
    assert db.execute("SELECT count(*) FROM held_rows WHERE assigned_user_id IS NULL").fetchone()[0] == 1
    assert db.execute("SELECT count(*) FROM enrollments").fetchone()[0] == 0
    r = sandbox.client().post("/users", json={"external_user_id": "new1", "email": "New1@Example.org"})
    assert (r.status_code, r.json()["assigned_rows"]) == (201, 1)
    # The row said complete=0 and no credit: the LMS completes it anyway, every credit type at its max.
    assert [tuple(r) for r in _credit(db, "new1", "C-ZERO")] == [("ancc", 1.0, "awarded", "complete")]
    assert db.execute("SELECT count(*) FROM held_rows WHERE assigned_user_id IS NOT NULL").fetchone()[0] == 1


def test_3_a_held_row_for_a_course_with_required_objects_is_applied_as_written(sandbox):
    _import(sandbox, "external_email,complete\nlater@example.org,0\n", course="C-FIXED")
    r = sandbox.client().post("/users", json={"email": "later@example.org"})
    assert r.json()["assigned_rows"] == 1
    row = sandbox.db().execute("SELECT e.status FROM enrollments e JOIN users u ON u.id = e.user_id "
                               "WHERE u.email_lower = 'later@example.org'").fetchone()
    assert row["status"] == "incomplete"


def test_4_complete_0_with_credits_stores_credit_on_the_incomplete_enrollment(sandbox):
    _import(sandbox, "external_user_id,complete,credit_type,credits\nu1,0,ama,1\n", course="C-FIXED")
    assert [tuple(r) for r in _credit(sandbox.db(), "u1", "C-FIXED")] == [("ama", 1.0, "import", "incomplete")]
    listed = sandbox.client().get("/credit-records", params={"complete": "false", "source": "import"}).json()["items"]
    assert [(c["credit_type"], c["amount"]) for c in listed] == [("ama", 1.0)]


def test_5_completing_an_incomplete_enrollment_replaces_its_credit():
    data = dataset(enrollments=[{"external_user_id": "u1", "course_external_id": "C-FIXED", "status": "incomplete",
                                 "credits": [{"credit_type": "ama", "amount": 1.0, "source": "import"}]}])
    with start_sandbox(data) as lms:
        _import(lms, "external_user_id,complete,date_completed\nu1,1,2026-05-01\n", course="C-FIXED")
        db = lms.db()
        # The page's workaround: a completion-only re-import replaces the imported credit with awarded credit.
        assert [tuple(r) for r in _credit(db, "u1", "C-FIXED")] == [("ama", 1.0, "awarded", "complete")]
        assert [r["entity"] for r in db.execute("SELECT entity FROM reporting_queue")] == ["pars"]


def test_5_a_row_for_a_complete_enrollment_is_refused_and_the_rest_goes_on():
    data = dataset(enrollments=[{"external_user_id": "u1", "course_external_id": "C-FIXED", "status": "complete",
                                 "date_completed": "2026-01-01",
                                 "credits": [{"credit_type": "ama", "amount": 1.0, "source": "awarded"}]}])
    with start_sandbox(data) as lms:
        imp = _import(lms, "external_user_id,complete,credit_type,credits\nu1,1,ama,0.5\nu2,1,,\n", course="C-FIXED")
        assert (imp["state"], imp["rows_processed"], imp["rows_failed"]) == ("completed_with_errors", 2, 1)
        rows = lms.client().get(f"/imports/{imp['id']}/rows").json()["items"]
        assert [(r["row"], r["status"]) for r in rows] == [(1, "refused"), (2, "imported")]
        assert "cannot update" in rows[0]["message"]
        assert [tuple(r) for r in _credit(lms.db(), "u1", "C-FIXED")] == [("ama", 1.0, "awarded", "complete")]


def test_6_completion_without_credit_is_awarded_and_queued_but_imported_credit_never_is(sandbox):
    body = "external_user_id,complete,credit_type,credits\nu1,1,,\nu2,1,ama,1\n"
    _import(sandbox, body, course="C-FIXED")
    db = sandbox.db()
    assert [tuple(r) for r in _credit(db, "u1", "C-FIXED")] == [("ama", 1.0, "awarded", "complete")]
    assert [tuple(r) for r in _credit(db, "u2", "C-FIXED")] == [("ama", 1.0, "import", "complete")]
    queue = sandbox.client().get("/reporting-queue").json()["items"]
    u1 = db.execute("SELECT id FROM users WHERE external_user_id = 'u1'").fetchone()[0]
    assert [(q["entity"], q["user_id"], q["credit_type"], q["amount"]) for q in queue] == [("pars", u1, "ama", 1.0)]


def test_6_variable_credit_is_never_awarded_automatically(sandbox):
    _import(sandbox, "external_user_id,complete\nu1,1\n", course="C-VAR")
    assert _credit(sandbox.db(), "u1", "C-VAR") == []
    assert sandbox.db().execute("SELECT count(*) FROM reporting_queue").fetchone()[0] == 0


def test_7_global_importer_records_are_left_out_of_pars(sandbox):
    _import(sandbox, "external_user_id,complete,credit_type,credits\nu1,1,ama,1\n", course="C-FIXED")
    _import(sandbox, "external_user_id,external_course_id,title,complete\nu2,C-FIXED,x,1\n", importer="global")
    report = sandbox.client().get("/reports/pars", params={"course_external_id": "C-FIXED"}).json()["items"]
    assert [(r["external_user_id"], r["credit_type"], r["amount"]) for r in report] == [("u1", "ama", 1.0)]
    db = sandbox.db()
    # u2's credit exists in the LMS, it just never reaches PARS.
    assert [tuple(r) for r in _credit(db, "u2", "C-FIXED")] == [("ama", 1.0, "awarded", "complete")]
    assert db.execute("SELECT count(*) FROM reporting_queue WHERE entity = 'pars'").fetchone()[0] == 0


# A course with two non-variable credit types: the page's "Multiple credit types" case.
C_TWO = {"external_id": "C-TWO", "title": "Two credit types", "has_certificate": True, "required_objects": 1,
         "credits": [{"credit_type": "ama", "min": 1.0, "max": 1.0, "increments": 1.0, "enable_variable_credit": False},
                     {"credit_type": "cme_other", "min": 1.0, "max": 1.0, "increments": 1.0,
                      "enable_variable_credit": False}]}


@pytest.fixture
def two_types():
    with start_sandbox(dataset(courses=[*dataset()["courses"], C_TWO]), rows_per_second=200) as lms:
        yield lms


def test_multiple_credit_types_one_row_per_type_are_all_recorded(two_types):
    # The page's "Multiple credit types": one row per credit type for the learner. The second row
    # adds its credit to the enrollment the first row of the SAME import completed: not "cannot update".
    body = ("external_user_id,complete,date_completed,credit_type,credits\n"
            "u1,1,2026-04-01,ama,1\nu1,1,2026-04-01,cme_other,1\nu2,1,2026-04-01,,\n")
    imp = _import(two_types, body, course="C-TWO")
    assert (imp["state"], imp["rows_failed"]) == ("completed", 0)
    db = two_types.db()
    assert [tuple(r) for r in _credit(db, "u1", "C-TWO")] == [("ama", 1.0, "import", "complete"),
                                                             ("cme_other", 1.0, "import", "complete")]
    assert db.execute("SELECT count(*) FROM enrollments").fetchone()[0] == 2


def test_the_same_credit_type_twice_in_one_file_is_refused_the_second_time(two_types):
    # duplicate-credit-row: the second row would update credit the learner holds: "cannot update".
    # So is credit for a type the completion row before it already awarded.
    body = "external_user_id,complete,credit_type,credits\nu1,1,ama,1\nu1,1,ama,1\nu2,1,,\nu2,1,ama,1\n"
    imp = _import(two_types, body, course="C-TWO")
    assert (imp["state"], imp["rows_failed"]) == ("completed_with_errors", 2)
    rows = two_types.client().get(f"/imports/{imp['id']}/rows").json()["items"]
    assert [r["status"] for r in rows] == ["imported", "refused", "imported", "refused"]
    assert "already holds ama credit" in rows[1]["message"]
    db = two_types.db()
    assert [tuple(r) for r in _credit(db, "u1", "C-TWO")] == [("ama", 1.0, "import", "complete")]
    assert [tuple(r) for r in _credit(db, "u2", "C-TWO")] == [("ama", 1.0, "awarded", "complete"),
                                                             ("cme_other", 1.0, "awarded", "complete")]


def test_a_second_import_still_cannot_update_what_the_first_completed(two_types):
    _import(two_types, "external_user_id,complete,credit_type,credits\nu1,1,ama,1\n", course="C-TWO")
    imp = _import(two_types, "external_user_id,complete,credit_type,credits\nu1,1,cme_other,1\n", course="C-TWO")
    assert (imp["state"], imp["rows_failed"]) == ("completed_with_errors", 1)
    assert [tuple(r) for r in _credit(two_types.db(), "u1", "C-TWO")] == [("ama", 1.0, "import", "complete")]


def test_a_completion_row_then_an_incomplete_row_for_the_same_learner_is_refused(two_types):
    body = "external_user_id,complete\nu1,1\nu1,0\n"
    imp = _import(two_types, body, course="C-TWO")
    assert (imp["state"], imp["rows_failed"]) == ("completed_with_errors", 1)
    rows = two_types.client().get(f"/imports/{imp['id']}/rows").json()["items"]
    assert [r["status"] for r in rows] == ["imported", "refused"]
    # The completion was awarded once, every non-variable type of the course.
    assert [tuple(r) for r in _credit(two_types.db(), "u1", "C-TWO")] == [("ama", 1.0, "awarded", "complete"),
                                                                        ("cme_other", 1.0, "awarded", "complete")]


def test_2_a_shell_takes_the_legacy_credit_as_given_and_a_failed_row_leaves_no_shell(sandbox):
    body = ("external_user_id,external_course_id,title,complete,date_completed,credit_type,credits\n"
            "u1,NEW-1,Legacy 1,1,2015-06-01,ama,2.5\n"
            "u2,NEW-2,Legacy 2,1,2015-06-01,nope,2.5\n")
    imp = _import(sandbox, body, importer="global")
    assert (imp["state"], imp["rows_failed"]) == ("completed_with_errors", 1)
    db = sandbox.db()
    assert [tuple(r) for r in _credit(db, "u1", "NEW-1")] == [("ama", 2.5, "import", "complete")]
    # The failed row changed nothing: no shell for NEW-2.
    assert db.execute("SELECT count(*) FROM courses WHERE external_id = 'NEW-2'").fetchone()[0] == 0
