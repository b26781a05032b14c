"""The TUI's submit on an EthosCE profile, against the real Drupal 7 + Feeds site of the kit (tests/helpers/feeds_kit.py):
the same keys as on the console's own API (s, Ctrl+S, Enter), a progress bar in rows, the end as the site holds
it; a dead batch and the lock said at once; an upload refused while the importer is locked; quitting mid-batch.
Outcomes are read from the site's SQLite database and the console's journal."""

from __future__ import annotations

from contextlib import asynccontextmanager

import pytest

from importconsole.tui.app import ImportConsoleApp
from helpers.feeds_kit import IMPORTER, colleague_hangs_the_importer, file_keys, locked
from helpers.tui import screen_text, wait_for, wait_for_text
from helpers.wait import wait_for as wait_for_sync

SIZE = (80, 24)  # the admin's SSH terminal


def console(kit, tmp_path, path):
    """The console as `importconsole` starts it on the kit's profile (both passwords from the environment)."""
    from importconsole.tui.connecting import session_from_config

    session, problem = session_from_config(str(tmp_path / "config.toml"), None)
    assert session is not None and session.kind == "ethosce", problem
    return ImportConsoleApp(session=session, workdir=tmp_path, open_path=path, theme_dirs=[])


async def confirm(pilot, name: str) -> str:
    """s, Ctrl+S (validated with the site's facts), then the confirmation."""
    await wait_for_text(pilot, name)
    await pilot.press("s")
    await wait_for_text(pilot, f"Submit {name}")
    await pilot.press("ctrl+s")
    return await wait_for_text(pilot, "Enter: import", timeout=30)


def dialog_text(app) -> str:
    """The submit dialog's text as one line (its wrapped lines joined)."""
    inner = [ln[ln.index("█") + 1:ln.rindex("█")] for ln in screen_text(app).splitlines() if ln.count("█") >= 2]
    return " ".join(" ".join(inner).split())


def settle(kit) -> None:
    """The batch step the console abandoned goes on on the server until it ends (Drupal steps last about 1 s):
    wait until the stored rows stop moving, so the assertions and the next test's reset see the site at rest."""
    import time

    last = {"count": stored(kit), "since": time.monotonic()}

    def at_rest() -> bool:
        if (now := stored(kit)) != last["count"]:
            last.update(count=now, since=time.monotonic())
        return time.monotonic() - last["since"] >= 2.5

    wait_for_sync(at_rest, 120, 0.25, "the stored rows to stop moving for 2.5 s", show=lambda: f"{stored(kit)} rows stored")


@asynccontextmanager
async def mid_batch(kit, tmp_path):
    """A 50-row file submitted, one 10-row chunk a step (a step abandoned cannot finish the file): yields
    (app, pilot) once the console is driving the batch."""
    kit.set_row_delay(100)
    app = console(kit, tmp_path, kit.make_csv(tmp_path / "slow.csv", 50))
    async with app.run_test(size=SIZE) as pilot:
        await confirm(pilot, "slow.csv")
        await pilot.press("enter")
        await wait_for_text(pilot, "Importing: ", timeout=30)
        yield app, pilot


def stored(kit) -> int:
    return kit.scalar("SELECT COUNT(*) FROM courserecord_transcript_import")


async def test_a_clean_submit_shows_progress_in_rows_and_ends_with_every_row_stored_once(kit_cli, tmp_path):
    kit_cli.set_row_delay(40)  # Drupal's 1 s batch steps then report progress on the way
    path = kit_cli.make_csv(tmp_path / "clean.csv", 50)
    app = console(kit_cli, tmp_path, path)
    async with app.run_test(size=SIZE) as pilot:
        text = await confirm(pilot, "clean.csv")
        assert "File: clean.csv (50 rows)" in text and f"Site: {kit_cli.base_url}" in text
        assert f"Importer: {IMPORTER}" in text and "Enter: import 50 rows with course_record_import" in text
        assert stored(kit_cli) == 0  # nothing sent before Enter
        await pilot.press("enter")
        dialog, seen = app.screen, []

        def progress_or_end():
            text = screen_text(app)
            line = next((ln for ln in text.splitlines() if "Importing: " in ln), None)
            if line:
                seen.append(line.split("Importing: ")[1].split(" rows")[0])
            return dialog.stage == "done"

        await wait_for(pilot, progress_or_end, timeout=60, interval=0.02, what="the batch driven to its end")
        text = dialog_text(app)
        assert "50 rows sent; the site said: Created 50 course record rows." in text, text
        assert "The site stored 50 rows since the upload (the file has 50), read from restws." in text, text
        assert "Traceback" not in text and kit_cli.admin_password not in text
    partial = [s for s in seen if not s.startswith(("0 of", "50 of"))]
    assert partial and all(s.endswith("of 50") for s in seen), seen  # rows of the file, not Feeds' bytes
    assert kit_cli.stored_rows() == file_keys(path) and not locked(kit_cli)  # every row once
    journal = (tmp_path / "state" / "journal.jsonl").read_text()
    assert '"drive_batch"' in journal and '"finished"' in journal and kit_cli.admin_password not in journal


