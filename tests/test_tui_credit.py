"""Credit fixes against the real reference LMS: imported credit on an incomplete enrollment is
never reported; the console proposes a completion-only row; `s` asks (courses, learners, what the
LMS will award), then submits; the LMS then awards the credit itself and queues it for PARS."""

from __future__ import annotations

import pytest

from importconsole.tui.app import ImportConsoleApp
from helpers.sandbox import dataset, start_sandbox
from helpers.tui import flat_text, lms_session, screen_text, wait_for, wait_for_text

pytestmark = pytest.mark.usefixtures("private_state")  # tests/conftest.py: state and config in tmp_path

TWO_LEARNERS = [
    {"external_user_id": "u1", "course_external_id": "C-FIXED", "status": "incomplete",
     "enrollment_start": "2026-01-10", "importer": "course",
     "credits": [{"credit_type": "ama", "amount": 1.0, "source": "import"}]},
    {"external_user_id": "u2", "course_external_id": "C-ZERO", "status": "incomplete",
     "enrollment_start": "2026-01-11", "importer": "course",
     "credits": [{"credit_type": "ancc", "amount": 1.0, "source": "import"}]},
]


def _console(server, tmp_path) -> ImportConsoleApp:
    session = lms_session(server, tmp_path)
    return ImportConsoleApp(session=session, workdir=tmp_path, start_mode="credit", theme_dirs=[],
                            state_folder=tmp_path / "console-state")


async def _asked_to_send(pilot, app, proposed: str) -> None:
    """Once the proposals are listed (`proposed` on screen), s: its confirmation dialog."""
    await wait_for_text(pilot, proposed, timeout=15)
    await pilot.press("s")
    await wait_for(pilot, lambda: "Esc: change nothing" in screen_text(app), what="the confirmation")


async def _submit_dated_today(pilot) -> None:
    """Once the two proposals are listed: s, t (the batch's completion date: today), Enter."""
    await wait_for_text(pilot, "2 completion-only rows proposed", timeout=15)
    await pilot.press("s")
    await wait_for_text(pilot, "Enter: submit to the LMS")
    await pilot.press("t")
    await pilot.press("enter")


def _imports(server) -> int:
    return server.db().execute("SELECT count(*) FROM imports").fetchone()[0]


async def test_one_key_submits_the_completion_only_fix_and_the_credit_reaches_pars(tmp_path):
    with start_sandbox(dataset(enrollments=TWO_LEARNERS), rows_per_second=200) as server:
        session = lms_session(server, tmp_path)
        app = ImportConsoleApp(session=session, workdir=tmp_path, start_mode="credit", theme_dirs=[])
        async with app.run_test(size=(120, 40)) as pilot:
            text = await wait_for_text(pilot, "proposed", timeout=15)
            assert "u1" in text and "C-FIXED" in text and "u2" in text and "C-ZERO" in text
            assert "2 completion-only rows proposed" in text
            assert server.db().execute("SELECT count(*) FROM reporting_queue").fetchone()[0] == 0
            await pilot.press("s")
            await wait_for_text(pilot, "Enter: submit to the LMS")
            await pilot.press("t")  # the batch's completion date: today
            await pilot.press("enter")
            await wait_for_text(pilot, "Submitted as imports", timeout=20)
            made = app.screen.submitted
            # two courses, so two imports, one after the other (the course importer has one lock)
            assert len(made) == 2 and all(i.state == "completed" for i in made)
        db = server.db()
        enrollment = db.execute("SELECT status FROM enrollments").fetchall()
        assert [r[0] for r in enrollment] == ["complete", "complete"]
        sources = [r[0] for r in db.execute("SELECT source FROM credit_records")]
        assert sources == ["awarded", "awarded"]
        assert sorted(r[0] for r in db.execute("SELECT entity FROM reporting_queue")) == ["ams", "pars"]
        # exactly the two fixes were imported, nothing twice
        assert db.execute("SELECT count(*) FROM imports").fetchone()[0] == 2
        # the journal recorded what the console did
        journal = (tmp_path / "journal.jsonl").read_text()
        assert str(made[0].id) in journal and str(made[1].id) in journal and server.admin_token not in journal


