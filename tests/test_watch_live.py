"""The watcher against the real reference LMS: one event stream for every import, hung detection
within hung_after + one poll, and no resubmission when the stream drops."""

import asyncio
import time

import pytest

from helpers.sandbox import dataset, start_sandbox
from helpers.wait import until
from helpers.workflows import client_for, count, course_file, learners, start_on_same_port, submit

from importconsole.operations.hung import diagnose_import
from importconsole.operations.watch import Backoff, ImportWatcher

HUNG_AFTER, POLL = 1.0, 0.2


async def test_zero_width_space_at_row_120_is_reported_hung_within_threshold_plus_one_poll():
    with start_sandbox(dataset(users=learners(200)), rows_per_second=400) as lms:
        async with client_for(lms) as client:
            watcher = ImportWatcher(client, hung_after=HUNG_AFTER, poll_interval=POLL,
                                    diagnose=lambda item: diagnose_import(client, item.id))
            seen = []
            watcher.on_change(lambda u: u.kind == "import" and seen.append((time.monotonic(), u.view)))
            runner = asyncio.create_task(watcher.run())
            try:
                await until(lambda: watcher.connection == "live", message="the event stream")
                item = await submit(lms, course_file(200, bad_row=120), course="C-FIXED")
                view = await until(lambda: (v := watcher.views.get(item["id"])) and v.diagnosis and v, timeout=15,
                                   message="a hung view with its diagnosis")
            finally:
                watcher.stop()
                await runner
    stalled_at = min(t for t, v in seen if v.import_id == item["id"] and v.rows_processed == 119)
    hung_at = min(t for t, v in seen if v.import_id == item["id"] and v.hung)
    assert hung_at - stalled_at <= HUNG_AFTER + POLL + 0.15  # scheduling slack on a busy 2-core box
    assert not [v for _, v in seen if v.hung and v.rows_processed < 119]  # no false alarm on the way
    assert view.shown_state == "hung" and view.holds_lock and view.hung.stopped_at_row == 120
    assert (view.rows_processed, view.rows_total, view.created_by) == (119, 200, "admin")
    chars = view.diagnosis.characters
    assert [(c.row, c.column, c.code_point) for c in chars] == [(120, "external_user_id", "U+200B")]
    assert "row 120" in view.describe() and "U+200B" in view.describe()
    # One subscription for everything; nothing was submitted by watching.
    assert watcher.stream_connects == 1


async def test_a_slow_import_that_keeps_moving_is_never_called_hung():
    with start_sandbox(dataset(users=learners(6)), rows_per_second=2.5) as lms:
        async with client_for(lms) as client:
            watcher = ImportWatcher(client, hung_after=HUNG_AFTER, poll_interval=POLL)
            hung_seen = []
            watcher.on_change(lambda u: u.kind == "import" and u.view.hung and hung_seen.append(u.view))
            runner = asyncio.create_task(watcher.run())
            try:
                await until(lambda: watcher.connection == "live")
                item = await submit(lms, course_file(6), course="C-FIXED")
                mid = await until(lambda: (v := watcher.views.get(item["id"])) and v.rows_processed >= 3 and v, timeout=10)
                done = await until(lambda: (v := watcher.views.get(item["id"])) and v.finished and v, timeout=10)
            finally:
                watcher.stop()
                await runner
    assert hung_seen == []
    assert mid.rate is not None and 1.0 < mid.rate < 4.0  # about 2.5 rows/s
    assert mid.eta_seconds is not None and mid.eta_seconds > 0
    assert (done.state, done.rows_processed, done.rate, done.eta_seconds) == ("completed", 6, None, None)


@pytest.mark.slow
async def test_the_event_stream_drops_mid_import_the_watcher_reconnects_and_resubmits_nothing():
    with start_sandbox(dataset(users=learners(40)), rows_per_second=20) as lms:
        async with client_for(lms) as client:
            watcher = ImportWatcher(client, hung_after=30, poll_interval=POLL, backoff=Backoff(base=0.1, cap=0.5))
            connections = []
            watcher.on_change(lambda u: u.kind == "connection" and connections.append(u.connection))
            runner = asyncio.create_task(watcher.run())
            try:
                await until(lambda: watcher.connection == "live")
                item = await submit(lms, course_file(40), course="C-FIXED", key="watch-drop-1")
                await until(lambda: (v := watcher.views.get(item["id"])) and v.rows_processed >= 5, timeout=10)
                lms.kill()  # the stream drops with the server (and processing stops)
                await until(lambda: watcher.connection == "polling", message="the watcher to notice")
                await asyncio.sleep(0.5)  # a few failed polls and reconnects while it is down
                await asyncio.to_thread(start_on_same_port, lms)
                done = await until(lambda: (v := watcher.views.get(item["id"])) and v.finished and v, timeout=20,
                                   message="the import to finish, seen through the new stream")
            finally:
                watcher.stop()
                await runner
        assert connections[:3] == ["live", "polling", "live"], (connections, watcher.stream_connects, watcher.last_error)
        assert watcher.stream_connects >= 2
        assert (done.state, done.rows_processed) == ("completed", 40)
        # Nothing resubmitted: one import in the LMS, every row once.
        assert count(lms, "SELECT count(*) FROM imports") == 1
        assert count(lms, "SELECT count(*) FROM import_rows WHERE import_id = ?", item["id"]) == 40
        assert count(lms, "SELECT count(*) FROM enrollments") == 40


