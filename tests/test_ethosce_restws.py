"""The EthosCE backend's restws client and facts, on the real kit (its restws-compatible face and SQLite DB)."""

from __future__ import annotations

import asyncio
import csv
import logging

import pytest

from importconsole.importfile.facts import UserKey
from importconsole.importfile.validate import validate
from importconsole.lms.ethosce import (
    DrupalSession,
    FeedsSite,
    RestwsClient,
    RestwsFacts,
    RestwsForbidden,
    RestwsRefused,
    stored_key,
)


def restws(kit, *, user=None, password=None) -> RestwsClient:
    return RestwsClient(kit.base_url, user or kit.restws_user, kit.restws_password if password is None else password)


async def test_wrong_restws_password_is_a_sentence(feeds_kit, caplog):
    caplog.set_level(logging.DEBUG)
    wrong = "nope-" + feeds_kit.restws_password
    async with restws(feeds_kit, password=wrong) as ws:
        with pytest.raises(RestwsRefused) as refused:
            await ws.courses()
    said = str(refused.value)
    assert said.startswith("The site's web services (restws) at 127.0.0.1 refused 'restws_console' (401)")
    assert "IMPORTCONSOLE_RESTWS_PASSWORD" in said and ws.requests == 1  # a 401 is not retried
    assert wrong not in said and wrong not in caplog.text and wrong not in repr(ws)


async def test_a_user_name_not_starting_with_restws_is_told_why(feeds_kit):
    async with restws(feeds_kit, user="admin", password=feeds_kit.admin_password) as ws:
        with pytest.raises(RestwsForbidden) as forbidden:
            await ws.courses()
    assert "(403). Its name must start with \"restws\"." in str(forbidden.value)


async def test_listing_follows_next_over_pages_and_filters_with_operators(feeds_kit, tmp_path):
    csv_path = feeds_kit.make_csv(tmp_path / "big.csv", 250)
    async with DrupalSession(feeds_kit.base_url, "admin", feeds_kit.admin_password) as site:
        feeds = FeedsSite(site)
        assert (await feeds.drive_batch("course_record_import", (await feeds.upload("course_record_import", csv_path)).batch_id)).finished
    async with restws(feeds_kit) as ws:
        rows = await ws.transcript_rows()
        assert ws.requests == 3  # pages of 100, 100, 50
        ids = [r["id"] for r in rows]
        cut = ids[119]
        after = await ws.transcript_rows(after_id=cut)
        assert await ws.last_transcript_id() == max(ids)
        # Exact filters and a numeric operator on the text column credits.
        c100 = await ws.courses(external_course_id="C-100")
        big = await ws.course_credits(**{"max[gt]": 1.5})
        before = ws.requests
        assert await ws.courses(external_course_id="C-100") == c100 and ws.requests == before  # cached for the run
        await ws.transcript_rows(after_id=cut)
        assert ws.requests == before + 2  # the holding table is never cached
    db_ids = [r[0] for r in feeds_kit.query("SELECT id FROM courserecord_transcript_import ORDER BY id")]
    assert ids == db_ids and len(ids) == 250
    assert [r["id"] for r in after] == db_ids[120:]
    assert [stored_key(r) for r in rows] == feeds_kit.stored_rows()
    assert [c["nid"] for c in c100] == [50]
    assert sorted(c["ccid"] for c in big) == [r[0] for r in feeds_kit.query(
        "SELECT ccid FROM courserecord_course_credit WHERE max > 1.5 ORDER BY ccid")]


async def test_at_most_four_requests_in_flight(feeds_kit):
    async with restws(feeds_kit) as ws:
        users = await asyncio.gather(*(ws.users(mail=f"user{i}@example.com") for i in range(1, 21)))
    assert [u[0]["mail"] for u in users] == [f"user{i}@example.com" for i in range(1, 21)]
    assert ws.requests == 20 and 1 < ws.max_seen_in_flight <= 4


def run_facts(kit, fn):
    """Calls `fn(facts)` in a worker thread while the client's loop runs, as validation does."""

    async def main():
        async with restws(kit) as ws:
            facts = RestwsFacts(ws, asyncio.get_running_loop())
            return await asyncio.to_thread(fn, facts), ws.requests

    return asyncio.run(main())


