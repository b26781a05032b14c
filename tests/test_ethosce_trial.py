"""Defects found using the EthosCE path as a first-time admin would, on the real kit (tests/helpers/feeds_kit.py):
each test reproduces what the admin saw and asserts what is true on the site."""

from __future__ import annotations

from importconsole.cli import main
from helpers.wait import wait_for
from helpers.feeds_kit import (
    IMPORTER, colleague_abandons, colleague_hangs_the_importer, colleague_imports, colleague_schedules, file_keys, locked,
)


def test_recover_shows_its_plan_one_line_at_a_time_before_asking(kit_cli, tmp_path, capsys):
    path = kit_cli.make_csv(tmp_path / "bad.csv", 50, "--bad-row", "23", "--bad", "zwsp")
    assert colleague_hangs_the_importer(kit_cli, path) == 500
    assert main(["recover", IMPORTER, "--file", str(path)]) == 1  # no terminal: not confirmed
    out = capsys.readouterr().out
    assert "<U+000A>" not in out
    lines = out.splitlines()
    assert lines[0] == f"Importer {IMPORTER}: Importing (42 %) (42 % of the file's bytes)"
    assert "2. Re-import rows 23-50 (28 rows), sanitized" in lines
    assert locked(kit_cli) and kit_cli.scalar("SELECT COUNT(*) FROM courserecord_transcript_import") == 22


def test_a_refused_restws_password_names_the_restws_variable_not_the_admin_one(kit_cli, monkeypatch, capsys):
    monkeypatch.setenv("IMPORTCONSOLE_RESTWS_PASSWORD", "wrong-restws")
    assert main(["imports"]) == 3
    err = capsys.readouterr().err
    assert "refused 'restws_console' (401)" in err
    assert "The secret came from IMPORTCONSOLE_RESTWS_PASSWORD, which wins over the keyring" in err
    assert "read -rs IMPORTCONSOLE_RESTWS_PASSWORD && export IMPORTCONSOLE_RESTWS_PASSWORD" in err
    assert "IMPORTCONSOLE_PASSWORD " not in err and "IMPORTCONSOLE_PASSWORD)" not in err.split("(importconsole login")[0]
    assert "wrong-restws" not in err


def test_a_refused_admin_password_names_only_the_admin_variable_and_posts_one_login(kit_cli, monkeypatch, capsys):
    kit_cli.query("DELETE FROM flood")
    monkeypatch.setenv("IMPORTCONSOLE_PASSWORD", "wrong-admin")
    assert main(["imports"]) == 3
    err = capsys.readouterr().err
    assert "The secret came from IMPORTCONSOLE_PASSWORD, which wins over the keyring" in err
    assert "IMPORTCONSOLE_RESTWS_PASSWORD, which" not in err and "and IMPORTCONSOLE_RESTWS_PASSWORD" not in err
    assert kit_cli.failed_logins() == 1


def test_a_typoed_importer_id_in_the_profile_is_named_and_imports_lists_the_sites_importers(kit_cli, monkeypatch, tmp_path, capsys):
    import os
    from pathlib import Path

    config = Path(os.environ["IMPORTCONSOLE_CONFIG"])
    typo = tmp_path / "typo.toml"
    typo.write_text(config.read_text() + 'course_importer = "course_record_imprt"\n')
    monkeypatch.setenv("IMPORTCONSOLE_CONFIG", str(typo))
    assert main(["imports"]) == 1  # the sentence pointed here: `imports` must not fail the same way
    err = capsys.readouterr().err
    assert "no Feeds importer 'course_record_imprt' (course_importer in [profiles.kit])" in err
    assert "The site's importers: course_record_import (Course record import)." in err


def test_watch_started_during_a_colleagues_first_chunk_follows_it_to_the_end(kit_cli, tmp_path, capsys):
    import threading

    kit_cli.set_row_delay(150)  # the first chunk (10 rows) takes 1.5 s with no progress saved: the page says idle
    path = kit_cli.make_csv(tmp_path / "clean.csv", 30)
    colleague = threading.Thread(target=colleague_imports, args=(kit_cli, path))
    colleague.start()
    try:
        wait_for(lambda: kit_cli.scalar("SELECT COUNT(*) FROM courserecord_transcript_import") > 0, 60, 0.05,
                 "the colleague's first rows to be stored")
        assert main(["watch", IMPORTER]) == 0
        stored_when_watch_ended = kit_cli.scalar("SELECT COUNT(*) FROM courserecord_transcript_import")
    finally:
        colleague.join()
    out = capsys.readouterr().out
    assert "rows being stored" in out.splitlines()[0]
    assert stored_when_watch_ended == 30, out


