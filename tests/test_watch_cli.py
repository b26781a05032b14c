"""`importconsole watch`: live lines until the import ends or is hung."""

import asyncio
import json

import pytest

from helpers.profiles import cli_env, reference_profile
from helpers.sandbox import dataset, start_sandbox
from helpers.workflows import count, course_file, learners, submit

from importconsole.cli import main


def test_watch_json_follows_an_import_until_it_is_hung_and_names_the_row(monkeypatch, tmp_path, capsys):
    with start_sandbox(dataset(users=learners(30)), rows_per_second=100) as lms:
        cli_env(monkeypatch, tmp_path, lms)
        item = asyncio.run(submit(lms, course_file(30, bad_row=20), course="C-FIXED"))
        assert main(["watch", str(item["id"]), "--json"]) == 1
        lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        views = [l for l in lines if l["event"] == "import"]
        assert views[0]["import_id"] == item["id"] and views[0]["rows_total"] == 30
        last = views[-1]
        assert last["state"] == "hung" and last["server_state"] == "running" and last["holds_lock"]
        assert (last["rows_processed"], last["stopped_at_row"]) == (19, 20)
        assert last["diagnosis"]["characters"][0]["code_point"] == "U+200B"
        assert last["diagnosis"]["row"] == 20
        # Each line says something new: the final state is not printed twice.
        assert all(a != b for a, b in zip(views, views[1:])), views[-2:]
        assert count(lms, "SELECT count(*) FROM imports") == 1


def test_watch_text_until_completed(monkeypatch, tmp_path, capsys):
    with start_sandbox(dataset(users=learners(30)), rows_per_second=10) as lms:
        cli_env(monkeypatch, tmp_path, lms)
        item = asyncio.run(submit(lms, course_file(30), course="C-FIXED"))
        assert main(["watch", str(item["id"])]) == 0
        out = capsys.readouterr().out.splitlines()
        assert out[-1].startswith(f"import {item['id']}, completed, 30/30 rows")
        assert any("rows/s" in line for line in out[:-1]), out  # rate while it ran
        # The LMS frees the lock in the same step that ends the import (docs/api.md); its lock event
        # comes just after the import's. "completed ..., course importer (locked by it)" was printed.
        finished = [line for line in out if ", completed, " in line]
        assert finished and not any("locked by it" in line for line in finished), out
        assert count(lms, "SELECT count(*) FROM locks WHERE import_id IS NOT NULL") == 0
        assert any("locked by it" in line for line in out if ", running, " in line)  # said while true
        assert not any(" 0.0 rows/s" in line for line in out), out  # never from two reads a few ms apart
        assert len(out) <= 10  # throttled: not a line per row


def test_watch_with_nothing_running_says_so(monkeypatch, tmp_path, capsys):
    with start_sandbox(dataset(), rows_per_second=100) as lms:
        cli_env(monkeypatch, tmp_path, lms)
        assert main(["watch"]) == 0
        assert "No import is queued or running" in capsys.readouterr().out


@pytest.mark.slow  # the client's connect retries take ~5 s before it gives up
def test_diagnose_with_no_lms_says_so_without_a_traceback(monkeypatch, tmp_path, capsys):
    config = reference_profile(tmp_path / "config.toml", "http://127.0.0.1:9", default=False)
    monkeypatch.setenv("IMPORTCONSOLE_CONFIG", str(config))
    monkeypatch.setenv("IMPORTCONSOLE_TOKEN", "t0ken-for-test")
    assert main(["diagnose", "1"]) == 3
    captured = capsys.readouterr()
    assert "Could not reach the LMS" in captured.err and "Traceback" not in captured.err + captured.out
    assert "t0ken-for-test" not in captured.err + captured.out


