"""Never a false all-clear: with a refused token or an LMS that does not answer, the title line and
the Monitor say the LMS is not seen, why, since when and what to do, for as long as it lasts (the
lead saw "No imports yet · 0 hung" and a 401 toast gone in seconds); `r` says how it went."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from importconsole.tui.app import ImportConsoleApp
from importconsole.tui.session import LmsSession
from helpers.sandbox import dataset, start_sandbox
from helpers.tui import flat_text, screen_text, wait_for

pytestmark = pytest.mark.usefixtures("private_state")  # tests/conftest.py: state and config in tmp_path


def _console(base_url: str, token: str, tmp_path) -> ImportConsoleApp:
    session = LmsSession(profile="test", base_url=base_url, token=token, journal_path=tmp_path / "journal.jsonl")
    return ImportConsoleApp(session=session, workdir=tmp_path, start_mode="monitor", theme_dirs=[], hung_after=1.0,
                            state_folder=tmp_path / "state-here")


async def _never_all_clear_until(pilot, app, condition, what: str, timeout: float = 30.0) -> None:
    """Wait for `condition`, failing if the screen ever claims "0 hung" or "No imports yet" meanwhile."""
    def never_all_clear() -> bool:
        text = screen_text(app)
        assert "0 hung" not in text and "No imports yet" not in text, text
        return False

    await wait_for(pilot, lambda: condition() or never_all_clear(), timeout=timeout, what=what)


async def test_a_refused_token_is_said_in_the_title_and_the_monitor_for_as_long_as_it_lasts(tmp_path):
    with start_sandbox(dataset()) as server:
        app = _console(server.base_url, "not-the-token", tmp_path)
        async with app.run_test(size=(80, 24)) as pilot:
            await _never_all_clear_until(pilot, app, lambda: "LMS NOT SEEN since" in screen_text(app).splitlines()[0],
                                         "the title line")
            assert ": token refused (m)" in screen_text(app).splitlines()[0]
            assert "imports and hangs not known (why: below)" in screen_text(app).splitlines()[1]
            await wait_for(pilot, lambda: "The LMS has not been seen for" in flat_text(app)
                           and "n (Connect) takes another token" in flat_text(app), what="why, and what to do")
            await pilot.press("r")
            await wait_for(pilot, lambda: any("The LMS did not answer" in n.message for n in app._notifications),
                           timeout=15, what="r's answer")
            await pilot.pause(2.5)  # still said, seconds later (a toast would be gone)
            assert "LMS NOT SEEN since" in screen_text(app).splitlines()[0]
            assert "0 hung" not in screen_text(app)
            await pilot.press("f")  # on another screen too
            await wait_for(pilot, lambda: app.current_mode == "files", what="the files screen")
            assert "LMS NOT SEEN since" in screen_text(app).splitlines()[0]


async def test_an_lms_that_does_not_answer_is_said_and_r_says_when_it_answers_again(tmp_path):
    server = start_sandbox(dataset())
    try:
        port = urlsplit(server.base_url).port
        url = server.base_url
        token = server.admin_token
        server.stop()  # nothing listens there now
        app = _console(url, token, tmp_path)
        async with app.run_test(size=(80, 24)) as pilot:
            await _never_all_clear_until(pilot, app, lambda: "LMS NOT SEEN since" in screen_text(app).splitlines()[0],
                                         "the title line", timeout=60)
            assert ": requests fail (m)" in screen_text(app).splitlines()[0]
            await wait_for(pilot, lambda: "Could not reach the LMS" in flat_text(app)
                           and "r asks the LMS again" in flat_text(app), what="why, and what to do")
            server.start(port=port)  # the LMS is back on the same address
            await pilot.press("r")
            await wait_for(pilot, lambda: any("The LMS answered" in n.message for n in app._notifications),
                           timeout=30, what="r's answer")
            await wait_for(pilot, lambda: "NOT SEEN" not in screen_text(app), what="the title back to normal")
            await wait_for(pilot, lambda: "0 active · 0 hung" in screen_text(app), what="the counts, now known")
    finally:
        server.close()


async def test_the_recover_plan_says_when_the_lms_is_no_longer_seen_and_unlocks_nothing(tmp_path):
    rows = ["u1,1,2026-01-01", "u2\u200b,1,2026-01-02", "u3,1,2026-01-03"]
    server = start_sandbox(dataset(), rows_per_second=50)
    try:
        port = urlsplit(server.base_url).port
        app = _console(server.base_url, server.admin_token, tmp_path)
        async with app.run_test(size=(100, 32)) as pilot:
            hung = server.submit(("external_user_id,complete,date_completed\r\n" + "".join(r + "\r\n" for r in rows))
                                 .encode(), course="C-FIXED").json()
            await wait_for(pilot, lambda: "Press u to unlock" in screen_text(app), timeout=15, what="the hang")
            await pilot.press("u")
            await wait_for(pilot, lambda: f"Enter: unlock import {hung['id']}" in flat_text(app), timeout=15,
                           what="the plan")
            dialog = app.screen
            server.stop()  # the LMS goes away while the plan is open
            await wait_for(pilot, lambda: f"whether import {hung['id']} is hung is not known" in flat_text(app),
                           timeout=60, what="the plan saying the LMS is not seen")
            await wait_for(pilot, lambda: "LMS NOT SEEN since" in screen_text(app).splitlines()[0], timeout=3,
                           what="the title line under the dialog repainted")
            await pilot.press("enter")
            await pilot.pause(0.5)
            assert app.screen is dialog and dialog.result_id is None and not dialog.executing
        server.start(port=port)
        assert server.get_import(hung["id"])["state"] == "running"  # nothing was unlocked
    finally:
        server.close()


async def test_while_the_lms_is_not_seen_an_import_shows_no_rate_and_after_it_answers_no_rate_from_the_outage(tmp_path):
    # The rate of an import the console cannot see is not known: it said "0.0 rows/s" (and after the
    # LMS answered, "0.6 rows/s, ETA 4m48s" for an import going at 10 rows/s, the outage counted as rows/s).
    from helpers.workflows import course_file, learners

    server = start_sandbox(dataset(users=learners(400)), rows_per_second=10)
    try:
        port = urlsplit(server.base_url).port
        created = server.submit(course_file(400), course="C-FIXED").json()
        app = _console(server.base_url, server.admin_token, tmp_path)

        def row() -> str:
            return next((line for line in screen_text(app).splitlines() if line.startswith(f"{created['id']} ")), "")

        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: " 10." in row() or " 9." in row(), timeout=30, what="the rate while it runs")
            server.stop()
            await wait_for(pilot, lambda: "LMS NOT SEEN since" in screen_text(app), timeout=30, what="not seen")
            await pilot.pause(11)  # an outage longer than the rate's window
            assert "rows/s" in screen_text(app) and " 0.0 " not in row() and "/400 " in row(), row()
            server.start(port=port, read_tokens=False)
            await pilot.press("r")
            await wait_for(pilot, lambda: "NOT SEEN" not in screen_text(app), timeout=30, what="seen again")
            rates = []
            for _ in range(40):
                cells = row().split()
                if len(cells) > 6 and cells[5].replace(".", "", 1).isdigit():
                    rates.append(float(cells[5]))
                await pilot.pause(0.1)
            assert rates and min(rates) >= 5.0, (rates, row())
    finally:
        server.close()