def test_a_reimport_cut_off_in_its_first_chunk_names_a_file_that_exists_and_does_not_claim_a_lock(kit_cli, tmp_path, capsys):
    import threading

    path = kit_cli.make_csv(tmp_path / "bad.csv", 50, "--bad-row", "23", "--bad", "zwsp")
    assert colleague_hangs_the_importer(kit_cli, path) == 500
    kit_cli.set_row_delay(400)  # the re-import's first chunk takes 4 s: the site goes away inside it
    codes = []
    recover = threading.Thread(target=lambda: codes.append(main(["recover", IMPORTER, "--file", str(path), "--yes"])))
    recover.start()
    try:
        wait_for(lambda: kit_cli.scalar("SELECT COUNT(*) FROM courserecord_transcript_import") > 22, 60, 0.05,
                 "the re-import's first row to be stored")
        kit_cli.stop()
        recover.join(120)
    finally:
        kit_cli.restart()
    kit_cli.set_row_delay(0)
    err = capsys.readouterr().err
    assert codes == [3]
    assert f"importconsole recover {IMPORTER} --file {path}`" in err  # the file given, not a deleted temporary copy
    assert "The importer stays locked" not in err and "Resume it from this session" not in err
    assert "locked only if the site finished its first chunk" in err
    assert not locked(kit_cli)  # true: Feeds had saved no progress for the re-import


def test_a_batch_that_ends_at_100_percent_having_stored_nothing_is_not_called_imported(kit_cli, tmp_path, capsys):
    import time

    path = kit_cli.make_csv(tmp_path / "clean.csv", 10)
    # The Drupal lock a site process killed mid-import leaves behind (seen after stopping the site mid-batch):
    # Feeds then ends every batch at once with "Cannot acquire lock", storing nothing.
    kit_cli.query("INSERT INTO semaphore (name, value, expire) VALUES (?, 'killed', ?)",
                  f"feeds_source_{IMPORTER}_0", time.time() + 60)
    try:
        assert main(["reimport", IMPORTER, "--file", str(path), "--yes"]) == 1
    finally:
        kit_cli.query("DELETE FROM semaphore")
    out = capsys.readouterr()
    assert "re-imported rows" not in out.out and "Done." not in out.out
    assert "ended, but the site stored only 0 of its 10 rows (it said: Cannot acquire lock" in out.err
    assert f"importconsole diagnose {IMPORTER} --file {path}`" in out.err
    assert kit_cli.scalar("SELECT COUNT(*) FROM courserecord_transcript_import") == 0


def test_a_file_given_for_recovery_that_is_missing_or_a_folder_is_a_sentence_not_a_crash(kit_cli, tmp_path, capsys):
    missing = tmp_path / "nosuch.csv"
    assert main(["diagnose", IMPORTER, "--file", str(missing)]) == 2
    assert main(["recover", IMPORTER, "--file", str(tmp_path), "--yes"]) == 2
    err = capsys.readouterr().err
    assert f"{missing}: no such file -- check the path" in err
    assert f"{tmp_path}: this is a folder, not a file -- give the path of the CSV file" in err
    assert "unexpected problem" not in err and "Errno" not in err


async def hung_by_a_colleague(kit, tmp_path):
    """A colleague's import dies at row 23 (the importer stays locked); the console opens on Connect."""
    import asyncio

    from importconsole.tui.app import ImportConsoleApp

    path = kit.make_csv(tmp_path / "colleague.csv", 50, "--bad-row", "23", "--bad", "zwsp")
    await asyncio.to_thread(colleague_hangs_the_importer, kit, path)
    return ImportConsoleApp(session=None, workdir=tmp_path, start_mode="connect", theme_dirs=[],
                            config_path=str(tmp_path / "config.toml"))


async def plan_the_recovery(pilot) -> None:
    """Connect with the profile, then u on the hung importer: the plan is made with the file the importer holds."""
    from helpers.tui import wait_for_text

    await pilot.press("ctrl+s")
    await wait_for_text(pilot, "course_record_import: importing", timeout=20)
    await pilot.press("u")
    await wait_for_text(pilot, "Re-import rows 23-50", timeout=20)