def test_watch_of_an_import_stuck_before_it_started_says_hung_at_once(monkeypatch, tmp_path, capsys):
    """The stall is measured on the server's clock: `watch` does not wait hung_after again."""
    import time

    with start_sandbox(dataset(users=learners(10)), rows_per_second=200) as lms:
        cli_env(monkeypatch, tmp_path, lms, hung_after=2.0)
        item = asyncio.run(submit(lms, course_file(10, bad_row=5), course="C-FIXED"))
        lms.wait_rows(item["id"], 4)
        time.sleep(2.6)
        assert lms.get_import(item["id"])["rows_processed"] == 4
        started = time.monotonic()
        assert main(["watch", str(item["id"]), "--json"]) == 1
        took = time.monotonic() - started
        views = [l for l in map(json.loads, capsys.readouterr().out.splitlines()) if l["event"] == "import"]
    assert took < 2.0, took  # not another hung_after
    assert views[0]["state"] == "hung" and views[0]["stopped_at_row"] == 5 and views[0]["stalled_for"] >= 2.5
    assert views[-1]["diagnosis"]["row"] == 5
    assert views[-1]["diagnosis"]["characters"][0]["code_point"] == "U+200B"


def test_watch_stops_with_the_sentence_when_the_token_is_refused_mid_run(monkeypatch, tmp_path, capsys):
    import threading

    from helpers.workflows import start_on_same_port

    with start_sandbox(dataset(users=learners(30)), rows_per_second=3, faults=True) as lms:
        cli_env(monkeypatch, tmp_path, lms, hung_after=30)
        item = asyncio.run(submit(lms, course_file(30), course="C-FIXED"))
        result = {}
        watching = threading.Thread(target=lambda: result.update(code=main(["watch", str(item["id"])])), daemon=True)
        watching.start()
        lms.wait_rows(item["id"], 2)
        lms.kill()
        start_on_same_port(lms)
        lms.client().post("/_faults", json={"kind": "status", "status": 401, "times": 10000,
                                             "path_prefix": "/api/v1/", "method": "GET"})
        watching.join(timeout=15)
        assert not watching.is_alive(), "watch kept running after the LMS refused the token"
    captured = capsys.readouterr()
    assert result["code"] == 3
    assert "did not accept the API token" in captured.err and "Traceback" not in captured.err
    assert lms.admin_token not in captured.err + captured.out


def test_until_settled_waits_for_a_hung_imports_diagnosis_but_not_for_ever():
    """`watch` stops when every import it follows has ended, or is hung and diagnosed; a diagnosis
    that never comes keeps it DIAGNOSIS_WAIT seconds, no longer (operations.watch.UntilSettled)."""
    from importconsole.lms.models import Import, Lock
    from importconsole.operations.watch import DIAGNOSIS_WAIT, ImportWatcher, UntilSettled

    now = [100.0]
    watcher = ImportWatcher(None, hung_after=5.0, clock=lambda: now[0])  # fed directly: no LMS needed
    watcher.apply_lock(Lock("course", True, 1))
    watcher.apply_import(Import(1, "course", "running", rows_total=10, rows_processed=3))
    watcher.apply_import(Import(2, "global", "completed", rows_total=4, rows_processed=4))
    until = UntilSettled(watcher, clock=lambda: now[0])
    assert until.followed == {1} and not until.idle and not until.settled()
    now[0] += 6
    watcher.tick()
    assert watcher.views[1].hung and not until.settled()  # hung: its diagnosis may still come
    now[0] += DIAGNOSIS_WAIT + 1
    assert until.settled() and until.still_going() == {1}
    # Following every import: one that starts meanwhile is followed, and keeps the follower.
    watcher.apply_import(Import(3, "global", "running", rows_total=5, rows_processed=1))
    assert until.concerns(watcher.views[3]) and not until.settled()
    watcher.apply_import(Import(3, "global", "completed", rows_total=5, rows_processed=5))
    assert until.settled()
    # Following one import: it alone decides when to stop.
    one = UntilSettled(watcher, 2, clock=lambda: now[0])
    assert [v.import_id for v in one.targets()] == [2] and one.settled()
