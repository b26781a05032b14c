"""The console's commands on an EthosCE profile, against the real Drupal 7 + Feeds site of the kit
(tests/helpers/feeds_kit.py), outcomes read from the site's SQLite database.

A colleague's import is uploaded with plain httpx, as a browser would (login form, import form, batch
steps until the step that answers 500): the console did not upload it and must be given the file.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter

import pytest

from importconsole.cli import main
from helpers.feeds_kit import (
    IMPORTER, colleague_hangs_the_importer, colleague_imports_slowly, colleague_schedules,
    end_the_lease, file_keys, locked,
)


def test_a_clean_submit_drives_the_batch_with_rows_and_stores_every_row(kit_cli, tmp_path, capsys):
    kit_cli.set_row_delay(40)  # Drupal's 1 s batch steps then report progress on the way
    path = kit_cli.make_csv(tmp_path / "clean.csv", 50)
    steps = []
    from importconsole.cli import ethosce_cmds

    original = ethosce_cmds.RowProgress.__call__
    ethosce_cmds.RowProgress.__call__ = lambda self, rows, total: (steps.append((rows, total)), original(self, rows, total))[1]
    try:
        assert main(["submit", str(path), "--yes"]) == 0
    finally:
        ethosce_cmds.RowProgress.__call__ = original
    out = capsys.readouterr()
    assert "50 rows sent; the site said: Created 50 course record rows." in out.out
    assert "Importing: 50/50 rows" in out.err
    assert len(steps) >= 2 and steps[-1] == (50, 50) and 0 < steps[0][0] < 50  # rows, not Feeds' byte percentage
    assert [r for r, _ in steps] == sorted(r for r, _ in steps)
    assert kit_cli.stored_rows() == file_keys(path)
    assert main(["imports"]) == 0
    listed = capsys.readouterr().out
    assert IMPORTER in listed and "idle, 50 rows stored" in listed
    journal = (tmp_path / "state" / "journal.jsonl").read_text()
    assert '"batch_id"' in journal and kit_cli.admin_password not in journal


def test_a_colleagues_import_hung_at_row_23_is_detected_diagnosed_and_recovered(kit_cli, tmp_path, capsys):
    path = kit_cli.make_csv(tmp_path / "colleague.csv", 50, "--bad-row", "23", "--bad", "zwsp")
    assert colleague_hangs_the_importer(kit_cli, path) == 500
    assert locked(kit_cli) and kit_cli.scalar("SELECT COUNT(*) FROM courserecord_transcript_import") == 22

    started = time.monotonic()
    assert main(["watch", IMPORTER]) == 1
    took = time.monotonic() - started
    out = capsys.readouterr().out
    assert "course_record_import: hung 4" in out and "It is hung: locked at 4" in out
    assert took < 1 + 0.2 + 3  # hung_after plus one poll, plus the login and page reads

    assert main(["diagnose", IMPORTER]) == 0  # the console did not upload it: the file the importer holds is read
    assert "(the file the importer holds, downloaded from the site to " in capsys.readouterr().out

    assert main(["diagnose", IMPORTER, "--file", str(path)]) == 0
    said = capsys.readouterr().out
    assert "the site stored 22 of them" in said and "not stored: 28" in said
    assert "stopped at row 23 (line 24): special characters: U+200B (ZERO WIDTH SPACE) in row 23" in said
    assert "The import died on row 23 (line 24)" in said and "Feeds stays locked" in said

    assert main(["recover", IMPORTER, "--file", str(path), "--yes"]) == 0
    said = capsys.readouterr().out
    assert "unlocked course_record_import: the import button is back" in said and "re-imported rows 23-50" in said
    assert not locked(kit_cli)
    clean = [tuple(cell.replace("\u200b", "") for cell in key) for key in file_keys(path)]
    assert Counter(kit_cli.stored_rows()) == Counter(clean) and len(kit_cli.stored_rows()) == 50  # each row once


def test_an_import_that_moved_before_the_unlock_is_not_unlocked(kit_cli, tmp_path):
    from importconsole.config import load_config
    from importconsole.journal import Journal
    from importconsole.lms.connect import connect
    from importconsole.operations.ethosce import ImporterMoved, plan_importer, recover_importer

    path = kit_cli.make_csv(tmp_path / "colleague.csv", 50, "--bad-row", "23", "--bad", "zwsp")
    colleague_hangs_the_importer(kit_cli, path)
    journal = Journal(tmp_path / "journal.jsonl")

    async def go():
        async with await connect(load_config().profile()) as site:
            plan = await plan_importer(site, IMPORTER, file=path, journal=journal)
            assert plan.missing[0] == 23
            # Another writer stores a row between the plan and the unlock: the import is not hung.
            with kit_cli.db() as db:
                db.execute("INSERT INTO courserecord_transcript_import (external_user_id, external_email, "
                           "external_course_id, complete, credits, imported, created) VALUES "
                           "('U00040', 'user40@example.com', 'C-100', 1, '1', 0, 0)")
            with pytest.raises(ImporterMoved) as moved:
                await recover_importer(site, plan, journal=journal)
            return str(moved.value)

    said = asyncio.run(go())
    assert "moved since the diagnosis" in said and "NOT unlocked" in said
    assert locked(kit_cli) and kit_cli.scalar("SELECT COUNT(*) FROM courserecord_transcript_import") == 23


def test_a_live_import_is_not_unlocked_it_must_not_move_for_hung_after_first(kit_cli, tmp_path, capsys):
    """The reference LMS's rule on EthosCE: recover unlocks only a hung import. The site never says when
    an import last moved, so the console watches it for hung_after: a colleague's batch that moves a chunk
    every few seconds is left alone (compare-and-unlock alone saw nothing move between plan and post)."""
    config = tmp_path / "config.toml"
    config.write_text(config.read_text().replace("hung_after = 1", "hung_after = 30"))
    kit_cli.set_row_delay(120)  # a chunk of 10 rows takes 1.2 s: one chunk per batch step (Drupal's steps last 1 s)
    path = kit_cli.make_csv(tmp_path / "colleague.csv", 40)  # four batch steps
    with colleague_imports_slowly(kit_cli, path) as steps:
        assert main(["recover", IMPORTER, "--file", str(path), "--yes"]) == 1
    said = capsys.readouterr().out
    assert f"Checking that {IMPORTER} is hung" in said
    assert f"Importer {IMPORTER} is not hung, so it was not unlocked: it moved within" in said, said
    assert "counts as hung only after 30s without progress" in said and "--hung-after SECONDS" in said
    assert "unlocked course_record_import" not in said and "re-imported" not in said
    assert steps and set(steps) == {200}  # the colleague's batch went on to its end, never cut short
    assert not locked(kit_cli)
    assert Counter(kit_cli.stored_rows()) == Counter(file_keys(path)) and len(kit_cli.stored_rows()) == 40  # each once


async def test_u_in_the_console_leaves_a_live_batch_alone_it_must_not_move_for_hung_after_first(kit_cli, tmp_path):
    """The same rule in the console: `u` took the hung, else the locked, importer, and Enter unlocked a live batch."""
    from helpers.tui import wait_for_text

    from importconsole.tui.app import ImportConsoleApp

    config = tmp_path / "config.toml"
    config.write_text(config.read_text().replace("hung_after = 1", "hung_after = 30"))
    kit_cli.set_row_delay(120)
    path = kit_cli.make_csv(tmp_path / "colleague.csv", 40)
    with colleague_imports_slowly(kit_cli, path) as steps:
        app = ImportConsoleApp(session=None, workdir=tmp_path, start_mode="connect", theme_dirs=[], config_path=str(config))
        async with app.run_test(size=(120, 50)) as pilot:
            await pilot.press("ctrl+s")
            await wait_for_text(pilot, "course_record_import: importing", timeout=20)
            await pilot.press("u")
            await wait_for_text(pilot, "Re-import rows", timeout=20)
            await pilot.press("enter")
            text = await wait_for_text(pilot, "so it was not unlocked", timeout=30)
            assert f"Checking that {IMPORTER} is hung" in text and "Enter: make a fresh plan" in text
    assert steps and set(steps) == {200}  # the colleague's batch went on to its end, never cut short
    assert not locked(kit_cli)
    assert Counter(kit_cli.stored_rows()) == Counter(file_keys(path)) and len(kit_cli.stored_rows()) == 40  # each once


def test_an_upload_while_locked_is_refused_and_nothing_is_stored(kit_cli, tmp_path, capsys):
    colleague_hangs_the_importer(kit_cli, kit_cli.make_csv(tmp_path / "colleague.csv", 50, "--bad-row", "23", "--bad", "zwsp"))
    clean = tmp_path / "clean.csv"  # learners the colleague's rows did not enroll: the file validates clean
    clean.write_bytes(b"external_user_id,external_email,external_course_id,complete,date_completed,credit_type,credits\r\n"
                      b"U00030,user30@example.com,C-100,1,2024-05-02,ama,1.5\r\n"
                      b"U00034,user34@example.com,C-100,1,2024-05-02,ama,1.5\r\n")
    assert main(["submit", str(clean), "--yes"]) == 1
    err = capsys.readouterr().err
    assert "Nothing was uploaded: importer course_record_import is locked at 4" in err
    assert "importconsole recover course_record_import" in err and "Traceback" not in err
    assert kit_cli.scalar("SELECT COUNT(*) FROM courserecord_transcript_import") == 22


def test_a_wrong_password_stops_after_one_attempt_and_a_wrong_restws_password_is_said(kit_cli, monkeypatch, capsys):
    monkeypatch.setenv("IMPORTCONSOLE_PASSWORD", "wrong-" + kit_cli.admin_password[::-1])
    assert main(["imports"]) == 3
    err = capsys.readouterr().err
    assert "refused the login of 'admin'" in err and "Not retried" in err and "came from IMPORTCONSOLE_PASSWORD" in err
    assert kit_cli.failed_logins() == 1
    monkeypatch.setenv("IMPORTCONSOLE_PASSWORD", kit_cli.admin_password)
    monkeypatch.setenv("IMPORTCONSOLE_RESTWS_PASSWORD", "wrong-restws-password")
    assert main(["imports", "--json"]) == 3
    err = capsys.readouterr().err
    assert "refused 'restws_console' (401)" in err and kit_cli.failed_logins() == 1


def test_a_death_in_the_first_chunk_says_at_once_that_the_importer_is_not_locked(kit_cli, tmp_path, capsys):
    path = kit_cli.make_csv(tmp_path / "early.csv", 30, "--bad-row", "5", "--bad", "nbsp")
    from importconsole.config import load_config
    from importconsole.journal import Journal
    from importconsole.lms.connect import connect
    from importconsole.lms.ethosce.errors import ImportDied
    from importconsole.operations.ethosce import read_file_rows, upload_and_drive

    async def go():
        async with await connect(load_config().profile()) as site:
            with pytest.raises(ImportDied) as died:
                await upload_and_drive(site, read_file_rows(path), IMPORTER, journal=Journal(tmp_path / "j.jsonl"),
                                       progress=None, action="submit")
            return str(died.value)

    said = asyncio.run(go())
    assert "died on the site" in said and "the importer is not locked" in said and "importconsole diagnose" in said
    assert not locked(kit_cli) and kit_cli.scalar("SELECT COUNT(*) FROM courserecord_transcript_import") == 4
    entries = [json.loads(line) for line in (tmp_path / "j.jsonl").read_text().splitlines()]
    assert [e["outcome"] for e in entries if e.get("event") == "complete"] == ["uploaded", "died"]


def test_validate_on_an_ethosce_profile_checks_the_sites_facts_through_restws(kit_cli, tmp_path, capsys):
    path = kit_cli.make_csv(tmp_path / "sixty.csv", 60)  # row 52: user12 already completed C-100 (seed)
    assert main(["validate", str(path), "--importer", "course"]) == 1
    out = capsys.readouterr()
    text = out.out + out.err
    assert "would-update-existing" in text and "row 52" in text and "Traceback" not in text


def test_background_mode_is_queued_until_cron_not_hung(kit_cli, tmp_path, capsys):
    import threading

    kit_cli.set_background(True)
    path = kit_cli.make_csv(tmp_path / "clean.csv", 30)
    assert main(["submit", str(path), "--yes"]) == 0
    assert "queued until the site's cron runs (background mode). It is not hung" in capsys.readouterr().out
    runs_cron = threading.Timer(2.5, kit_cli.cron)  # the site's cron comes after hung_after (1 s) has passed
    runs_cron.start()
    try:
        assert main(["watch", IMPORTER]) == 0
    finally:
        runs_cron.join()
    out = capsys.readouterr().out
    assert "queued until the site's cron runs (0 %); not hung" in out and "hung" not in out.replace("not hung", "")
    assert "idle, 30 rows stored" in out
    assert kit_cli.scalar("SELECT COUNT(*) FROM courserecord_transcript_import") == 30


def test_an_interrupted_batch_says_the_importer_is_stuck_and_the_journal_keeps_the_batch(kit_cli, tmp_path, capsys):
    from importconsole.config import load_config
    from importconsole.journal import Journal
    from importconsole.lms.connect import connect
    from importconsole.operations.ethosce import BatchInterrupted, read_file_rows, upload_and_drive

    kit_cli.set_row_delay(40)
    path = kit_cli.make_csv(tmp_path / "slow.csv", 50)
    journal = Journal()  # the CLI's journal (the state dir): `imports` below reads it

    async def go():
        async with await connect(load_config().profile()) as site:
            moved = asyncio.Event()
            task = asyncio.create_task(upload_and_drive(site, read_file_rows(path), IMPORTER, journal=journal,
                                                        progress=lambda rows, total: moved.set(), action="submit"))
            await asyncio.wait_for(moved.wait(), 30)
            task.cancel()  # what Ctrl+C does to the run
            with pytest.raises(BatchInterrupted) as stopped:
                await task
            return str(stopped.value)

    said = asyncio.run(go())
    assert "is stuck mid-import at" in said and "importconsole recover course_record_import --file" in said
    entry = [e for e in journal.entries() if e.action == "drive_batch"][-1]
    assert entry.outcome == "interrupted" and entry.extra["batch_id"] and "batch" in said
    assert locked(kit_cli)  # Feeds saved progress, nobody drives the batch: the importer stays locked
    # The console uploaded this file: the importer's progress is said in rows, not only Feeds' bytes.
    stored = kit_cli.scalar("SELECT COUNT(*) FROM courserecord_transcript_import")
    assert main(["imports"]) == 0
    listed = capsys.readouterr().out
    assert "course_record_import: importing " in listed and f", {stored} of 50 rows stored (locked" in listed


async def test_the_console_connects_with_both_passwords_and_the_monitor_shows_the_importer_hung(kit_cli, tmp_path):
    from textual.widgets import Input, OptionList
    from helpers.tui import wait_for_text

    from importconsole.tui.app import ImportConsoleApp

    app = ImportConsoleApp(session=None, workdir=tmp_path, start_mode="connect", theme_dirs=[],
                           config_path=str(tmp_path / "config.toml"))
    import os

    password, restws = os.environ.pop("IMPORTCONSOLE_PASSWORD"), os.environ.pop("IMPORTCONSOLE_RESTWS_PASSWORD")
    async with app.run_test(size=(140, 40)) as pilot:
        await wait_for_text(pilot, "Password of the restws account restws_console")
        assert app.screen.query_one("#profiles", OptionList).highlighted == 0
        app.screen.query_one("#token", Input).value = password
        app.screen.query_one("#restws-password", Input).value = restws
        await pilot.press("ctrl+s")
        await wait_for_text(pilot, "course_record_import: idle", timeout=20)
        await asyncio.to_thread(colleague_hangs_the_importer, kit_cli,
                                kit_cli.make_csv(tmp_path / "colleague.csv", 50, "--bad-row", "23", "--bad", "zwsp"))
        text = await wait_for_text(pilot, "course_record_import: hung 4", timeout=20)
        assert "u shows the recover plan" in text
        assert password not in text and restws not in text
        # One key: u (planned with the file the importer holds, downloaded from the site), Enter.
        await pilot.press("u")
        text = await wait_for_text(pilot, "Re-import rows 23-50", timeout=20)
        assert "U+200B" in text and "the site stored 22 of them" in text
        await pilot.press("enter")
        await wait_for_text(pilot, "re-imported rows 23-50", timeout=30)
    assert not locked(kit_cli)
    clean = [tuple(cell.replace("\u200b", "") for cell in key) for key in file_keys(tmp_path / "colleague.csv")]
    assert Counter(kit_cli.stored_rows()) == Counter(clean) and len(kit_cli.stored_rows()) == 50


def test_the_background_mode_trap_unlock_alone_is_refused_and_recover_takes_the_safe_way_out(kit_cli, tmp_path, capsys):

    from importconsole.config import load_config
    from importconsole.journal import Journal
    from importconsole.lms.connect import connect
    from importconsole.operations.ethosce import plan_importer, recover_importer

    kit_cli.set_background(True)
    path = kit_cli.make_csv(tmp_path / "colleague.csv", 50, "--bad-row", "23", "--bad", "zwsp")
    colleague_schedules(kit_cli, path)  # in a browser: the site's cron imports it
    kit_cli.cron()  # the site's cron runs it and dies at row 23: locked, 22 rows, the dead job claimed
    assert locked(kit_cli) and kit_cli.scalar("SELECT COUNT(*) FROM courserecord_transcript_import") == 22

    assert main(["unlock", IMPORTER, "--file", str(path), "--yes"]) == 1  # Unlock alone: the dead job would re-import
    said = capsys.readouterr().out
    assert "runs in background mode" in said and "the console changes nothing with this command" in said
    assert locked(kit_cli) and kit_cli.scalar("SELECT COUNT(*) FROM courserecord_transcript_import") == 22

    async def time_passes(seconds):  # the only thing done behind the site's back: the 30 s lease ends
        assert seconds >= 30
        end_the_lease(kit_cli)

    async def go():
        async with await connect(load_config().profile()) as site:
            plan = await plan_importer(site, IMPORTER, file=path, journal=Journal())
            return await recover_importer(site, plan, journal=Journal(), sleep=time_passes)

    result = asyncio.run(go())
    text = "\n".join(result.steps)
    assert "a file with only the header" in text and "cron ran once: the dead job is gone" in text
    assert "uploaded rows 23-50" in text and "is idle" in text
    end_the_lease(kit_cli)
    kit_cli.cron()  # later cron runs find nothing to repeat
    assert not locked(kit_cli)
    clean = [tuple(cell.replace("\u200b", "") for cell in key) for key in file_keys(path)]
    assert Counter(kit_cli.stored_rows()) == Counter(clean) and len(kit_cli.stored_rows()) == 50


def test_the_consoles_own_dead_batch_is_hung_at_once_and_recovered_without_file(kit_cli, tmp_path, capsys):
    from importconsole.config import load_config
    from importconsole.journal import Journal
    from importconsole.lms.connect import connect
    from importconsole.lms.ethosce.errors import ImportDied
    from importconsole.operations.ethosce import read_file_rows, upload_and_drive

    config = tmp_path / "config.toml"
    config.write_text(config.read_text().replace("hung_after = 1", "hung_after = 600"))
    # validate refuses this file; the upload below stands for a fault the rules do not know
    path = kit_cli.make_csv(tmp_path / "own.csv", 50, "--bad-row", "23", "--bad", "zwsp")

    async def upload():
        async with await connect(load_config().profile()) as site:
            with pytest.raises(ImportDied):
                await upload_and_drive(site, read_file_rows(path), IMPORTER, journal=Journal(), progress=None,
                                       action="submit")

    asyncio.run(upload())
    started = time.monotonic()
    assert main(["watch", IMPORTER]) == 1
    assert time.monotonic() - started < 10  # not the profile's 600 s: the console saw the batch die
    out = capsys.readouterr().out
    assert "hung 4" in out and "22 of 50 rows stored" in out
    # The console uploaded it: no --file needed, the stored rows are those since its upload.
    assert main(["recover", IMPORTER, "--yes"]) == 0
    assert "rows stored since the console uploaded it" in capsys.readouterr().out
    clean = [tuple(cell.replace("\u200b", "") for cell in key) for key in file_keys(path)]
    assert Counter(kit_cli.stored_rows()) == Counter(clean) and len(kit_cli.stored_rows()) == 50


async def test_the_backend_is_a_port_backend_and_lists_the_sites_courses_for_the_pickers(kit_cli):
    from importconsole.config import load_config
    from importconsole.lms.connect import connect
    from importconsole.lms.port import CapabilityMissing, LmsBackend

    async with await connect(load_config().profile()) as site:
        assert isinstance(site, LmsBackend) and site.capabilities.name == "EthosCE (Drupal Feeds)"
        page = await site.courses()
        with pytest.raises(CapabilityMissing) as lacking:
            await site.get_import(1)
    by_id = {c.external_id: c for c in page.items}
    assert sorted(by_id) == ["C-100", "C-101", "C-102", "C-103"]
    ama = next(c for c in by_id["C-100"].credits if c.credit_type == "ama")
    assert (ama.min, ama.max, ama.increments, ama.enable_variable_credit) == (0.25, 1.5, 0.25, True)
    assert [c.credit_type for c in by_id["C-103"].credits] == ["ama", "moc"]  # participation is inactive
    assert str(lacking.value).startswith("EthosCE (Drupal Feeds) gives imports no id (an import is named by its importer)")


def test_a_background_way_out_that_stopped_at_the_cron_run_is_finished_by_recover_after_the_sites_cron(kit_cli, tmp_path, capsys):

    from importconsole.config import load_config
    from importconsole.journal import Journal
    from importconsole.lms.connect import connect
    from importconsole.operations import ethosce

    kit_cli.set_background(True)
    path = kit_cli.make_csv(tmp_path / "colleague.csv", 50, "--bad-row", "23", "--bad", "zwsp")
    colleague_schedules(kit_cli, path)  # in a browser: the site's cron imports it
    kit_cli.cron()

    async def stops_before_cron(seconds):  # the admin may not run cron: the way out stops there
        raise ethosce.RecoveryRefused("The console cannot run the site's cron.")

    async def first_part():
        async with await connect(load_config().profile()) as site:
            plan = await ethosce.plan_importer(site, IMPORTER, file=path, journal=Journal())
            with pytest.raises(ethosce.RecoveryRefused):
                await ethosce.recover_importer(site, plan, journal=Journal(), sleep=stops_before_cron)

    asyncio.run(first_part())  # unlocked, the header-only file scheduled: queued until cron
    assert locked(kit_cli) and kit_cli.scalar("SELECT COUNT(*) FROM courserecord_transcript_import") == 22
    assert main(["recover", IMPORTER, "--file", str(path), "--yes"]) == 1  # the site's cron has not run yet
    assert "is waiting for the site's cron" in capsys.readouterr().out
    # Time passes: the lease ends and a minute goes by since the header-only upload (its journal time moves
    # back, as the clock would); then the site's cron runs: the dead job imports the header-only file.
    end_the_lease(kit_cli)
    journal_path = tmp_path / "state" / "journal.jsonl"
    lines = [json.loads(line) for line in journal_path.read_text().splitlines()]
    header_only = {r["entry"] for r in lines if r.get("action") == "header_only"}
    for r in lines:
        if r["entry"] in header_only:
            r["time"] = "2000-01-01T00:00:00Z"
    journal_path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    kit_cli.cron()
    assert not locked(kit_cli) and kit_cli.scalar("SELECT COUNT(*) FROM courserecord_transcript_import") == 22
    assert main(["recover", IMPORTER, "--file", str(path), "--yes"]) == 0
    assert "uploaded rows 23-50" in capsys.readouterr().out
    end_the_lease(kit_cli)
    kit_cli.cron()
    clean = [tuple(cell.replace("\u200b", "") for cell in key) for key in file_keys(path)]
    assert Counter(kit_cli.stored_rows()) == Counter(clean) and len(kit_cli.stored_rows()) == 50


def test_login_checks_both_passwords_on_the_site_once_and_stores_them(kit_cli, monkeypatch, capsys):
    import io
    import sys

    import keyring
    from helpers.keyrings import MemoryKeyring

    monkeypatch.delenv("IMPORTCONSOLE_PASSWORD")
    monkeypatch.delenv("IMPORTCONSOLE_RESTWS_PASSWORD")
    ring = MemoryKeyring()
    before = keyring.get_keyring()
    keyring.set_keyring(ring)
    try:
        wrong = "wrong-" + kit_cli.admin_password[::-1]
        monkeypatch.setattr(sys, "stdin", io.StringIO(f"{wrong}\n{kit_cli.restws_password}\n"))
        assert main(["login", "--profile", "kit"]) == 3
        err = capsys.readouterr().err
        assert "refused the login of 'admin'" in err and "The passwords were not stored." in err
        assert ring.store == {} and kit_cli.failed_logins() == 1
        monkeypatch.setattr(sys, "stdin", io.StringIO(f"{kit_cli.admin_password}\n{kit_cli.restws_password}\n"))
        assert main(["login", "--profile", "kit"]) == 0
        assert ring.store == {("importconsole", "kit:admin"): kit_cli.admin_password,
                              ("importconsole", "kit:restws_console"): kit_cli.restws_password}
        assert main(["imports"]) == 0  # from the keyring now
        assert "course_record_import" in capsys.readouterr().out
    finally:
        keyring.set_keyring(before)


def test_credit_fix_from_a_file_on_an_ethosce_profile_reads_the_sites_facts(kit_cli, tmp_path, capsys):
    path = kit_cli.make_csv(tmp_path / "twelve.csv", 12)  # rows 3, 7, 11: pharmacy credit in C-102 (reports to CPE Monitor)
    assert main(["credit-fix", "--file", str(path), "--out", str(tmp_path / "out"), "--date", "file"]) in (0, 1)
    out = capsys.readouterr()
    assert "Traceback" not in out.err and "C-102" in out.out, out.err
    written = list((tmp_path / "out").glob("*.csv"))
    assert written and any("C-102" in p.name for p in written)
    assert main(["credit-fix", "--out", str(tmp_path / "out2")]) == 1  # without a file: the site keeps no credit records
    assert "does not list credit records with their source" in capsys.readouterr().err