async def test_the_tui_recover_plan_says_which_typed_path_is_missing(kit_cli, tmp_path):
    from textual.widgets import Input
    from helpers.tui import wait_for_text

    app = await hung_by_a_colleague(kit_cli, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await plan_the_recovery(pilot)
        await pilot.press("tab")  # another path instead
        app.screen.query_one("#recover-file", Input).value = "nosuch.csv"
        await pilot.press("enter")
        text = await wait_for_text(pilot, "no such file", timeout=20)
        assert "Errno" not in text and "nosuch.csv: no such file" in text
    assert locked(kit_cli)


def test_an_abandoned_import_is_diagnosed_as_abandoned_without_also_saying_cause_unknown(kit_cli, tmp_path, capsys):
    kit_cli.set_row_delay(120)  # a batch step (about 1 s) then covers one chunk of 10 rows
    path = kit_cli.make_csv(tmp_path / "clean.csv", 50)
    colleague_abandons(kit_cli, path, 2)
    assert locked(kit_cli)
    stored = kit_cli.scalar("SELECT COUNT(*) FROM courserecord_transcript_import")
    assert main(["diagnose", IMPORTER, "--file", str(path)]) == 0
    out = capsys.readouterr().out
    assert "cause unknown" not in out, out
    assert f"the batch was abandoned (its browser tab closed or the connection was lost) and the importer stays locked; {stored} rows are stored." in out


def test_the_recover_plan_in_background_mode_lists_the_header_only_file_and_the_cron_runs_before_asking(kit_cli, tmp_path, capsys):
    kit_cli.set_background(True)
    try:
        path = kit_cli.make_csv(tmp_path / "colleague.csv", 50, "--bad-row", "23", "--bad", "zwsp")
        colleague_schedules(kit_cli, path)  # in a browser: the site's cron imports it
        kit_cli.cron()  # dies at row 23: locked, 22 rows, the dead job claimed
        assert main(["recover", IMPORTER, "--file", str(path)]) == 1  # no terminal: not confirmed
        out = capsys.readouterr().out
        assert "2. Upload a file with only the header: the dead cron job can then import nothing" in out
        assert "3. Wait 32 s for the dead cron job's lease to end, then run the site's cron once" in out
        assert "4. Upload rows 23-50 (28 rows), sanitized, and run the site's cron once more to import them" in out
        assert "2. Re-import rows" not in out
        assert locked(kit_cli) and kit_cli.scalar("SELECT COUNT(*) FROM courserecord_transcript_import") == 22
    finally:
        kit_cli.set_background(False)


async def test_after_a_refused_unlock_the_tui_offers_a_fresh_plan_not_the_stale_enter(kit_cli, tmp_path):
    import asyncio

    from helpers.tui import wait_for_text

    app = await hung_by_a_colleague(kit_cli, tmp_path)
    async with app.run_test(size=(120, 50)) as pilot:
        await plan_the_recovery(pilot)
        kit_cli.php(f'feeds_source("{IMPORTER}")->unlock();')  # a colleague unlocks and imports another file meanwhile
        await asyncio.to_thread(colleague_imports, kit_cli, kit_cli.make_csv(tmp_path / "other.csv", 5))
        stored = kit_cli.scalar("SELECT COUNT(*) FROM courserecord_transcript_import")
        await pilot.press("enter")
        # Not called hung by the monitor yet: watched for hung_after first, and the move is seen there.
        text = await wait_for_text(pilot, "so it was not unlocked", timeout=20)
        assert "Enter: make a fresh plan" in text and "Enter: unlock and re-import" not in text
    assert kit_cli.scalar("SELECT COUNT(*) FROM courserecord_transcript_import") == stored


def test_without_file_the_file_the_importer_holds_is_downloaded_and_recovers_the_colleagues_import(kit_cli, tmp_path, capsys):
    import os
    import stat
    from collections import Counter
    from pathlib import Path

    path = kit_cli.make_csv(tmp_path / "colleague.csv", 50, "--bad-row", "23", "--bad", "zwsp")
    assert colleague_hangs_the_importer(kit_cli, path) == 500
    assert main(["diagnose", IMPORTER]) == 0  # the site links the file it was given on the import page
    out = capsys.readouterr().out
    copy = Path(os.environ["IMPORTCONSOLE_STATE_DIR"]) / "ethosce-files" / IMPORTER / "colleague.csv"
    assert f"(the file the importer holds, downloaded from the site to {copy})" in out
    assert "the site stored 22 of them" in out and "U+200B (ZERO WIDTH SPACE) in row 23" in out
    assert copy.read_bytes() == path.read_bytes() and stat.S_IMODE(copy.stat().st_mode) == 0o600
    assert main(["recover", IMPORTER, "--yes"]) == 0
    clean = [tuple(cell.replace("\u200b", "") for cell in key) for key in file_keys(path)]
    assert Counter(kit_cli.stored_rows()) == Counter(clean) and not locked(kit_cli)


def test_the_journal_names_the_site_admin_on_every_step_of_a_submit(kit_cli, tmp_path, capsys):
    path = kit_cli.make_csv(tmp_path / "clean.csv", 10)
    assert main(["submit", str(path), "--yes"]) == 0
    assert kit_cli.scalar("SELECT COUNT(*) FROM courserecord_transcript_import") == 10
    capsys.readouterr()
    assert main(["journal"]) == 0
    out = capsys.readouterr().out
    assert "drive_batch clean.csv  (admin as " in out and "(? as" not in out, out