@pytest.fixture
def rules_miss_row_23(monkeypatch):
    """The rules flag U+200B; the dead batch below stands for a fault they do not know: row 23's findings
    (its special character, the course id it spoils) are dropped."""
    from importconsole.operations import submit

    real = submit._validate

    def validate(*args, **kwargs):
        report = real(*args, **kwargs)
        for finding in [f for f in report.findings if f.row == 23 or "U+200B" in f"{f.value}{f.message}".upper()]:
            report.findings.remove(finding)
            report.counts[finding.rule] -= 1
        return report

    monkeypatch.setattr(submit, "_validate", validate)


async def test_a_dead_batch_is_said_at_once_with_the_lock_and_22_rows_stored(kit_cli, tmp_path, rules_miss_row_23):
    path = kit_cli.make_csv(tmp_path / "zwsp.csv", 50, "--bad-row", "23", "--bad", "zwsp")  # 10 rows a chunk
    app = console(kit_cli, tmp_path, path)
    async with app.run_test(size=SIZE) as pilot:
        await confirm(pilot, "zwsp.csv")
        await pilot.press("enter")
        text = await wait_for_text(pilot, "died on the site", timeout=60)
        assert "the importer is now locked at 4" in dialog_text(app), text  # 4x % of the file's bytes
        assert "u there recovers it" in text and "Traceback" not in text
        assert "The site stored 22 rows since the upload (the file has 50)" in dialog_text(app)
        assert "Enter or Esc: close" in screen_text(app)  # the whole dialog fits 80x24
        assert app.screen.stage == "done"
        assert stored(kit_cli) == 22 and locked(kit_cli)
        await pilot.press("escape")
        await pilot.press("m")  # the monitor says it hung at once (the console saw the batch die)
        await wait_for_text(pilot, "course_record_import: hung 4", timeout=20)
    journal = (tmp_path / "state" / "journal.jsonl").read_text()
    assert '"died"' in journal


async def test_a_submit_while_locked_is_refused_naming_the_lock_and_nothing_is_stored(kit_cli, tmp_path):
    colleague_hangs_the_importer(kit_cli, kit_cli.make_csv(tmp_path / "colleague.csv", 50, "--bad-row", "23", "--bad", "zwsp"))
    clean = tmp_path / "clean.csv"  # learners the colleague's rows did not enroll: the file validates clean
    clean.write_bytes(b"external_user_id,external_email,external_course_id,complete,date_completed,credit_type,credits\r\n"
                      b"U00030,user30@example.com,C-100,1,2024-05-02,ama,1.5\r\n"
                      b"U00034,user34@example.com,C-100,1,2024-05-02,ama,1.5\r\n")
    app = console(kit_cli, tmp_path, clean)
    async with app.run_test(size=SIZE) as pilot:
        await confirm(pilot, "clean.csv")
        await pilot.press("enter")
        text = await wait_for_text(pilot, "Nothing was uploaded", timeout=30)
        flat = " ".join(text.split())
        assert "importer course_record_import is locked at 4" in flat and "u there recovers it" in flat, text
    assert stored(kit_cli) == 22 and locked(kit_cli)  # the colleague's rows only


async def test_quitting_mid_batch_says_the_importer_is_stuck_and_the_journal_keeps_the_batch(kit_cli, tmp_path, capsys):
    async with mid_batch(kit_cli, tmp_path) as (app, pilot):
        await pilot.press("escape")  # the first Esc only asks
        await wait_for_text(pilot, "Esc again stops driving the batch")
        assert app.screen.stage == "sending"
        await pilot.press("ctrl+q")
    settle(kit_cli)
    err = capsys.readouterr().err
    assert "is stuck mid-import at" in err and "importconsole recover course_record_import --file" in err, err
    from importconsole.journal import Journal

    entry = [e for e in Journal(tmp_path / "state" / "journal.jsonl").entries() if e.action == "drive_batch"][-1]
    assert entry.outcome == "interrupted" and entry.extra["batch_id"]
    assert locked(kit_cli) and 0 < stored(kit_cli) < 50


async def test_esc_twice_mid_batch_stops_driving_it_and_says_so_on_the_screen(kit_cli, tmp_path):
    async with mid_batch(kit_cli, tmp_path) as (app, pilot):
        await pilot.press("escape", "escape")
        text = " ".join((await wait_for_text(pilot, "stuck mid-import", timeout=20)).split())
        assert "u there recovers it" in text and app.screen.stage == "done"
    settle(kit_cli)
    assert locked(kit_cli) and 0 < stored(kit_cli) < 50


async def test_background_mode_is_said_as_queued_until_the_sites_cron_runs(kit_cli, tmp_path):
    kit_cli.set_background(True)
    path = kit_cli.make_csv(tmp_path / "clean.csv", 30)
    app = console(kit_cli, tmp_path, path)
    async with app.run_test(size=SIZE) as pilot:
        await confirm(pilot, "clean.csv")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen.stage == "done", timeout=30, what="the upload")
        text = dialog_text(app)
        assert "the import is queued until the site's cron runs (background mode). It is not hung" in text, text
    assert stored(kit_cli) == 0  # cron has not run
    kit_cli.cron()
    assert stored(kit_cli) == 30
