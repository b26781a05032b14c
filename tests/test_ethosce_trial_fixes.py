"""Defects found by an adversarial trial of the EthosCE path, on the real kit (tests/helpers/feeds_kit.py): each test
reproduces what the admin saw (screen, stdout/stderr, exit code) and asserts what is true on the site."""

from __future__ import annotations

from textual.widgets import Input

from importconsole.cli import main
from importconsole.tui.app import ImportConsoleApp
from test_ethosce_cli import IMPORTER, colleague_hangs_the_importer, kit_cli, locked  # noqa: F401 (fixture)
from test_importfile_rules import lms  # noqa: F401 (fixture)
from helpers.tui import flat_text, screen_text, wait_for, wait_for_text  # noqa: F401

SIZE = (80, 24)  # the admin's SSH terminal


def no_secrets_anywhere(monkeypatch) -> None:
    """An SSH host: no keyring, no password in the environment; the Connect screen asks for both."""
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    monkeypatch.delenv("IMPORTCONSOLE_PASSWORD", raising=False)
    monkeypatch.delenv("IMPORTCONSOLE_RESTWS_PASSWORD", raising=False)


def started(tmp_path):
    """The console as `importconsole` starts it: the profile's passwords are nowhere, so it opens on Connect."""
    from importconsole.tui.connecting import session_from_config

    session, problem = session_from_config(str(tmp_path / "config.toml"), None)
    assert session is None
    return ImportConsoleApp(workdir=tmp_path, theme_dirs=[], config_path=tmp_path / "config.toml", startup_problem=problem)


async def connect_with(pilot, app, admin: str, restws: str) -> None:
    screen = app.screen
    screen.query_one("#token", Input).value = admin
    screen.query_one("#restws-password", Input).value = restws
    await pilot.press("ctrl+s")


def result_text(app) -> str:
    return str(app.screen.query_one("#connect-result").render())


