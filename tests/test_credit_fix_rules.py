"""Who gets a completion-only row (page: "Reporting credit to external entities"), decided
without the LMS: user exists, enrollment not complete, no variable credit in play."""

import csv
import io
import os
import stat

from importconsole.lms.models import Course, CourseCredit, CreditType
from importconsole.operations.credit_fix import (
    KIND_INCOMPLETE, CompletionOnlyProposal, _Learner, decide, proposal_import_file, write_proposal_file,
)

TYPES = {
    "ama": CreditType("ama", "AMA PRA Category 1", ("pars",)),
    "ancc": CreditType("ancc", "Nursing contact hours", ("ams",)),
    "acpe": CreditType("acpe", "Pharmacy CPE", ("cpe_monitor",)),
}
COURSE = Course(1, "CARD-101", "Cardiology", credits=(
    CourseCredit("ama", 0, 2.0, 0.25, False),
    CourseCredit("ancc", 0, 1.5, 0.25, False),
    CourseCredit("acpe", 0, 3.0, 0.25, True),
))


def learner(*credit, ext="u1"):
    return _Learner(KIND_INCOMPLETE, "CARD-101", ext, None, 7, credit=list(credit), date_completed="2026-11-28")


def test_incomplete_enrollment_with_imported_non_variable_credit_gets_a_completion_only_row():
    p = decide(learner(("ama", 1.0, "import")), user_exists=True, enrollment_status="incomplete",
               enrollment_credit=[("ama", 1.0, "import")], course=COURSE, credit_types=TYPES)
    assert p.proposed
    # The LMS awards every non-variable type of the course at its max and reports each.
    assert [(a.credit_type, a.amount, a.reports_to) for a in p.awards] == [("ama", 2.0, ("pars",)), ("ancc", 1.5, ("ams",))]
    assert "2 ama (awarded, reported to PARS) and 1.5 ancc (awarded, reported to the AMS)" in p.describe()
    assert p.import_row() == {"external_user_id": "u1", "external_email": "", "complete": "1", "date_completed": "2026-11-28"}


def test_variable_credit_is_never_proposed():
    p = decide(learner(("acpe", 1.0, "import")), user_exists=True, enrollment_status="incomplete",
               enrollment_credit=[("acpe", 1.0, "import")], course=COURSE, credit_types=TYPES)
    assert not p.proposed and p.awards == ()
    assert "variable credit is enabled for acpe" in p.reason and p.by_hand


def test_completing_would_drop_variable_credit_already_on_the_enrollment():
    p = decide(learner(("ama", 1.0, "import")), user_exists=True, enrollment_status="incomplete",
               enrollment_credit=[("ama", 1.0, "import"), ("acpe", 2.0, "import")], course=COURSE, credit_types=TYPES)
    assert not p.proposed and "acpe" in p.reason


def test_unknown_users_and_complete_enrollments_are_left_to_the_admin():
    unknown = decide(learner(("ama", 1.0, "row")), user_exists=False, enrollment_status=None,
                     enrollment_credit=[], course=COURSE, credit_types=TYPES)
    assert not unknown.proposed and "does not exist" in unknown.reason and "create" in unknown.by_hand
    complete = decide(learner(("ama", 1.0, "import")), user_exists=True, enrollment_status="complete",
                      enrollment_credit=[("ama", 1.0, "import")], course=COURSE, credit_types=TYPES)
    assert not complete.proposed and "cannot update" in complete.reason
    missing = decide(learner(("ama", 1.0, "row")), user_exists=True, enrollment_status=None,
                     enrollment_credit=[], course=None, credit_types=TYPES)
    assert not missing.proposed and "does not exist" in missing.reason


def test_proposal_files_are_private_and_the_report_escapes_formulas(tmp_path):
    good = decide(learner(("ama", 1.0, "import")), user_exists=True, enrollment_status="incomplete",
                  enrollment_credit=[], course=COURSE, credit_types=TYPES)
    evil = decide(learner(("ama", 1.0, "import"), ext="=HYPERLINK(\"x\")"), user_exists=False,
                  enrollment_status=None, enrollment_credit=[], course=COURSE, credit_types=TYPES)
    written = write_proposal_file([good, evil], tmp_path / "out")
    assert list(written.import_files) == ["CARD-101"]
    for path in [*written.import_files.values(), written.report]:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    rows = list(csv.reader(io.StringIO(written.import_files["CARD-101"].read_text())))
    assert rows == [["external_user_id", "external_email", "complete", "date_completed"], ["u1", "", "1", "2026-11-28"]]
    report = list(csv.DictReader(io.StringIO(written.report.read_text())))
    assert [r["proposed"] for r in report] == ["yes", "no"]
    assert report[1]["learner"].startswith("'=")
    assert proposal_import_file([good]).startswith(b"external_user_id,")
    assert isinstance(good, CompletionOnlyProposal)


def test_what_a_proposal_will_do_names_the_completion_date_and_what_it_replaces():
    today = learner(("ama", 1.0, "import"))
    today.date_is_today = True
    p = decide(today, user_exists=True, enrollment_status="incomplete", enrollment_credit=[("ama", 1.0, "import")],
               course=COURSE, credit_types=TYPES)
    text = p.describe()
    assert ("marks it complete on 2026-11-28 (today, unless another date is chosen for the batch when it is sent: "
            "the LMS has no completion date for it)") in text
    assert "replacing that credit, with 2 ama (awarded, reported to PARS) and 1.5 ancc" in text
    from_file = _Learner("file-row", "CARD-101", "u1", None, None, credit=[("ama", 1.0, "row")], rows=[3])
    p = decide(from_file, user_exists=True, enrollment_status=None, enrollment_credit=[], course=COURSE, credit_types=TYPES)
    assert "no date_completed (the LMS uses the learner's next login date)" in p.describe()
    assert "replacing" not in p.describe()


def test_a_proposal_that_awards_more_than_is_held_now_says_so():
    p = decide(learner(("ama", 1.0, "import")), user_exists=True, enrollment_status="incomplete",
               enrollment_credit=[("ama", 1.0, "import")], course=COURSE, credit_types=TYPES)
    assert p.beyond_current() == ["ama 1 -> 2", "+1.5 ancc"]
    assert p.describe().endswith("That is more than it holds now: ama 1 -> 2 and +1.5 ancc.")
    same = decide(learner(("ama", 2.0, "import"), ("ancc", 1.5, "import")), user_exists=True,
                  enrollment_status="incomplete", enrollment_credit=[], course=COURSE, credit_types=TYPES)
    assert same.beyond_current() == [] and "more than it holds now" not in same.describe()