def test_facts_match_the_sites_tables(feeds_kit):
    def ask(facts):
        types = facts.credit_types()
        courses = facts.courses(["C-100", "C-103", "NOPE"])
        users = facts.users(["U00001", "U99999"], ["USER36@example.com", "nobody@example.com"])
        enrollments = facts.enrollments([(UserKey(external_user_id="U00001"), "C-100"),
                                         (UserKey(external_user_id="U00012"), "C-100"),
                                         (UserKey(external_user_id="U00003"), "C-100")])
        return types, courses, users, enrollments

    (types, courses, users, enrollments), _ = run_facts(feeds_kit, ask)
    assert types["ama"].reports_to == ("pars",) and types["moc"].reports_to == ("ams",) and types["nursing"].reports_to == ()
    c100 = courses["C-100"]
    assert c100.id == 50 and c100.required_objects == 3 and set(c100.credits) == {"ama", "nursing"}
    assert c100.credits["ama"].enable_variable_credit and str(c100.credits["ama"].increments) == "0.25"
    assert "participation" not in courses["C-103"].credits  # inactive on C-103
    assert courses["NOPE"] is None
    uid1 = feeds_kit.scalar("SELECT uid FROM users WHERE mail = 'user1@example.com'")
    assert users[UserKey(external_user_id="U00001")].id == uid1 and users[UserKey(external_user_id="U99999")] is None
    # Drupal matches e-mails case-insensitively; restws compares exactly: the whole table decides.
    assert users[UserKey(email="user36@example.com")].external_user_id is None
    assert users[UserKey(email="nobody@example.com")] is None
    statuses = {k[0].external_user_id: (v.status if v else None) for k, v in enrollments.items()}
    assert statuses == {"U00001": "incomplete", "U00012": "complete", "U00003": None}


def test_validate_runs_the_same_rules_from_restws_facts_with_requests_per_learner_not_row(feeds_kit, tmp_path):
    path = tmp_path / "rows.csv"
    learners = 12
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["external_user_id", "external_email", "external_course_id", "complete", "date_completed",
                    "credit_type", "credits"])
        for i in range(300):  # 300 rows, 12 learners, one course
            n = 1 + i % learners
            w.writerow([f"U{n:05d}", f"user{n}@example.com", "C-100", "1", "2024-05-01", "ama", "1.75" if i == 7 else "1.5"])

    (report, _), requests = run_facts(feeds_kit, lambda facts: (validate(
        path, importer="global", course_external_id=None, facts=facts), None))
    rules = {f.rule for f in report.findings}
    assert "credits-out-of-range" in rules  # 1.75 > C-100's ama maximum 1.5 (from course_credit)
    assert "would-update-existing" in rules  # user12 already completed C-100 (from course_enrollment)
    assert "global-importer-pars" in rules  # ama reports to PARS (from course_credit.reports_to)
    assert not report.not_checked
    # credit types (course_credit), course, user, course_enrollment: each table fits one page, read once.
    assert requests == 4  # the four small tables once each (one page apiece), whatever the rows


def write_rows(path, learners: int, rows: int):
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["external_user_id", "external_email", "external_course_id", "complete", "date_completed",
                    "credit_type", "credits"])
        for i in range(rows):
            n = 1 + i % learners
            w.writerow([f"U{n:05d}", f"user{n}@example.com", "C-101", "1", "2024-05-01", "nursing", "1"])
    return path


def test_on_a_big_user_table_requests_grow_with_distinct_learners_not_rows(feeds_kit, tmp_path):
    # 450 more users: the user table spans 5 pages, so 2 or 4 learners are looked up one by one (5 or more:
    # the whole table is cheaper, and is read instead).
    feeds_kit.php('$q = db_insert("users")->fields(array("uid", "name", "mail", "init", "status", "created"));'
                  ' for ($i = 5000; $i < 5450; $i++) { $q->values(array($i, "bulk$i", "bulk$i@example.com",'
                  ' "bulk$i@example.com", 1, REQUEST_TIME)); } $q->execute();')
    try:
        counts = {}
        for learners in (2, 4):
            path = write_rows(tmp_path / f"l{learners}.csv", learners, 600)
            (report, _), counts[learners] = run_facts(feeds_kit, lambda facts: (validate(
                path, importer="course", course_external_id="C-101", facts=facts), None))
            assert not report.not_checked and report.rows == 600
    finally:
        feeds_kit.php('db_delete("users")->condition("uid", 5000, ">=")->execute();')
    assert counts[4] - counts[2] == 2  # one user look-up per extra learner; nothing per row
    assert counts[4] == 4 + 4  # 4 learners + credit types, course, user and enrollment tables' first pages
