"""The example files do against the demo LMS what examples/README.md says (and match their generator)."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _submit(lms, name: str, course: str | None = None, importer: str = "course") -> dict:
    r = lms.submit((EXAMPLES / name).read_bytes(), importer=importer, course=course, file_name=name)
    assert r.status_code == 201, r.text
    return r.json()


def _unlock(lms, imp: dict) -> None:
    assert lms.client().post(f"/locks/{imp['importer']}/unlock", json={"import_id": imp["id"]}).status_code == 200


def test_the_committed_examples_are_what_the_generator_writes(tmp_path):
    spec = importlib.util.spec_from_file_location("make_examples", EXAMPLES / "make_examples.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(tmp_path)
    for path in sorted(tmp_path.iterdir()):
        assert (EXAMPLES / path.name).read_bytes() == path.read_bytes(), f"regenerate examples/{path.name}"


@pytest.mark.parametrize("name, importer, course", [
    ("course-import-clean.csv", "course", "CARD-101"),
    ("global-import-clean.csv", "global", None),
])
def test_the_clean_files_import_completely(demo_sandbox, name, importer, course):
    imp = demo_sandbox.wait_import(_submit(demo_sandbox, name, course, importer)["id"])
    assert (imp["state"], imp["rows_failed"], imp["rows_held"]) == ("completed", 0, 0)
    assert imp["rows_processed"] == imp["rows_total"] > 0


def test_partial_credit_example_records_the_maximum(demo_sandbox):
    demo_sandbox.wait_import(_submit(demo_sandbox, "rule-partial-credit-not-variable.csv", "CARD-101")["id"])
    amount = demo_sandbox.db().execute(
        "SELECT cr.amount FROM credit_records cr JOIN users u ON u.id = cr.user_id "
        "WHERE u.external_user_id = 'U0019' AND cr.credit_type = 'ama'").fetchone()[0]
    assert amount == 1.5


def test_would_update_example_is_refused(demo_sandbox):
    imp = demo_sandbox.wait_import(_submit(demo_sandbox, "rule-would-update-existing.csv", "CARD-101")["id"])
    assert (imp["state"], imp["rows_failed"]) == ("completed_with_errors", 1)


def test_course_shell_example_makes_a_shell(demo_sandbox):
    demo_sandbox.wait_import(_submit(demo_sandbox, "rule-course-shell-no-certificate.csv", importer="global")["id"])
    shell = demo_sandbox.db().execute("SELECT has_certificate, is_shell FROM courses WHERE external_id = 'LEGACY-2015'").fetchone()
    assert tuple(shell) == (0, 1)


@pytest.mark.parametrize("name, stops_after", [
    ("hangs-the-importer.csv", 6),
    ("rule-special-characters.csv", 1),
    ("rule-header-whitespace.csv", 0),
])
def test_the_hanging_examples_hang(demo_sandbox, name, stops_after):
    imp = _submit(demo_sandbox, name, "CARD-101")
    demo_sandbox.wait_rows(imp["id"], stops_after)
    time.sleep(0.2)  # 40 rows' worth at 200 rows/s
    now = demo_sandbox.get_import(imp["id"])
    assert (now["state"], now["rows_processed"]) == ("running", stops_after)
    _unlock(demo_sandbox, imp)


def test_duplicate_credit_row_example_refuses_the_second_row(demo_sandbox):
    imp = demo_sandbox.wait_import(_submit(demo_sandbox, "rule-duplicate-credit-row.csv", "CARD-101")["id"])
    assert (imp["state"], imp["rows_failed"]) == ("completed_with_errors", 1)
    amounts = [r[0] for r in demo_sandbox.db().execute(
        "SELECT cr.amount FROM credit_records cr JOIN users u ON u.id = cr.user_id "
        "WHERE u.external_user_id = 'U0024' AND cr.credit_type = 'ama'")]
    assert amounts == [1.5]


def test_new_user_example_waits_then_completes_with_full_credit_when_the_account_appears(demo_sandbox):
    imp = demo_sandbox.wait_import(_submit(demo_sandbox, "rule-new-user-no-required-objects.csv", "NURS-301")["id"])
    assert (imp["state"], imp["rows_held"]) == ("completed", 1)
    r = demo_sandbox.client().post("/users", json={"external_user_id": "U9001", "email": "u9001@example.org"})
    assert r.json()["assigned_rows"] == 1
    rows = demo_sandbox.db().execute(
        "SELECT e.status, cr.credit_type, cr.amount, cr.source FROM enrollments e JOIN users u ON u.id = e.user_id "
        "JOIN credit_records cr ON cr.enrollment_id = e.id WHERE u.external_user_id = 'U9001'").fetchall()
    assert [tuple(r) for r in rows] == [("complete", "ancc", 1.0, "awarded")]
