"""The EthosCE backend's Feeds pages and Drupal session, on the real Drupal 7 + Feeds site of the kit.

Outcomes are read from the site's SQLite database (the holding table, feeds_source, flood), not from the
console's own view. Requests are counted by a wrapper around a real transport.
"""

from __future__ import annotations

import logging
from collections import Counter

import httpx
import pytest

from importconsole.lms.client import RetryPolicy
from importconsole.lms.errors import NotFound
from importconsole.lms.ethosce import (
    BatchInterrupted,
    BatchNotOurs,
    DrupalSession,
    FeedsSite,
    LoginRefused,
    SiteForbidden,
    UnlockRefused,
    UploadRefused,
)

IMPORTER = "course_record_import"


class CountingTransport(httpx.AsyncHTTPTransport):
    """A real transport that counts what it sends: (method, path) -> n."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: Counter = Counter()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent[(request.method, request.url.path)] += 1
        return await super().handle_async_request(request)


def admin(kit, *, password: str | None = None, transport=None) -> DrupalSession:
    return DrupalSession(kit.base_url, kit.admin_user, kit.admin_password if password is None else password,
                         transport=transport)


async def test_login_ok_then_reads_the_importers_and_no_secret_reaches_the_logs(feeds_kit, caplog):
    caplog.set_level(logging.DEBUG)
    async with admin(feeds_kit) as site:
        await site.login()
        assert site.logged_in and site.login_posts == 1
        importers = await FeedsSite(site).importers()
        cookies = {k: v for k, v in site._http.cookies.items() if k.startswith("SESS")}
    assert [(i.id, i.title) for i in importers] == [(IMPORTER, "Course record import")]
    assert len(cookies) == 1 and "Set-Cookie" in caplog.text  # httpcore logged the login answer's headers...
    assert list(cookies.values())[0] not in caplog.text  # ...with the session cookie hidden
    assert feeds_kit.admin_password not in caplog.text and feeds_kit.admin_password not in repr(site)


async def test_wrong_password_stops_after_exactly_one_post(feeds_kit, caplog):
    caplog.set_level(logging.DEBUG)
    wrong = "wrong-" + feeds_kit.admin_password[::-1]
    transport = CountingTransport()
    async with admin(feeds_kit, password=wrong, transport=transport) as site:
        with pytest.raises(LoginRefused) as refused:
            await FeedsSite(site).status(IMPORTER)
        # Asking again does not send another login: the refusal is remembered for the run.
        with pytest.raises(LoginRefused):
            await site.login()
    assert transport.sent[("POST", "/user/login")] == 1
    assert feeds_kit.failed_logins() == 1  # what Drupal's flood control counted
    said = str(refused.value)
    assert "refused the login of 'admin'" in said and "Not retried" in said and "Sorry, unrecognized username or password" in said
    assert wrong not in said and wrong not in repr(refused.value) and wrong not in caplog.text and wrong not in repr(site)


async def test_expired_session_logs_in_again_once_quietly(feeds_kit):
    transport = CountingTransport()
    async with admin(feeds_kit, transport=transport) as site:
        feeds = FeedsSite(site)
        assert (await feeds.status(IMPORTER)).state == "idle"
        with feeds_kit.db() as db:
            assert db.execute("DELETE FROM sessions WHERE uid = 1").rowcount >= 1
        status = await feeds.status(IMPORTER)
        assert status.state == "idle" and status.button_label == "Import"
        assert site.relogins == 1 and site.login_posts == 2
    assert transport.sent[("POST", "/user/login")] == 2
    assert feeds_kit.failed_logins() == 0


async def test_clean_import_reports_progress_steps_and_the_sites_message(feeds_kit, tmp_path):
    feeds_kit.set_row_delay(40)  # about 24 rows/s: Drupal's 1 s batch steps show progress
    csv = feeds_kit.make_csv(tmp_path / "clean.csv", 60)
    seen = []
    async with admin(feeds_kit) as site:
        feeds = FeedsSite(site)
        up = await feeds.upload(IMPORTER, csv)
        assert up.batch_id and not up.scheduled
        outcome = await feeds.drive_batch(IMPORTER, up.batch_id, on_progress=lambda p, n: seen.append((p, n)))
    assert outcome.finished and not outcome.died
    assert outcome.messages == ("Created 60 course record rows.",)
    assert len(seen) >= 2 and seen[-1][0] == 100.0
    assert [p for p, _ in seen] == sorted(p for p, _ in seen) and 0 < seen[0][0] < 100
    assert outcome.status_after.state == "idle" and outcome.status_after.items_total == 60
    assert outcome.status_after.last_import.endswith("sec ago") and outcome.status_after.background is False
    assert feeds_kit.scalar("SELECT COUNT(*) FROM courserecord_transcript_import") == 60
    assert outcome.sentence().startswith("The import on course_record_import finished")


def lock_percent(csv, rows_done: int = 20) -> int:
    """Feeds' progress after `rows_done` rows: bytes of the header and those rows over the file's size."""
    data = csv.read_bytes()
    return round(100 * len(b"".join(data.splitlines(keepends=True)[: rows_done + 1])) / len(data))


async def hang_at_row_23(kit, tmp_path, site):
    csv = kit.make_csv(tmp_path / "zwsp.csv", 50, "--bad-row", "23", "--bad", "zwsp")
    feeds = FeedsSite(site)
    up = await feeds.upload(IMPORTER, csv)
    return await feeds.drive_batch(IMPORTER, up.batch_id)


async def test_special_character_at_row_23_dies_locked_past_the_second_chunk_with_22_rows(feeds_kit, tmp_path):
    async with admin(feeds_kit) as site:
        outcome = await hang_at_row_23(feeds_kit, tmp_path, site)
        status = await FeedsSite(site).status(IMPORTER)
    pct = lock_percent(tmp_path / "zwsp.csv")
    assert pct in (41, 42)  # the README's 41 %: 20 of 50 rows, counted in bytes
    assert outcome.died and not outcome.finished and outcome.http_status == 500
    assert outcome.locked_after and outcome.status_after.percent == pct
    assert "died on the site" in outcome.sentence() and f"locked at {pct} %" in outcome.sentence()
    assert status.state == "importing" and status.locked and status.percent == pct
    assert status.button_label == f"Importing ({pct} %)" and status.items_total is None
    assert feeds_kit.scalar("SELECT COUNT(*) FROM courserecord_transcript_import") == 22


async def test_death_in_the_first_chunk_leaves_no_lock(feeds_kit, tmp_path):
    csv = feeds_kit.make_csv(tmp_path / "early.csv", 50, "--bad-row", "5", "--bad", "zwsp")
    async with admin(feeds_kit) as site:
        feeds = FeedsSite(site)
        outcome = await feeds.drive_batch(IMPORTER, (await feeds.upload(IMPORTER, csv)).batch_id)
    assert outcome.died and not outcome.locked_after and outcome.status_after.state == "idle"
    assert "is not locked (it died in its first chunk" in outcome.sentence()
    assert feeds_kit.scalar("SELECT COUNT(*) FROM courserecord_transcript_import") == 4


async def test_upload_while_locked_is_refused_and_nothing_is_stored(feeds_kit, tmp_path):
    clean = feeds_kit.make_csv(tmp_path / "clean.csv", 30)
    async with admin(feeds_kit) as site:
        feeds = FeedsSite(site)
        form, before = await feeds.import_form(IMPORTER)  # read while still unlocked: a stale form
        assert not before.locked
        await hang_at_row_23(feeds_kit, tmp_path, site)
        with pytest.raises(UploadRefused) as early:
            await feeds.upload(IMPORTER, clean)
        # The same refusal when the site itself returns the form (the POST raced the lock).
        with pytest.raises(UploadRefused) as late:
            await feeds.send_upload(IMPORTER, form, clean)
    pct = lock_percent(tmp_path / "zwsp.csv")
    assert f"Nothing was uploaded: importer course_record_import is locked at {pct} %" in str(early.value)
    assert "returned the import form with no import started" in str(late.value) and late.value.percent == pct
    assert feeds_kit.scalar("SELECT COUNT(*) FROM courserecord_transcript_import") == 22


async def test_unlock_clears_the_lock_and_the_import_button_is_back(feeds_kit, tmp_path):
    async with admin(feeds_kit) as site:
        feeds = FeedsSite(site)
        await hang_at_row_23(feeds_kit, tmp_path, site)
        with pytest.raises(UnlockRefused):
            await feeds.unlock(IMPORTER, expected_percent=30)  # progress differs from what was read: no POST
        assert feeds_kit.scalar("SELECT state FROM feeds_source WHERE id = ?", IMPORTER) != "a:0:{}"
        done = await feeds.unlock(IMPORTER, expected_percent=lock_percent(tmp_path / "zwsp.csv"))
        again = await feeds.unlock(IMPORTER)
    assert done.was_locked and done.unlocked and done.messages == ("Importer unlocked.",)
    assert done.status_after.state == "idle" and done.status_after.button_label == "Import"
    assert done.status_after.items_total == 22  # Unlock keeps the rows already written
    assert feeds_kit.scalar("SELECT state FROM feeds_source WHERE id = ?", IMPORTER) == "a:0:{}"
    assert not again.was_locked and not again.unlocked


async def test_background_mode_status_is_queued_for_cron(feeds_kit, tmp_path):
    feeds_kit.set_background(True)
    csv = feeds_kit.make_csv(tmp_path / "clean.csv", 30)
    async with admin(feeds_kit) as site:
        feeds = FeedsSite(site)
        idle = await feeds.status(IMPORTER)
        up = await feeds.upload(IMPORTER, csv)
        queued = await feeds.status(IMPORTER)
        feeds_kit.cron()
        done = await feeds.status(IMPORTER)
    assert idle.background is True and idle.button_label == "Schedule import"
    assert up.scheduled and up.batch_id is None and "Import scheduled." in up.messages
    assert queued.state == "queued" and queued.locked and queued.percent == 0 and queued.queued_for_cron
    assert queued.describe().startswith("queued until the site's cron runs")
    assert done.state == "idle" and done.items_total == 30
    assert feeds_kit.scalar("SELECT COUNT(*) FROM courserecord_transcript_import") == 30


async def test_an_upload_whose_session_expired_after_the_form_was_read_logs_in_again_and_imports_once(feeds_kit, tmp_path):
    csv = feeds_kit.make_csv(tmp_path / "clean.csv", 30)
    async with admin(feeds_kit) as site:
        feeds = FeedsSite(site)
        form, _ = await feeds.import_form(IMPORTER)
        with feeds_kit.db() as db:
            db.execute("DELETE FROM sessions WHERE uid = 1")
        up = await feeds.send_upload(IMPORTER, form, csv)  # the POST answers 403: log in, fresh form, post again
        outcome = await feeds.drive_batch(IMPORTER, up.batch_id)
        assert site.relogins == 1
    assert outcome.finished and outcome.messages == ("Created 30 course record rows.",)
    assert feeds_kit.scalar("SELECT COUNT(*) FROM courserecord_transcript_import") == 30


async def test_an_unknown_importer_is_named_with_what_to_do(feeds_kit):
    async with admin(feeds_kit) as site:
        with pytest.raises(NotFound) as missing:
            await FeedsSite(site).status("course_records")
    assert str(missing.value).startswith("The site has no Feeds importer 'course_records'")
    assert "importconsole imports" in str(missing.value)


async def test_a_batch_started_by_another_session_cannot_be_driven_by_this_one(feeds_kit, tmp_path):
    csv = feeds_kit.make_csv(tmp_path / "clean.csv", 30)
    async with admin(feeds_kit) as mine, admin(feeds_kit) as colleague:
        up = await FeedsSite(colleague).upload(IMPORTER, csv)
        with pytest.raises(BatchNotOurs) as not_ours:
            await FeedsSite(mine).drive_batch(IMPORTER, up.batch_id)
        assert feeds_kit.scalar("SELECT COUNT(*) FROM courserecord_transcript_import") == 0
        outcome = await FeedsSite(colleague).drive_batch(IMPORTER, up.batch_id)  # its own session still can
    assert "only the browser session that started an import can drive its batch" in str(not_ours.value)
    assert outcome.finished and feeds_kit.scalar("SELECT COUNT(*) FROM courserecord_transcript_import") == 30


async def test_a_site_that_does_not_answer_is_a_sentence():
    from importconsole.lms.errors import Unreachable
    from helpers.feeds_kit import free_port

    async with DrupalSession(f"http://127.0.0.1:{free_port()}", "admin", "pw", retry=RetryPolicy(attempts=2, base=0.01)) as site:
        with pytest.raises(Unreachable) as down:
            await site.login()
    assert str(down.value).startswith("Could not reach the site at 127.0.0.1 to open the login page")


async def test_an_account_without_the_unlock_permission_is_told_so_once(feeds_kit, tmp_path):
    password = "editor-" + feeds_kit.admin_password[:6]
    feeds_kit.php(
        '$role = user_role_load_by_name("importer") ?: (object) array("name" => "importer"); user_role_save($role);'
        ' $role = user_role_load_by_name("importer");'
        ' user_role_grant_permissions($role->rid, array("import course_record_import feeds"));'
        ' $a = user_load_by_name("editor") ?: drupal_anonymous_user();'
        f' user_save($a, array("name" => "editor", "mail" => "editor@example.com", "pass" => "{password}", "status" => 1,'
        ' "roles" => array(DRUPAL_AUTHENTICATED_RID => TRUE, $role->rid => TRUE)));')
    try:
        async with admin(feeds_kit) as site:
            await hang_at_row_23(feeds_kit, tmp_path, site)
        async with DrupalSession(feeds_kit.base_url, "editor", password) as site:
            feeds = FeedsSite(site)
            assert (await feeds.status(IMPORTER)).locked  # may import, so may read the importer's page
            with pytest.raises(SiteForbidden) as denied:
                await feeds.unlock(IMPORTER)
            assert site.relogins == 1 and site.login_posts == 2
    finally:
        feeds_kit.php('user_delete(user_load_by_name("editor")->uid);')
    assert "denies 'editor' access to" in str(denied.value) and "/import/course_record_import/unlock" in str(denied.value)
    assert feeds_kit.scalar("SELECT state FROM feeds_source WHERE id = ?", IMPORTER) != "a:0:{}"  # still locked


async def test_the_readmes_file_locks_at_exactly_41_percent(feeds_kit, tmp_path):
    csv = feeds_kit.make_csv(tmp_path / "readme.csv", 50, "--bad-row", "23", "--bad", "zwsp", seed=False)
    async with admin(feeds_kit) as site:
        feeds = FeedsSite(site)
        outcome = await feeds.drive_batch(IMPORTER, (await feeds.upload(IMPORTER, csv)).batch_id)
    assert outcome.died and outcome.status_after.percent == 41 == lock_percent(csv)
    assert outcome.status_after.button_label == "Importing (41 %)"
    assert feeds_kit.scalar("SELECT COUNT(*) FROM courserecord_transcript_import") == 22


class DropsOneBatchStep(httpx.AsyncHTTPTransport):
    """A real transport whose connection drops once, on the 2nd batch step (no server can be made to do that)."""

    def __init__(self) -> None:
        super().__init__()
        self.steps = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.params.get("op") == "do":
            self.steps += 1
            if self.steps == 2:
                raise httpx.ConnectError("connection reset", request=request)
        return await super().handle_async_request(request)


async def test_a_lost_connection_mid_batch_is_said_and_the_same_session_resumes_it(feeds_kit, tmp_path):
    feeds_kit.set_row_delay(40)
    csv = feeds_kit.make_csv(tmp_path / "clean.csv", 60)
    async with admin(feeds_kit, transport=DropsOneBatchStep()) as site:
        feeds = FeedsSite(site)
        up = await feeds.upload(IMPORTER, csv)
        with pytest.raises(BatchInterrupted) as lost:
            await feeds.drive_batch(IMPORTER, up.batch_id)
        stuck = await feeds.status(IMPORTER)
        assert stuck.locked and 0 < lost.value.percentage < 100 and lost.value.batch_id == up.batch_id
        outcome = await feeds.drive_batch(IMPORTER, up.batch_id, started=True)
    assert f"(batch {up.batch_id}) was at" in str(lost.value) and "stays locked mid-import" in str(lost.value)
    assert outcome.finished and not outcome.status_after.locked
    from importconsole.lms.ethosce import read_feed_file

    assert feeds_kit.stored_rows() == [r.key() for r in read_feed_file(csv).rows]  # every row once, in order
