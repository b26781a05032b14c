"""One answer to "what will the LMS record for this row, and who is it reported to" (DOMAIN.md behaviours 1-7)."""

from decimal import Decimal

from importconsole.importfile.award import HELD, RECORDED, REFUSED, award_for_row, completion_award, file_says
from importconsole.importfile.facts import CourseCreditFact, CourseFact, CreditTypeFact, EnrollmentFact
from importconsole.importfile.wording import plural, sentence

TYPES = {
    "ama": CreditTypeFact("ama", "AMA", ("pars",)),
    "moc_abim": CreditTypeFact("moc_abim", "ABIM MOC", ("pars",)),
    "acpe": CreditTypeFact("acpe", "ACPE", ("cpe_monitor",)),
    "cme_other": CreditTypeFact("cme_other", "Other", ()),
    "ancc": CreditTypeFact("ancc", "ANCC", ("ams",)),
}
CARD = CourseFact("CARD-101", "Cardiology", True, 3, {
    "ama": CourseCreditFact(0.25, 1.5, 0.25, False),
    "moc_abim": CourseCreditFact(0.25, 1.5, 0.25, False),
})
MIXED = CourseFact("MIX-1", "Mixed", True, 0, {
    "ancc": CourseCreditFact(0.25, 1.0, 0.25, True),
    "cme_other": CourseCreditFact(1, 2, 1, False),
})


def test_completion_only_row_in_card_101_records_both_types_at_max_reported_to_pars():
    award = award_for_row(course=CARD, credit_types=TYPES, complete=True)
    assert award.outcome == RECORDED
    assert award.amounts() == {"ama": Decimal("1.5"), "moc_abim": Decimal("1.5")}
    assert award.will_record() == "1.5 ama and 1.5 moc_abim"
    assert award.describe() == ("the LMS will record 1.5 ama (awarded, reported to PARS) and "
                                "1.5 moc_abim (awarded, reported to PARS)")
    assert award.differs_from({"ama": Decimal("0.50")})
    assert not award.differs_from({"ama": Decimal("1.50"), "moc_abim": Decimal("1.5")})
    assert file_says({"ama": "0.50"}) == "the file says 0.50 ama"


def test_global_importer_credit_is_never_queued_for_pars():
    award = award_for_row(course=CARD, credit_types=TYPES, importer="global", complete=True)
    assert [c.reported_to for c in award.credits] == [(), ()]
    assert "reported to nobody" in award.describe() and "PARS" not in award.describe()


def test_a_type_that_reports_nowhere_says_nobody_and_variable_types_are_not_awarded():
    award = award_for_row(course=MIXED, credit_types=TYPES, complete=True)
    assert award.describe() == "the LMS will record 2 cme_other (awarded, reported to nobody)"


def test_partial_credit_on_a_non_variable_type_records_the_maximum_and_reports_it_nowhere():
    award = award_for_row(course=CARD, credit_types=TYPES, complete=True, credit_type="ama", credits="0.50")
    assert award.amounts() == {"ama": Decimal("1.5")}
    assert award.credits[0].source == "import" and award.credits[0].reported_to == ()
    assert "Variable is off" in award.describe()


def test_variable_credit_is_recorded_as_given_and_outside_the_range_refused():
    ok = award_for_row(course=MIXED, credit_types=TYPES, complete=True, credit_type="ancc", credits="0.75")
    assert ok.amounts() == {"ancc": Decimal("0.75")} and not ok.reported
    bad = award_for_row(course=MIXED, credit_types=TYPES, complete=True, credit_type="ancc", credits="3")
    assert bad.outcome == REFUSED and bad.amounts() == {}


def test_new_user_in_a_course_without_required_objects_gets_every_type_at_max_when_the_account_appears():
    award = award_for_row(course=MIXED, credit_types=TYPES, complete=False, credit_type="cme_other", credits="1",
                          user_exists=False)
    assert award.outcome == HELD
    assert award.amounts() == {"ancc": Decimal("1.0"), "cme_other": Decimal("2")}
    assert "holding table" in award.describe() and "reported to the AMS" in award.describe()


def test_a_complete_enrollment_refuses_the_row_and_an_unknown_course_is_a_shell_only_for_the_global_importer():
    done = EnrollmentFact("complete")
    assert award_for_row(course=CARD, credit_types=TYPES, complete=True, enrollment=done).outcome == REFUSED
    assert award_for_row(course=None, credit_types=TYPES, complete=True, course_external_id="X").outcome == REFUSED
    shell = award_for_row(course=None, credit_types=TYPES, importer="global", complete=True, credit_type="ama",
                          credits="2", course_external_id="LEGACY-2019")
    assert shell.amounts() == {"ama": Decimal("2")} and not shell.reported
    assert completion_award(CARD, TYPES, importer="course")[0].reported_to == ("pars",)


def test_one_plural_helper_and_one_full_stop():
    assert plural(1, "error") == "1 error" and plural(2, "row") == "2 rows" and plural(0, "entry", "entries") == "0 entries"
    assert sentence("try again.") == "try again." and sentence("try again") == "try again."
