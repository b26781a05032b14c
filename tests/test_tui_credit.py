"""Credit fixes against the real reference LMS: imported credit on an incomplete enrollment is
never reported; the console proposes a completion-only row; one key submits it; the LMS then
awards the credit itself and queues it for PARS."""

from __future__ import annotations

from importconsole.tui.app import ImportConsoleApp
from importconsole.tui.session import LmsSession
from sandbox_helpers import dataset, start_sandbox
from tui_helpers import private_state, wait_for_text  # noqa: F401 (autouse fixture)


async def test_one_key_submits_the_completion_only_fix_and_the_credit_reaches_pars(tmp_path):
    data = dataset(enrollments=[
        {"external_user_id": "u1", "course_external_id": "C-FIXED", "status": "incomplete",
         "enrollment_start": "2026-01-10", "importer": "course",
         "credits": [{"credit_type": "ama", "amount": 1.0, "source": "import"}]},
        {"external_user_id": "u2", "course_external_id": "C-ZERO", "status": "incomplete",
         "enrollment_start": "2026-01-11", "importer": "course",
         "credits": [{"credit_type": "ancc", "amount": 1.0, "source": "import"}]},
    ])
    with start_sandbox(data, rows_per_second=200) as server:
        session = LmsSession(profile="test", base_url=server.base_url, token=server.admin_token,
                             journal_path=tmp_path / "journal.jsonl")
        app = ImportConsoleApp(session=session, workdir=tmp_path, start_mode="credit", theme_dirs=[])
        async with app.run_test(size=(120, 40)) as pilot:
            text = await wait_for_text(pilot, "proposed", timeout=15)
            assert "u1" in text and "C-FIXED" in text and "u2" in text and "C-ZERO" in text
            assert "2 completion-only row(s) proposed" in text
            assert server.db().execute("SELECT count(*) FROM reporting_queue").fetchone()[0] == 0
            await pilot.press("s")
            await wait_for_text(pilot, "Submitted as import(s)", timeout=20)
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
        session = LmsSession(profile="test", base_url=server.base_url, token=server.admin_token,
                             journal_path=tmp_path / "journal.jsonl")
        app = ImportConsoleApp(session=session, workdir=tmp_path, start_mode="credit", theme_dirs=[])
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for_text(pilot, "2 completion-only row(s) proposed", timeout=15)
            await pilot.press("s")
            text = await wait_for_text(pilot, "Not submitted: C-FIXED, C-ZERO", timeout=20)
            assert f"locked by import {other['id']}" in text and "Submitted: none." in text
            assert app.screen.submitted == [] and not app.screen.busy
        # nothing of ours reached the LMS; the other import still holds the lock
        assert server.db().execute("SELECT count(*) FROM imports").fetchone()[0] == 1
        assert server.db().execute("SELECT count(*) FROM reporting_queue").fetchone()[0] == 0