async def test_connect_never_posts_a_refused_admin_password_again(kit_cli, monkeypatch, tmp_path):
    no_secrets_anywhere(monkeypatch)
    kit_cli.query("DELETE FROM flood")
    app = started(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_text(pilot, "Pick a profile")
        await connect_with(pilot, app, "wrong-admin", kit_cli.restws_password)
        await wait_for(pilot, lambda: "refused" in result_text(app), timeout=20, what="the site's refusal")
        assert kit_cli.failed_logins() == 1
        for _ in range(2):
            await connect_with(pilot, app, "wrong-admin", kit_cli.restws_password)
            await wait_for(pilot, lambda: "different admin password" in result_text(app), timeout=10,
                           what="asked for a different password")
            await pilot.pause(0.5)
        assert kit_cli.failed_logins() == 1  # the refused password was never posted again
        await connect_with(pilot, app, kit_cli.admin_password, kit_cli.restws_password)
        await wait_for(pilot, lambda: app.session is not None, timeout=20, what="connected with the right password")
        assert kit_cli.failed_logins() == 1


async def test_connect_on_an_ethosce_profile_speaks_of_both_passwords_and_the_refusal_is_read_at_80x24(kit_cli, monkeypatch, tmp_path):
    no_secrets_anywhere(monkeypatch)
    kit_cli.query("DELETE FROM flood")
    app = started(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_text(pilot, "Pick a profile")
        flat = flat_text(app)
        assert "token" not in flat.lower(), flat
        assert "admin password and the restws password" in flat
        note = " ".join(str(app.screen.query_one("#keyring-note").render()).split())  # below the fold at 80x24
        assert "read -rs IMPORTCONSOLE_PASSWORD && export IMPORTCONSOLE_PASSWORD" in note
        assert "read -rs IMPORTCONSOLE_RESTWS_PASSWORD && export IMPORTCONSOLE_RESTWS_PASSWORD" in note
        assert "TOKEN" not in note
        await pilot.press("enter")  # the profile, with no stored passwords: the screen asks for them
        await wait_for(pilot, lambda: "Enter the passwords" in result_text(app), what="asked for the passwords")
        assert ".." not in flat_text(app).replace("...", "")
        await connect_with(pilot, app, "wrong-admin", kit_cli.restws_password)
        await wait_for(pilot, lambda: "refused" in result_text(app), timeout=20, what="the site's refusal")
        await pilot.pause(0.3)
        text = screen_text(app)
        assert "refused the login of 'admin'" in text, text  # read at 80x24, no scrolling
        assert "No password" not in text, text


def test_login_on_an_ethosce_profile_without_a_keyring_names_both_password_variables(kit_cli, monkeypatch, capsys):
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    assert main(["login", "--profile", "kit"]) == 2  # this host's problem, not the site's
    err = capsys.readouterr().err
    assert "read -rs IMPORTCONSOLE_PASSWORD && export IMPORTCONSOLE_PASSWORD" in err
    assert "read -rs IMPORTCONSOLE_RESTWS_PASSWORD && export IMPORTCONSOLE_RESTWS_PASSWORD" in err
    assert "IMPORTCONSOLE_TOKEN" not in err


def on_monitor(kit, tmp_path):
    """The console as `importconsole` starts it on the kit's profile (both passwords from the environment)."""
    from importconsole.tui.connecting import session_from_config

    session, problem = session_from_config(str(tmp_path / "config.toml"), None)
    assert session is not None and session.kind == "ethosce", problem
    return ImportConsoleApp(session=session, workdir=tmp_path, theme_dirs=[])


async def test_the_monitor_never_calls_a_colleagues_first_chunk_idle(kit_cli, tmp_path):
    import threading

    from test_ethosce_trial import colleague_imports

    kit_cli.set_row_delay(150)  # the first chunk (10 rows) takes 1.5 s with no progress saved: the page says idle
    path = kit_cli.make_csv(tmp_path / "clean.csv", 30)
    app = on_monitor(kit_cli, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("m")
        await wait_for_text(pilot, "course_record_import: idle", timeout=20)
        colleague = threading.Thread(target=colleague_imports, args=(kit_cli, path))
        colleague.start()
        seen = []
        try:
            def first_chunk_over():
                stored = kit_cli.scalar("SELECT COUNT(*) FROM courserecord_transcript_import")
                if 2 <= stored < 10:  # inside the first chunk, one poll after rows began to move
                    seen.append(" ".join(screen_text(app).split()))
                return stored >= 10
            await wait_for(pilot, first_chunk_over, timeout=30, interval=0.05, what="the first chunk")
        finally:
            colleague.join()
        kit_cli.set_row_delay(0)
    assert seen and any("rows being stored" in text for text in seen), seen
    # a poll (0.2 s) after the first row it must no longer say idle
    assert not any("course_record_import: idle" in text for text in seen[len(seen) // 2:]), seen


async def test_the_monitors_hung_line_is_read_whole_at_80_columns(kit_cli, tmp_path):
    path = kit_cli.make_csv(tmp_path / "bad.csv", 50, "--bad-row", "23", "--bad", "zwsp")
    assert colleague_hangs_the_importer(kit_cli, path) == 500
    app = on_monitor(kit_cli, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("m")
        await wait_for(pilot, lambda: "no progress for" in flat_text(app), timeout=20, what="the hung line")
        import re

        assert re.search(r"course_record_import: hung 42 % \(locked: no upload can start\); no progress for \d+s",
                         flat_text(app)), screen_text(app)


def test_watch_keeps_going_while_the_site_is_down_says_so_and_says_when_it_answers_again(kit_cli, tmp_path):
    """The reference watch's rule on EthosCE: an outage is said (why, since when, what to do), never an exit."""
    import signal
    import subprocess
    import sys
    import threading
    import time

    import httpx
    from test_ethosce_trial import restart

    host = httpx.URL(kit_cli.base_url).host  # named as the rest of the EthosCE wording names the site, never "the LMS"
    path = kit_cli.make_csv(tmp_path / "bad.csv", 50, "--bad-row", "23", "--bad", "zwsp")
    assert colleague_hangs_the_importer(kit_cli, path) == 500  # locked at 42 %: watch follows it
    watch = subprocess.Popen([sys.executable, "-m", "importconsole", "watch", IMPORTER, "--hung-after", "3600"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    err: list[str] = []
    reader = threading.Thread(target=lambda: err.extend(watch.stderr), daemon=True)
    reader.start()

    def wait_err(text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in err):
            assert watch.poll() is None, f"watch ended ({watch.returncode}): {''.join(err)}"
            assert time.monotonic() < deadline, f"no {text!r} in {''.join(err)}"
            time.sleep(0.1)

    try:
        time.sleep(1.5)
        kit_cli.stop()
        try:
            wait_err("has not been seen", 60)
            time.sleep(5)  # well past the moment it gave up before
            assert watch.poll() is None, "".join(err)
        finally:
            restart(kit_cli)
        wait_err(f"The site at {host} answers again.", 60)  # its own line (the outage sentence says "answers again" too)
        watch.send_signal(signal.SIGINT)  # Ctrl+C ends it
        out, _ = watch.communicate(timeout=30)
    finally:
        if watch.poll() is None:
            watch.kill()
    reader.join(5)
    said = "".join(err)
    assert watch.returncode == 130, said
    assert f"{IMPORTER}: importing 42 %" in out
    unseen = next(line for line in err if "has not been seen" in line)
    assert "(since " in unseen and "UTC)" in unseen and "Check the network" in unseen
    assert unseen.startswith(f"The site at {host} has not been seen for ") and "LMS" not in unseen, unseen
    assert "Traceback" not in said


def test_a_refused_connection_is_said_as_refused_not_as_a_busy_lms(kit_cli, monkeypatch, tmp_path, capsys):
    import dataclasses

    from importconsole.cli import lms_cmds
    from helpers.feeds_kit import free_port

    dead = tmp_path / "dead.toml"  # the kit's profile, on a port where nothing listens (the site is down)
    dead.write_text(f'default_profile = "kit"\n[profiles.kit]\nkind = "ethosce"\nbase_url = "http://127.0.0.1:{free_port()}"\n'
                    'username = "admin"\nrestws_username = "restws_console"\n')
    monkeypatch.setenv("IMPORTCONSOLE_CONFIG", str(dead))
    policy = lms_cmds.retry_policy
    monkeypatch.setattr(lms_cmds, "retry_policy", lambda: dataclasses.replace(policy(), base=0.01, cap=0.02))
    monkeypatch.setattr(lms_cmds, "ANNOUNCE_WAITS_FROM", 0.0)  # every wait said, short as they are here
    assert main(["imports"]) == 3
    err = capsys.readouterr().err
    assert "The connection to the LMS was refused (the site may be down); trying again in" in err, err
    assert "busy" not in err


def test_an_unknown_course_names_its_first_row_and_the_column_on_an_ethosce_site(kit_cli, tmp_path, capsys):
    path = kit_cli.make_csv(tmp_path / "bad23.csv", 50, "--bad-row", "23", "--bad", "zwsp")
    assert main(["validate", str(path)]) == 1
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if "[error unknown-course]" in ln)
    assert "bad23.csv:-:-" not in line
    assert "bad23.csv:24:3 [error unknown-course] row 23 column external_course_id: course 'C-1<U+200B>02'" in line, line


async def test_an_unknown_course_names_its_first_row_and_the_column_on_the_reference_lms(lms, tmp_path):
    from test_importfile_rules import check, write

    path = write(tmp_path, "u2,C-FIXED,,1,2026-03-01,,,", "u3,C-1\u200b02,,1,2026-03-01,,,", "u4,C-1\u200b02,,1,2026-03-01,,,")
    report = await check(lms, path)
    (finding,) = report.of("unknown-course")
    assert (finding.row, finding.column) == (2, "external_course_id")
    report = await check(lms, path, course="C-NOWHERE")  # named by --course: no row of the file to point at
    (finding,) = report.of("unknown-course")
    assert finding.row is None and finding.column is None


async def test_the_tui_recover_plans_with_the_file_the_importer_holds_and_still_takes_a_typed_path(kit_cli, tmp_path):
    import asyncio
    import os
    from collections import Counter
    from pathlib import Path

    from test_ethosce_cli import file_keys

    path = kit_cli.make_csv(tmp_path / "colleague.csv", 50, "--bad-row", "23", "--bad", "zwsp")
    await asyncio.to_thread(colleague_hangs_the_importer, kit_cli, path)
    other = kit_cli.make_csv(tmp_path / "other.csv", 50)
    copy = Path(os.environ["IMPORTCONSOLE_STATE_DIR"]) / "ethosce-files" / IMPORTER / "colleague.csv"
    app = on_monitor(kit_cli, tmp_path)
    async with app.run_test(size=(120, 50)) as pilot:
        await pilot.press("m")
        await wait_for_text(pilot, "course_record_import: hung", timeout=20)
        await pilot.press("u")
        await wait_for(pilot, lambda: "Re-import rows 23-50" in flat_text(app), timeout=20, what="the plan")
        text = flat_text(app)
        assert "did not upload the import" not in text
        plan = str(app.screen.query_one("#recover-plan").render())
        assert f"(the file the importer holds, downloaded from the site to {copy})" in plan, plan
        await pilot.press("tab")  # the admin gives another file instead: planned with it
        app.screen.query_one("#recover-file", Input).value = str(other)
        await pilot.press("enter")
        await wait_for(pilot, lambda: "other.csv: 50 rows" in str(app.screen.query_one("#recover-plan").render()),
                       timeout=20, what="the plan for other.csv")
        await pilot.press("tab")  # back to the file the importer holds, and recover with it
        app.screen.query_one("#recover-file", Input).value = str(copy)
        await pilot.press("enter")
        await wait_for(pilot, lambda: "colleague.csv: 50 rows" in str(app.screen.query_one("#recover-plan").render()),
                       timeout=20, what="the plan again")
        await pilot.press("enter")
        await wait_for_text(pilot, "Done.", timeout=60)
    clean = [tuple(cell.replace("\u200b", "") for cell in key) for key in file_keys(path)]
    assert Counter(kit_cli.stored_rows()) == Counter(clean) and not locked(kit_cli)
