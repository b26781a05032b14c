"""The built-in demo dataset covers what the console's rules and workflows need (docs/sandbox.md)."""

from __future__ import annotations

from importconsole.sandbox.dataset import demo_dataset


def test_the_demo_is_deterministic():
    assert demo_dataset() == demo_dataset()


def test_the_demo_covers_every_reporting_entity_and_course_shape(demo_sandbox):
    client = demo_sandbox.client()
    types = {t["machine_name"]: t["reports_to"] for t in client.get("/credit-types").json()["items"]}
    assert types == {"ama": ["pars"], "moc_abim": ["pars"], "acpe": ["cpe_monitor"], "ancc": ["ams"], "cme_other": []}
    courses = client.get("/courses").json()["items"]
    credits = [c for course in courses for c in course["credits"]]
    assert {c["enable_variable_credit"] for c in credits} == {True, False}
    assert 0 in {c["required_objects"] for c in courses} and max(c["required_objects"] for c in courses) >= 3
    assert {c["has_certificate"] for c in courses} == {True, False}


def test_the_demo_has_hundreds_of_users_and_incomplete_enrollments_with_imported_credit(demo_sandbox):
    db = demo_sandbox.db()
    assert db.execute("SELECT count(*) FROM users").fetchone()[0] >= 300
    statuses = {r[0] for r in db.execute("SELECT DISTINCT status FROM enrollments")}
    assert statuses == {"complete", "incomplete"}
    records = demo_sandbox.client().get("/credit-records", params={"complete": "false", "source": "import",
                                                                    "course_external_id": "CARD-101"}).json()["items"]
    assert {f"U{n:04d}" for n in range(2, 7)} <= {r["external_user_id"] for r in records}
    assert demo_sandbox.tokens == {"site_admin": "demo-admin-token", "course_admin": "demo-course-admin-token"}
    names = {r[0] for r in db.execute("SELECT first_name FROM users")}
    assert {"José", "Zoë", "Łukasz"} <= names
