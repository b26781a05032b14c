"""One test per DOMAIN.md rule, each with its own small file, checked against the reference LMS
over real HTTP (ApiFacts). Where the page's trap is cheap to spring, the test also submits the
file and reads the LMS's database: the rule warns about something the LMS really does."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from importconsole.importfile.facts import MAX_KEYS, OfflineFacts
from importconsole.importfile.fixes import write_fixed_file
from importconsole.importfile.validate import validate
from importconsole.lms.client import LmsClient
from importconsole.lms.facts import ApiFacts
from helpers.sandbox import ADMIN_TOKEN, dataset, start_sandbox

HEADER = "external_user_id,external_course_id,title,complete,date_completed,credit_type,credits,participant_category\n"


@pytest.fixture(scope="module")
def lms():
    data = dataset(enrollments=[
        {"external_user_id": "u1", "course_external_id": "C-VAR", "status": "complete", "date_completed": "2026-01-05",
         "credits": [{"credit_type": "ama", "amount": 2.0, "source": "import"}]},
    ])
    with start_sandbox(data, rows_per_second=None) as server:
        yield server


def write(tmp_path: Path, *lines: str, header: str = HEADER) -> Path:
    path = tmp_path / "records.csv"
    path.write_text(header + "".join(line + "\n" for line in lines), encoding="utf-8")
    return path


async def check(lms, path: Path, *, importer="course", course=None, facts_wrapper=None):
    async with LmsClient(lms.base_url, ADMIN_TOKEN) as client:
        facts = ApiFacts(client, asyncio.get_running_loop())
        if facts_wrapper:
            facts = facts_wrapper(facts)
        return await asyncio.to_thread(validate, path, importer=importer, course_external_id=course, facts=facts)


def only(report, rule):
    found = report.of(rule)
    assert found, f"{rule} missing; got {[(f.rule, f.row) for f in report.findings]}"
    return found


async def test_partial_credit_on_a_non_variable_type_and_the_lms_records_the_maximum(lms, tmp_path):
    path = write(tmp_path, "u3,C-FIXED,,1,2026-03-01,ama,0.5,")
    report = await check(lms, path, course="C-FIXED")
    (finding,) = only(report, "partial-credit-not-variable")
    assert (finding.row, finding.column) == (1, "credits") and "records 1 ama" in finding.message
    # The trap: the LMS accepts the row and records the maximum.
    created = lms.submit(path.read_bytes(), course="C-FIXED").json()
    lms.wait_import(created["id"])
    amount = lms.db().execute(
        "SELECT amount FROM credit_records cr JOIN users u ON u.id = cr.user_id WHERE u.external_user_id = 'u3'"
    ).fetchone()[0]
    assert amount == 1.0
    # The same amount on a variable course is fine.
    ok = await check(lms, write(tmp_path, "u4,C-VAR,,1,2026-03-01,ama,0.5,"), course="C-VAR")
    assert not ok.of("partial-credit-not-variable") and not ok.of("credits-out-of-range")


async def test_credits_out_of_range_above_max_and_off_the_increments(lms, tmp_path):
    path = write(tmp_path, "u2,C-VAR,,1,2026-03-01,ama,2.5,", "u3,C-VAR,,1,2026-03-01,ama,0.3,")
    report = await check(lms, path, course="C-VAR")
    assert [(f.row, f.column) for f in only(report, "credits-out-of-range")] == [(1, "credits"), (2, "credits")]


async def test_global_import_of_an_unknown_course_makes_a_shell_without_certificate(lms, tmp_path):
    path = write(tmp_path, "u2,C-NEW-2026,New course,1,2026-03-01,,,")
    report = await check(lms, path, importer="global")
    (finding,) = only(report, "course-shell-no-certificate")
    assert (finding.row, finding.column, finding.value) == (1, "external_course_id", "C-NEW-2026")


async def test_new_learner_in_a_course_without_required_objects(lms, tmp_path):
    path = write(tmp_path, "newcomer,C-ZERO,,0,,,,", "u2,C-ZERO,,0,,,,")
    report = await check(lms, path, course="C-ZERO")
    (finding,) = only(report, "new-user-no-required-objects")
    assert (finding.row, finding.value) == (1, "newcomer")


async def test_credit_on_an_incomplete_record(lms, tmp_path):
    path = write(tmp_path, "u2,C-FIXED,,0,,ama,1.0,")
    report = await check(lms, path, course="C-FIXED")
    (finding,) = only(report, "credit-on-incomplete")
    assert (finding.row, finding.column) == (1, "credits")


async def test_several_credit_types_in_one_row(lms, tmp_path):
    path = write(tmp_path, 'u2,C-FIXED,,1,2026-03-01,ama;acpe,1.0,', 'u3,C-FIXED,,1,2026-03-01,"ama, acpe",1.0,')
    report = await check(lms, path, course="C-FIXED")
    assert [(f.row, f.column) for f in only(report, "multiple-credit-types-in-row")] == [(1, "credit_type"), (2, "credit_type")]
    assert not report.of("unknown-credit-type")


async def test_same_learner_course_and_credit_type_twice(lms, tmp_path):
    path = write(tmp_path, "u2,C-VAR,,1,2026-03-01,ama,1.0,", "u3,C-VAR,,1,2026-03-01,ama,1.0,",
                 "u2,C-VAR,,1,2026-03-02,ama,0.5,")
    report = await check(lms, path, course="C-VAR")
    (finding,) = only(report, "duplicate-credit-row")
    assert finding.row == 3 and "row 1" in finding.message


async def test_global_importer_with_credit_that_reports_to_pars(lms, tmp_path):
    path = write(tmp_path, "u2,C-FIXED,Fixed credit course,1,2026-03-01,ama,1.0,",
                 "u2,C-ZERO,No required objects,1,2026-03-01,ancc,1.0,")
    report = await check(lms, path, importer="global")
    (finding,) = only(report, "global-importer-pars")
    assert (finding.row, finding.value) == (1, "ama")


async def test_special_characters_in_the_data(lms, tmp_path):
    path = write(tmp_path, "u2,C-FIXED,,1,2026-03-01,,,", "u3\u200b,C-FIXED,,1,2026-03-01,,,")
    report = await check(lms, path, course="C-FIXED")
    (finding,) = only(report, "special-characters")
    assert (finding.row, finding.column) == (2, "external_user_id") and "U+200B" in finding.message


async def test_extra_spaces_in_the_headers(lms, tmp_path):
    path = write(tmp_path, "u2,C-FIXED,,1,2026-03-01,,,", header=HEADER.replace("complete,", "complete ,"))
    report = await check(lms, path, course="C-FIXED")
    (finding,) = only(report, "header-whitespace")
    assert finding.column == "complete " and finding.row is None and finding.line == 1


async def test_a_completed_enrollment_cannot_be_updated(lms, tmp_path):
    path = write(tmp_path, "u1,C-VAR,,1,2026-03-01,ama,1.0,")
    report = await check(lms, path, course="C-VAR")
    (finding,) = only(report, "would-update-existing")
    assert (finding.row, finding.value) == (1, "u1")
    created = lms.submit(path.read_bytes(), course="C-VAR").json()
    lms.wait_import(created["id"])
    status = lms.db().execute("SELECT status FROM import_rows WHERE import_id = ?", (created["id"],)).fetchone()[0]
    assert status == "refused"


async def test_imported_credit_is_never_reported_and_completion_only_fixes_it(lms, tmp_path):
    path = write(tmp_path, "u5,C-FIXED,,1,2026-03-01,ama,1.0,")
    report = await check(lms, path, course="C-FIXED")
    (finding,) = only(report, "imported-credit-not-reported")
    assert "PARS" in finding.message and "--completion-only" in finding.fix
    # The fix: completion without credit; the LMS awards the credit and queues it for PARS.
    fixed = tmp_path / "fixed.csv"
    async with LmsClient(lms.base_url, ADMIN_TOKEN) as client:
        facts = ApiFacts(client, asyncio.get_running_loop())
        manifest = await asyncio.to_thread(write_fixed_file, path, fixed, completion_only=True, facts=facts,
                                           course_external_id="C-FIXED")
    assert manifest.completion_only_rows == [1]
    again = await check(lms, fixed, course="C-FIXED")
    assert not again.of("imported-credit-not-reported") and again.errors == 0
    created = lms.submit(fixed.read_bytes(), course="C-FIXED").json()
    lms.wait_import(created["id"])
    source, queued = lms.db().execute(
        "SELECT cr.source, (SELECT count(*) FROM reporting_queue q WHERE q.credit_record_id = cr.id AND q.entity = 'pars') "
        "FROM credit_records cr JOIN users u ON u.id = cr.user_id WHERE u.external_user_id = 'u5'").fetchone()
    assert (source, queued) == ("awarded", 1)


async def test_completion_without_a_date(lms, tmp_path):
    path = write(tmp_path, "u2,C-FIXED,,1,,,,")
    report = await check(lms, path, course="C-FIXED")
    (finding,) = only(report, "completion-date-missing")
    assert (finding.row, finding.column) == (1, "date_completed")


async def test_participant_category_on_two_rows_of_one_participant(lms, tmp_path):
    path = write(tmp_path, "u2,C-VAR,,1,2026-03-01,ama,1.0,physician", "u2,C-VAR,,1,2026-03-01,acpe,1.0,physician")
    report = await check(lms, path, course="C-VAR")
    (finding,) = only(report, "participant-category-repeated")
    assert (finding.row, finding.column) == (2, "participant_category")


async def test_unknown_credit_type_and_course(lms, tmp_path):
    path = write(tmp_path, "u2,C-FIXED,,1,2026-03-01,amma,1.0,")
    report = await check(lms, path, course="C-NOWHERE")
    assert only(report, "unknown-course")[0].value == "C-NOWHERE"
    report = await check(lms, path, course="C-FIXED")
    assert only(report, "unknown-credit-type")[0].row == 1


async def test_lms_look_ups_are_batched_at_most_1000_keys(lms, tmp_path):
    path = write(tmp_path, *(f"learner{n},C-FIXED,,0,,,," for n in range(2300)))
    sizes: list[int] = []

    class Recording:
        def __init__(self, inner):
            self.inner, self.online = inner, True

        def credit_types(self):
            return self.inner.credit_types()

        def courses(self, ids):
            sizes.append(len(ids))
            return self.inner.courses(ids)

        def users(self, ids, emails):
            sizes.append(len(ids) + len(emails))
            return self.inner.users(ids, emails)

        def enrollments(self, keys):
            sizes.append(len(keys))
            return self.inner.enrollments(keys)

    report = await check(lms, path, course="C-FIXED", facts_wrapper=Recording)
    assert report.rows == 2300 and max(sizes) <= MAX_KEYS and len(sizes) >= 3
    assert report.not_checked == []


def test_offline_lists_the_lms_rules_as_not_checked(tmp_path):
    path = write(tmp_path, "u2,C-FIXED,,1,2026-03-01,ama,0.5,")
    report = validate(path, course_external_id="C-FIXED", facts=OfflineFacts())
    assert "partial-credit-not-variable" in report.not_checked and "would-update-existing" in report.not_checked
    assert not report.of("partial-credit-not-variable")


EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _example_table() -> list[tuple[str, str, str | None]]:
    readme = EXAMPLES / "README.md"
    if not readme.exists():
        return []
    out = []
    for line in readme.read_text(encoding="utf-8").splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[0].startswith("rule-") and cells[0].endswith(".csv"):
            out.append((cells[0], cells[1], None if cells[2].startswith("(") else cells[2]))
    return out


@pytest.mark.parametrize("name,importer,course", _example_table() or [pytest.param("", "", None, marks=pytest.mark.skip)])
async def test_each_example_file_triggers_its_rule_on_the_demo_lms(demo_sandbox, name, importer, course):
    rule = name[len("rule-"):-len(".csv")]
    async with LmsClient(demo_sandbox.base_url, demo_sandbox.admin_token) as client:
        facts = ApiFacts(client, asyncio.get_running_loop())
        report = await asyncio.to_thread(validate, EXAMPLES / name, importer=importer, course_external_id=course,
                                         facts=facts)
    assert report.of(rule), f"{name}: {[(f.rule, f.row) for f in report.findings]}"


async def test_a_column_named_twice_is_checked_where_the_lms_reads_it_the_last_one(tmp_path):
    """The LMS maps a row's cells by column name, the later over the earlier: with `complete`
    twice it completes the enrollment from the second. Validate reports the repeat and checks the
    row as the LMS reads it (complete=1, so no credit-on-incomplete), as fix and credit-fix do."""
    header = "external_user_id,external_course_id,complete,date_completed,Complete,credit_type,credits\n"
    path = write(tmp_path, "u4,C-FIXED,0,2026-03-01,1,ama,1.0", header=header)
    with start_sandbox(dataset(), rows_per_second=None) as server:
        report = await check(server, path, course="C-FIXED")
        (repeat,) = only(report, "duplicate-column")
        assert (repeat.column, repeat.column_number) == ("Complete", 5)
        assert not report.of("credit-on-incomplete")
        (unreported,) = only(report, "imported-credit-not-reported")
        assert unreported.row == 1
        created = server.submit(path.read_bytes(), course="C-FIXED").json()
        server.wait_import(created["id"])
        status = server.db().execute(
            "SELECT e.status FROM enrollments e JOIN users u ON u.id = e.user_id WHERE u.external_user_id = 'u4'"
        ).fetchone()[0]
        assert status == "complete"
