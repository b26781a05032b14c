"""Diagnosing a Feeds import from the file and the rows restws says were stored, on the real kit.

Each cause is produced for real on the site (a special character past the first chunk, in the first chunk,
an invalid UTF-8 byte, an abandoned batch, a broken header); the stored rows come from restws (id[gt]=N, N read
before the import began) and are checked against the site's database.
"""

from __future__ import annotations

from importconsole.lms.ethosce import (
    DrupalSession,
    FeedsSite,
    RestwsClient,
    diagnose_feed,
    read_feed_file,
    rows_at_percent,
)

IMPORTER = "course_record_import"


async def run_import(kit, csv, *, steps: int | None = None):
    """Uploads `csv` and drives its batch (only `steps` op=do calls when given: then it is abandoned).
    Returns (rows stored since it began, per restws; the importer's status afterwards)."""
    async with RestwsClient(kit.base_url, kit.restws_user, kit.restws_password) as ws:
        before = await ws.last_transcript_id()
        async with DrupalSession(kit.base_url, kit.admin_user, kit.admin_password) as site:
            feeds = FeedsSite(site)
            up = await feeds.upload(IMPORTER, csv)
            if steps is None:
                await feeds.drive_batch(IMPORTER, up.batch_id)
            else:
                await feeds.start_batch(up.batch_id)
                for _ in range(steps):
                    await feeds.step(up.batch_id)
            status = await feeds.status(IMPORTER)
        stored = await ws.transcript_rows(after_id=before)
    assert len(stored) == kit.scalar("SELECT COUNT(*) FROM courserecord_transcript_import WHERE id > ?", before)
    return stored, status


async def test_special_character_past_the_first_chunk(feeds_kit, tmp_path):
    feeds_kit.make_csv(tmp_path / "seed.csv", 7)  # rows stored earlier are not this import's
    await run_import(feeds_kit, tmp_path / "seed.csv")
    csv = feeds_kit.make_csv(tmp_path / "zwsp.csv", 50, "--bad-row", "23", "--bad", "zwsp")
    stored, status = await run_import(feeds_kit, csv)
    feed = read_feed_file(csv)
    d = diagnose_feed(feed, stored, locked=status.locked)
    assert d.cause == "special-characters" and d.locked and d.prefix
    assert d.stored_rows == list(range(1, 23)) and d.unstored_rows == list(range(23, 51))
    assert (d.first_unstored, d.bad_row, d.line, d.column) == (23, 23, 24, "external_course_id")
    assert d.character == "U+200B ZERO WIDTH SPACE"
    said = d.sentence("zwsp.csv")
    assert said.startswith("The import died on row 23 (line 24), column external_course_id: U+200B ZERO WIDTH SPACE in 'C-1<U+200B>02'")
    assert "22 rows before it are stored" in said
    # The percentage, in rows: Feeds saved its progress after the second chunk of 10.
    assert rows_at_percent(feed, status.percent, chunk=10) == [20]


async def test_death_in_the_first_chunk_is_told_apart(feeds_kit, tmp_path):
    csv = feeds_kit.make_csv(tmp_path / "early.csv", 50, "--bad-row", "5", "--bad", "nbsp")
    stored, status = await run_import(feeds_kit, csv)
    d = diagnose_feed(read_feed_file(csv), stored, locked=status.locked)
    assert d.cause == "first-chunk" and not d.locked
    assert d.stored_rows == [1, 2, 3, 4] and d.first_unstored == 5 and d.character == "U+00A0 NO-BREAK SPACE"
    assert "died in its first chunk on row 5" in d.sentence() and "is not locked" in d.sentence()


async def test_an_encoding_error_ends_the_import_cleanly_and_is_told_apart(feeds_kit, tmp_path):
    csv = feeds_kit.make_csv(tmp_path / "latin1.csv", 50, "--bad-row", "23", "--bad", "latin1")
    stored, status = await run_import(feeds_kit, csv)
    d = diagnose_feed(read_feed_file(csv), stored, locked=status.locked)
    assert not status.locked and d.cause == "encoding"
    assert d.stored_rows == list(range(1, 21)) and d.first_unstored == 21  # the whole chunk of row 23 is lost
    assert d.bad_row == 23 and d.character == "invalid byte 0xE9" and d.column == "external_course_id"
    assert "is not UTF-8 at row 23" in d.sentence() and "rows from 21 on were not stored" in d.sentence()


async def test_an_abandoned_batch_has_no_bad_row_where_it_stopped(feeds_kit, tmp_path):
    feeds_kit.set_row_delay(40)  # one op=do runs about 1 s: a few chunks, then nobody drives the batch
    csv = feeds_kit.make_csv(tmp_path / "clean.csv", 80)
    stored, status = await run_import(feeds_kit, csv, steps=1)
    d = diagnose_feed(read_feed_file(csv), stored, locked=status.locked)
    assert status.locked and 0 < len(stored) < 80 and len(stored) % 10 == 0
    assert d.cause == "abandoned" and d.bad_row is None and d.first_unstored == len(stored) + 1
    assert f"stopped before row {len(stored) + 1}, which has no bad character" in d.sentence()


async def test_a_header_with_a_no_break_space_is_named(feeds_kit, tmp_path):
    csv = feeds_kit.make_csv(tmp_path / "header.csv", 20, "--header-nbsp")
    stored, status = await run_import(feeds_kit, csv)
    d = diagnose_feed(read_feed_file(csv), stored, locked=status.locked)
    assert stored == [] and not status.locked
    assert d.cause == "header" and d.character == "U+00A0 NO-BREAK SPACE" and d.column == "external_email\u00a0"


def test_rows_stored_that_are_not_the_files_first_rows_are_flagged(tmp_path):
    path = tmp_path / "f.csv"
    path.write_text("external_user_id,external_email,external_course_id,complete,date_completed,credit_type,credits\r\n"
                    + "".join(f"U{i:05d},u{i}@x.org,C-100,yes,2024-05-01,ama,1\r\n" for i in range(1, 6)), encoding="utf-8")
    feed = read_feed_file(path)
    stored = [dict(zip(("external_user_id", "external_email", "external_course_id", "complete", "date_completed",
                        "credit_type", "credits"), (f"U{i:05d}", f"u{i}@x.org", "C-100", 1, "2024-05-01", "ama", "1")))
              for i in (1, 3, 9)]
    d = diagnose_feed(feed, stored, locked=True)
    assert d.stored_rows == [1, 3] and d.unstored_rows == [2, 4, 5] and d.stored_not_in_file == 1 and not d.prefix
    assert "not simply the file's first rows" in d.sentence()