async def test_another_import_on_the_lock_stops_the_submit_and_the_screen_says_what_was_not_sent(tmp_path):
    data = dataset(enrollments=[
        {"external_user_id": "u1", "course_external_id": "C-FIXED", "status": "incomplete",
         "credits": [{"credit_type": "ama", "amount": 1.0, "source": "import"}]},
        {"external_user_id": "u2", "course_external_id": "C-ZERO", "status": "incomplete",
         "credits": [{"credit_type": "ancc", "amount": 1.0, "source": "import"}]},
    ])
    with start_sandbox(data, rows_per_second=200) as server:
        # Another admin's import hangs on the course importer (a zero-width space in row 1).
        other = server.submit("external_user_id,complete\r\nu3\u200b,1\r\n".encode(), course="C-VAR").json()
        session = lms_session(server, tmp_path)
        app = ImportConsoleApp(session=session, workdir=tmp_path, start_mode="credit", theme_dirs=[])
        async with app.run_test(size=(120, 40)) as pilot:
            await _submit_dated_today(pilot)
            text = await wait_for_text(pilot, "Not submitted: C-FIXED, C-ZERO", timeout=20)
            assert f"locked by import {other['id']}" in text and "Submitted: none." in text
            assert app.screen.submitted == [] and not app.screen.busy
        # nothing of ours reached the LMS; the other import still holds the lock
        assert server.db().execute("SELECT count(*) FROM imports").fetchone()[0] == 1
        assert server.db().execute("SELECT count(*) FROM reporting_queue").fetchone()[0] == 0


async def test_s_asks_first_naming_courses_learners_and_awards_and_esc_sends_nothing(tmp_path):
    with start_sandbox(dataset(enrollments=TWO_LEARNERS), rows_per_second=200) as server:
        app = _console(server, tmp_path)
        async with app.run_test(size=(80, 24)) as pilot:
            await _asked_to_send(pilot, app, "2 completion-only rows proposed")
            text = flat_text(app)  # the dialog wraps at 80 columns
            assert "2 completion-only rows for 2 learners in 2 courses" in text
            assert "C-FIXED, 1 learner (u1): marked complete; the LMS will record 1 ama (awarded, reported to PARS" in text
            assert "C-ZERO, 1 learner (u2): marked complete; the LMS will record 1 ancc (awarded, reported to" in text
            await pilot.press("enter")  # no date chosen yet: nothing is sent
            await wait_for(pilot, lambda: "Choose the completion date first" in flat_text(app), what="the date asked")
            assert _imports(server) == 0  # asking sends nothing
            await pilot.press("escape")
            await pilot.pause(0.5)
            assert app.current_mode == "credit" and _imports(server) == 0


async def test_the_batch_completion_date_is_asked_once_shown_and_is_the_one_the_lms_records(tmp_path):
    with start_sandbox(dataset(enrollments=TWO_LEARNERS), rows_per_second=200) as server:
        app = _console(server, tmp_path)
        async with app.run_test(size=(80, 24)) as pilot:
            await _asked_to_send(pilot, app, "2 completion-only rows proposed")
            assert "the file's dates" not in flat_text(app)  # these proposals come from the LMS, not a file
            await pilot.press("d", *"2026-13-01", "enter")
            await wait_for(pilot, lambda: "is not a completion date" in flat_text(app), what="a bad date refused")
            await pilot.press(*["backspace"] * 10, *"2026-03-01", "enter")
            await wait_for(pilot, lambda: "Chosen: dated 2026-03-01" in flat_text(app), what="the chosen date")
            await pilot.press("enter")
            await wait_for_text(pilot, "Submitted as imports", timeout=20)
        dates = [r[0] for r in server.db().execute("SELECT date_completed FROM enrollments")]
        assert dates == ["2026-03-01", "2026-03-01"]