async def test_while_the_stream_is_refused_the_watcher_polls_and_still_follows_the_import():
    with start_sandbox(dataset(users=learners(20)), rows_per_second=40, faults=True) as lms:
        refused = await asyncio.to_thread(
            lms.client().post, "/_faults", json={"kind": "status", "status": 503, "times": 1000,
                                                 "path_prefix": "/api/v1/events", "method": "GET"})
        assert refused.status_code in (200, 201, 204)
        async with client_for(lms) as client:
            watcher = ImportWatcher(client, hung_after=30, poll_interval=POLL, backoff=Backoff(base=0.1, cap=0.3))
            runner = asyncio.create_task(watcher.run())
            try:
                item = await submit(lms, course_file(20), course="C-FIXED")
                done = await until(lambda: (v := watcher.views.get(item["id"])) and v.finished and v, timeout=10)
            finally:
                watcher.stop()
                await runner
        assert watcher.connection == "stopped" and watcher.polls >= 2 and watcher.stream_connects >= 2
        assert (done.state, done.rows_processed) == ("completed", 20)
        assert count(lms, "SELECT count(*) FROM imports") == 1


def skewed_wall_clock(offset: float):
    """The console's clock set deliberately wrong (offset seconds off the real time)."""
    return lambda: time.time() + offset


async def stall_on_the_server(lms, item_id: int, rows: int, seconds: float) -> dict:
    """Wait until the import has sat at `rows` for `seconds` by the server's own stamps."""
    from importconsole.lms.models import parse_time
    await asyncio.to_thread(lms.wait_rows, item_id, rows)
    row = await asyncio.to_thread(lms.get_import, item_id)
    await asyncio.sleep(seconds)
    again = await asyncio.to_thread(lms.get_import, item_id)
    assert again["rows_processed"] == rows and again["state"] == "running"  # really stuck
    assert parse_time(again["last_progress_at"]) == parse_time(row["last_progress_at"])
    return again


@pytest.mark.parametrize("skew", [-6 * 3600.0, 3 * 86400.0])
async def test_an_import_hung_before_the_watcher_started_is_hung_on_its_first_sync(skew):
    with start_sandbox(dataset(users=learners(10)), rows_per_second=200) as lms:
        item = await submit(lms, course_file(10, bad_row=5), course="C-FIXED")
        await stall_on_the_server(lms, item["id"], 4, 2.6)  # stuck well before anyone watches
        async with client_for(lms) as client:
            watcher = ImportWatcher(client, hung_after=2.0, poll_interval=POLL, clock=skewed_wall_clock(skew),
                                    diagnose=lambda i: diagnose_import(client, i.id))
            started = time.monotonic()
            runner = asyncio.create_task(watcher.run())
            try:
                hung = await until(lambda: (v := watcher.views.get(item["id"])) and v.hung and v, timeout=5,
                                   message="the hung view")
                flagged_after = time.monotonic() - started
                view = await until(lambda: (v := watcher.views.get(item["id"])) and v.diagnosis and v, timeout=5,
                                   message="the diagnosis")
            finally:
                watcher.stop()
                await runner
    assert flagged_after < 1.0, flagged_after  # the first sync, not hung_after (2 s) later
    assert watcher.polls <= 2  # the stream's resync (and at most one polling tick before it)
    assert hung.shown_state == "hung" and hung.holds_lock and hung.hung.stopped_at_row == 5
    assert hung.hung.stalled_for >= 2.5  # the server's measure, not time since the console opened
    assert [(c.row, c.code_point) for c in view.diagnosis.characters] == [(5, "U+200B")]
    assert "stopped at row 5" in view.describe()


async def test_a_slow_import_already_moving_when_the_watcher_starts_is_never_hung():
    """Seeded from the server's stamps on the first sync, a moving import (a row every 0.4 s,
    hung_after 1 s) is never called hung, with the console's clock hours off."""
    with start_sandbox(dataset(users=learners(8)), rows_per_second=2.5) as lms:
        item = await submit(lms, course_file(8), course="C-FIXED")
        await asyncio.to_thread(lms.wait_rows, item["id"], 2)
        async with client_for(lms) as client:
            watcher = ImportWatcher(client, hung_after=1.0, poll_interval=POLL, clock=skewed_wall_clock(-5 * 3600.0))
            hung_seen = []
            watcher.on_change(lambda u: u.kind == "import" and u.view.hung and hung_seen.append(u.view))
            runner = asyncio.create_task(watcher.run())
            try:
                done = await until(lambda: (v := watcher.views.get(item["id"])) and v.finished and v, timeout=10)
            finally:
                watcher.stop()
                await runner
    assert watcher.polls >= 1 and hung_seen == []
    assert (done.state, done.rows_processed) == ("completed", 8)


async def test_a_token_refused_mid_watch_stops_the_watcher_and_says_why():
    """Fault 11 while watching: after the stream drops, the LMS refuses the token (401). The
    watcher stops with the LMS's sentence instead of retrying for ever in silence."""
    from importconsole.lms.errors import Unauthorized

    with start_sandbox(dataset(users=learners(10)), rows_per_second=5, faults=True) as lms:
        async with client_for(lms) as client:
            watcher = ImportWatcher(client, hung_after=30, poll_interval=POLL, backoff=Backoff(base=0.1, cap=0.3))
            runner = asyncio.create_task(watcher.run())
            try:
                await until(lambda: watcher.connection == "live")
                lms.kill()
                await until(lambda: watcher.connection == "polling", message="the watcher to notice")
                await asyncio.to_thread(start_on_same_port, lms)
                refused = await asyncio.to_thread(
                    lms.client().post, "/_faults", json={"kind": "status", "status": 401, "times": 1000,
                                                         "path_prefix": "/api/v1/", "method": "GET"})
                assert refused.status_code in (200, 201, 204)
                await asyncio.wait_for(runner, timeout=5)
            finally:
                watcher.stop()
                await runner
    assert isinstance(watcher.fatal, Unauthorized) and watcher.connection == "stopped"
    assert "did not accept the API token" in watcher.last_error and lms.admin_token not in watcher.last_error
