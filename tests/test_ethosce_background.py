"""The background-mode trap (README "Background mode: Unlock is not enough"), and its safe way out, on the kit.

Everything the console does here goes through the site's web pages (import form, Unlock tab, Cron page's
"Run cron"). The only thing the test does behind the site's back is let time pass: the dead cron job's 30 s
lease is ended by moving its expiry into the past, as the clock would.
"""

from __future__ import annotations

import csv
from collections import Counter

from importconsole.importfile import safe_text
from importconsole.lms.ethosce import DrupalSession, FeedsSite, read_feed_file
from helpers.feeds_kit import IMPORTER, end_the_lease


def write_remainder(feed, first_row: int, path):
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\r\n")
        w.writerow(feed.header)
        for row in feed.rows[first_row - 1:]:
            w.writerow([safe_text.sanitize(row.values[h]) for h in feed.header])
    return path


def want(feed) -> Counter:
    """Every row of the file once, sanitized, as the holding table stores it."""
    return Counter(tuple(safe_text.sanitize(v) for v in r.key()) for r in feed.rows)


async def die_in_cron(kit, tmp_path, feeds):
    kit.set_background(True)
    csv_path = kit.make_csv(tmp_path / "zwsp.csv", 50, "--bad-row", "23", "--bad", "zwsp")
    up = await feeds.upload(IMPORTER, csv_path)
    assert up.scheduled
    died = await feeds.run_cron()
    status = await feeds.status(IMPORTER)
    return csv_path, died, status


async def test_unlock_then_the_remainder_is_not_enough_in_background_mode(feeds_kit, tmp_path):
    async with DrupalSession(feeds_kit.base_url, "admin", feeds_kit.admin_password) as site:
        feeds = FeedsSite(site)
        csv_path, died, status = await die_in_cron(feeds_kit, tmp_path, feeds)
        # The dead job's claim hides it from the page: locked, yet not "queued".
        assert not died.ok and died.http_status == 500
        assert status.locked and status.state == "importing" and not status.queued_for_cron
        assert feeds_kit.scalar("SELECT COUNT(*) FROM courserecord_transcript_import") == 22
        await feeds.unlock(IMPORTER)
        feed = read_feed_file(csv_path)
        await feeds.upload(IMPORTER, write_remainder(feed, 23, tmp_path / "rest.csv"))
        assert (await feeds.run_cron()).ok
        assert feeds_kit.scalar("SELECT COUNT(*) FROM courserecord_transcript_import") == 50
        assert end_the_lease(feeds_kit) == 1
        assert (await feeds.run_cron()).ok  # the dead job runs once more: the file the importer holds, from row 1
    assert feeds_kit.scalar("SELECT COUNT(*) FROM courserecord_transcript_import") == 78  # rows 23-50 twice


async def test_safe_way_out_header_only_file_until_the_dead_job_has_run(feeds_kit, tmp_path):
    async with DrupalSession(feeds_kit.base_url, "admin", feeds_kit.admin_password) as site:
        feeds = FeedsSite(site)
        csv_path, _, _ = await die_in_cron(feeds_kit, tmp_path, feeds)
        feed = read_feed_file(csv_path)
        assert (await feeds.unlock(IMPORTER)).unlocked
        empty = await feeds.upload_header_only(IMPORTER, feed.header)  # right after Unlock: the importer holds no rows
        assert empty.scheduled
        assert (await feeds.run_cron()).ok  # inside the lease: the new (empty) job runs, the dead one waits
        assert end_the_lease(feeds_kit) == 1
        assert (await feeds.run_cron()).ok  # the dead job runs once more, on the header-only file: nothing
        assert feeds_kit.scalar("SELECT COUNT(*) FROM queue WHERE name = 'feeds_source_import'") == 0
        between = await feeds.status(IMPORTER)
        assert between.state == "idle" and between.items_total == 22 and not between.queued_for_cron
        await feeds.upload(IMPORTER, write_remainder(feed, 23, tmp_path / "rest.csv"))
        assert (await feeds.run_cron()).ok
        end_the_lease(feeds_kit)
        assert (await feeds.run_cron()).ok  # later cron runs find nothing to do
        after = await feeds.status(IMPORTER)
    stored = Counter(feeds_kit.stored_rows())
    assert stored == want(feed) and sum(stored.values()) == 50  # every row of the file stored exactly once
    assert after.state == "idle" and not after.locked
    enrolled = feeds_kit.scalar("SELECT COUNT(*) FROM courserecord_transcript_import WHERE imported = 1")
    assert enrolled == 50


async def test_while_locked_each_cron_after_the_lease_stores_the_dying_chunks_rows_again(feeds_kit, tmp_path):
    async with DrupalSession(feeds_kit.base_url, "admin", feeds_kit.admin_password) as site:
        feeds = FeedsSite(site)
        await die_in_cron(feeds_kit, tmp_path, feeds)
        end_the_lease(feeds_kit)
        again = await feeds.run_cron()
        status = await feeds.status(IMPORTER)
    assert not again.ok and status.locked
    # Rows 21-22 (stored by the chunk that died, progress saved before it) are stored once more.
    counts = Counter(r[0] for r in feeds_kit.stored_rows())
    assert sum(counts.values()) == 24 and counts["U00021"] == 2 and counts["U00022"] == 2 and counts["U00020"] == 1


async def test_switching_the_importer_to_batch_mode_does_not_disarm_the_dead_job(feeds_kit, tmp_path):
    async with DrupalSession(feeds_kit.base_url, "admin", feeds_kit.admin_password) as site:
        feeds = FeedsSite(site)
        csv_path, _, _ = await die_in_cron(feeds_kit, tmp_path, feeds)
        await feeds.unlock(IMPORTER)
        feeds_kit.set_background(False)  # the importer in batch mode now
        rest = write_remainder(read_feed_file(csv_path), 23, tmp_path / "rest.csv")
        up = await feeds.upload(IMPORTER, rest)
        assert up.batch_id and (await feeds.drive_batch(IMPORTER, up.batch_id)).finished
        assert feeds_kit.scalar("SELECT COUNT(*) FROM courserecord_transcript_import") == 50
        end_the_lease(feeds_kit)
        await feeds.run_cron()  # the queue worker imports whatever the mode: the held file again
    assert feeds_kit.scalar("SELECT COUNT(*) FROM courserecord_transcript_import") == 78