async def test_after_a_submit_the_list_shows_what_was_sent_and_a_second_s_sends_nothing(tmp_path):
    with start_sandbox(dataset(enrollments=TWO_LEARNERS), rows_per_second=200) as server:
        app = _console(server, tmp_path)
        async with app.run_test(size=(120, 40)) as pilot:
            await _submit_dated_today(pilot)
            await wait_for_text(pilot, "Submitted as imports", timeout=20)
            ids = sorted(i.id for i in app.screen.submitted)
            text = screen_text(app)
            assert f"sent: import {ids[0]}" in text and f"sent: import {ids[1]}" in text
            await pilot.press("s")
            text = await wait_for_text(pilot, f"Already submitted as imports {ids[0]}, {ids[1]}")
            assert "Enter: submit to the LMS" not in text  # no second confirmation, nothing sent
            await pilot.pause(0.5)
            assert _imports(server) == 2
        # the credit-fix files went to the console's state folder, nowhere else
        assert list((tmp_path / "console-state").glob("credit-fix-*/credit-fix-C-FIXED.csv"))


COURSES = [
    {"external_id": "LEGACY-2019", "title": "Legacy", "has_certificate": True, "required_objects": 1,
     "credits": [{"credit_type": "ama", "min": 1.0, "max": 1.0, "increments": 1.0, "enable_variable_credit": False}]},
    {"external_id": "BOARD-REVIEW-2026-SPRING-CARDIOLOGY", "title": "Board review", "has_certificate": True,
     "required_objects": 1,
     "credits": [{"credit_type": "ama", "min": 1.0, "max": 1.0, "increments": 1.0, "enable_variable_credit": False}]},
]


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
async def test_course_ids_are_never_cut_silently(tmp_path, size):
    enrollments = [{"external_user_id": user, "course_external_id": course, "status": "incomplete",
                    "credits": [{"credit_type": "ama", "amount": 1.0, "source": "import"}]}
                   for user, course in (("u1", "LEGACY-2019"), ("u2", "BOARD-REVIEW-2026-SPRING-CARDIOLOGY"))]
    with start_sandbox(dataset(courses=COURSES, enrollments=enrollments)) as server:
        app = _console(server, tmp_path)
        async with app.run_test(size=size) as pilot:
            text = await wait_for_text(pilot, "2 completion-only rows proposed", timeout=15)
            rows = [line for line in text.splitlines() if " u1 " in line or " u2 " in line]
            assert any("LEGACY-2019 " in line for line in rows), text  # not "LEGACY-201"
            long = next(line for line in rows if " u2 " in line)
            assert "BOARD-REVIEW-2026-S…" in long, text  # cut with a mark
            row = next(i for i, p in enumerate(app.screen.proposals) if p.learner == "u2")
            app.screen.query_one("#proposals").move_cursor(row=row)
            await wait_for(pilot, lambda: "u2 in BOARD-REVIEW-2026-SPRING-CARDIOLOGY"
                           in " ".join(screen_text(app).split()), what="the whole id in the detail pane")


async def test_the_confirmation_says_who_gets_more_credit_than_they_hold_now(tmp_path):
    holds_less = [{"external_user_id": "u1", "course_external_id": "C-FIXED", "status": "incomplete",
                   "importer": "course", "credits": [{"credit_type": "ama", "amount": 0.5, "source": "import"}]}]
    with start_sandbox(dataset(enrollments=holds_less)) as server:
        app = _console(server, tmp_path)
        async with app.run_test(size=(80, 24)) as pilot:
            await _asked_to_send(pilot, app, "1 completion-only row proposed")
            assert "1 learner will get more than they hold now: u1 (ama 0.5 -> 1)." in flat_text(app)
            await pilot.press("escape")
        assert _imports(server) == 0
