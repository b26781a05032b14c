"""One port, two backends: the operations speak to `lms.port.LmsBackend`; where an LMS lacks a
capability (EthosCE: no idempotency key, no server-side remainder, no copy of the file...), the
operation says so in a sentence instead of crashing. Run against the real reference LMS, with a
backend that declares Feeds' capabilities."""

import ast
import asyncio
import dataclasses
from pathlib import Path

import pytest

from helpers.profiles import cli_env
from helpers.sandbox import dataset, start_sandbox
from helpers.wait import until
from helpers.workflows import course_file, learners, submit

from importconsole.cli import main
from importconsole.journal import Journal
from importconsole.lms.client import LmsClient
from importconsole.lms.port import REFERENCE_CAPABILITIES, CapabilityMissing, LmsBackend
from importconsole.operations.hung import diagnose_import
from importconsole.operations.recover import plan_recovery
from importconsole.operations.submit import prepare_submit, reconcile_pending
from importconsole.operations.watch import ImportWatcher

OPERATIONS = Path(__file__).resolve().parents[1] / "src" / "importconsole" / "operations"

FEEDS_LIKE = dataclasses.replace(
    REFERENCE_CAPABILITIES, name="EthosCE (Drupal Feeds)", idempotency_key=False, per_row_results=False,
    remaining_rows=False, submitted_file=False, event_stream=False, several_jobs_per_importer=False,
    who_started=False, import_history=False, import_ids=False, credit_records=False, unlock_names_import=False)


class FeedsLikeClient(LmsClient):
    """The reference API, declaring only what a Feeds site offers."""

    capabilities = FEEDS_LIKE


def feeds_like(lms) -> FeedsLikeClient:
    from importconsole.lms.client import RetryPolicy

    return FeedsLikeClient(lms.base_url, lms.admin_token, retry=RetryPolicy(attempts=3, base=0.05, cap=0.2))


def test_the_reference_client_is_a_backend_of_the_port():
    assert isinstance(LmsClient("https://lms.example.org", "t0ken-unused"), LmsBackend)
    assert LmsClient("https://lms.example.org", "t0ken-unused").capabilities.missing() == []
    assert "idempotency_key" in FEEDS_LIKE.missing() and "event_stream" in FEEDS_LIKE.missing()


def test_every_client_parameter_in_operations_is_typed_with_the_port():
    untyped = []
    for path in OPERATIONS.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for arg in node.args.args + node.args.kwonlyargs:
                    if arg.arg == "client":
                        shown = ast.unparse(arg.annotation) if arg.annotation else "nothing"
                        if shown != "LmsBackend":
                            untyped.append(f"{path.name}:{node.lineno} {node.name}(client: {shown})")
    assert untyped == []


def test_a_missing_capability_is_one_sentence():
    error = CapabilityMissing(FEEDS_LIKE, "submitted_file", "read the file of import 4", "give it with --file")
    assert str(error) == ("EthosCE (Drupal Feeds) does not hand back the file it was given, so the console cannot "
                          "read the file of import 4. Give it with --file.")


async def test_diagnose_and_recover_say_what_the_lms_cannot_give_back(tmp_path):
    with start_sandbox(dataset(users=learners(40)), rows_per_second=1000) as lms:
        item = await submit(lms, course_file(40, bad_row=20), course="C-FIXED")
        await asyncio.to_thread(lms.wait_rows, item["id"], 19)
        async with feeds_like(lms) as client:
            with pytest.raises(CapabilityMissing) as diagnosed:
                await diagnose_import(client, item["id"], journal=Journal(tmp_path / "j.jsonl"))
            assert "does not hand back the file it was given" in str(diagnosed.value)
            assert "--file" in str(diagnosed.value)
            with pytest.raises(CapabilityMissing) as planned:
                await plan_recovery(client, item["id"], journal=Journal(tmp_path / "j.jsonl"))
            assert "cannot hand back the rows an import did not reach" in str(planned.value)
        # Nothing was changed: the import still holds the lock.
        assert lms.client().get("/locks/course").json()["import_id"] == item["id"]


async def test_the_cli_says_the_missing_capability_and_exits_1(monkeypatch, tmp_path, capsys):
    with start_sandbox(dataset(users=learners(40)), rows_per_second=1000) as lms:
        item = await submit(lms, course_file(40, bad_row=20), course="C-FIXED")
        await asyncio.to_thread(lms.wait_rows, item["id"], 19)
        cli_env(monkeypatch, tmp_path, lms)
        from importconsole.lms import connect

        monkeypatch.setattr(connect, "open_backend", lambda profile, credentials, retry=None: feeds_like(lms))
        code = await asyncio.to_thread(main, ["diagnose", str(item["id"])])
        captured = capsys.readouterr()
        assert code == 1
        assert "does not hand back the file it was given" in captured.err and "Traceback" not in captured.err


async def test_submit_on_an_lms_without_history_or_keys_says_what_it_could_not_check(tmp_path):
    with start_sandbox(dataset(users=learners(5)), rows_per_second=1000) as lms:
        path = tmp_path / "five.csv"
        path.write_bytes(course_file(5))
        journal = Journal(tmp_path / "journal.jsonl")
        async with feeds_like(lms) as client:
            plan = await prepare_submit(client, path, importer="course", course_external_id="C-FIXED")
            assert plan.notes == ["EthosCE (Drupal Feeds) keeps no list of earlier imports, so the console cannot tell "
                                  "whether this exact file was imported before. `importconsole journal` lists what this "
                                  "console submitted."]
            assert all("earlier" not in w for w in plan.warnings)  # a note, not a warning to confirm
            # An upload left "sending" cannot be looked up by key there: said, and settled as unchecked.
            entry = journal.begin("submit", base_url=client.base_url, file_path=path, sha256=plan.sha256,
                                  idempotency_key="ic-never-sent")
            settled = await reconcile_pending(journal, client)
        assert [s.outcome for s in settled] == ["unchecked"]
        assert "keeps no idempotency key for an upload" in settled[0].sentence
        assert "five.csv" in settled[0].sentence
        assert not journal.pending() and [e.outcome for e in journal.entries() if e.entry_id == entry][-1] == "unchecked"


async def test_a_watcher_on_an_lms_without_an_event_stream_polls_from_the_start():
    with start_sandbox(dataset(users=learners(30)), rows_per_second=30) as lms:
        item = await submit(lms, course_file(30), course="C-FIXED")
        async with feeds_like(lms) as client:
            watcher = ImportWatcher(client, hung_after=5, poll_interval=0.05)
            await watcher.follow(item["id"])  # known even if it ends before the first poll
            runner = asyncio.create_task(watcher.run())
            try:
                await until(lambda: (view := watcher.views.get(item["id"])) is not None and view.finished, 10, 0.05,
                            f"import {item['id']} to finish")
            finally:
                watcher.stop()
                await runner
        assert watcher.views[item["id"]].state == "completed"
        assert watcher.stream_connects == 0 and watcher.polls > 1


def test_wrong_token_is_exit_3_with_the_same_sentence_from_every_command(monkeypatch, tmp_path, capsys):
    with start_sandbox(dataset(users=learners(2)), rows_per_second=1000) as lms:
        cli_env(monkeypatch, tmp_path, lms)
        monkeypatch.setenv("IMPORTCONSOLE_TOKEN", "wrong-token-for-test")
        path = tmp_path / "two.csv"
        path.write_bytes(course_file(2))
        seen = []
        for argv in (["imports"], ["watch"], ["diagnose", "1"], ["submit", str(path), "--course", "C-FIXED"],
                     ["recover", "1", "--yes"]):
            assert main(argv) == 3, argv
            err = capsys.readouterr().err
            assert "did not accept the API token (401)" in err and "Traceback" not in err, (argv, err)
            assert "came from IMPORTCONSOLE_TOKEN" in err, (argv, err)
            seen.append(argv[0])
        assert len(seen) == 5


def test_a_bad_ca_bundle_or_a_bad_config_gets_one_exit_code_from_every_command(monkeypatch, tmp_path, capsys):
    # Before the one connect place, `watch`/`diagnose`/`recover` said 2 where `imports`/`submit` said 3.
    bundle = tmp_path / "ca.pem"
    bundle.write_text("not a certificate\n")
    config = tmp_path / "config.toml"
    config.write_text(f'[profiles.t]\nbase_url = "https://lms.example.org"\nusername = "admin"\nca_bundle = "{bundle}"\n')
    monkeypatch.setenv("IMPORTCONSOLE_CONFIG", str(config))
    monkeypatch.setenv("IMPORTCONSOLE_TOKEN", "t0ken-for-test")
    commands = (["imports"], ["watch"], ["diagnose", "1"], ["recover", "1", "--yes"], ["journal", "--reconcile"])
    for argv in commands:
        assert main(argv) == 3, argv
        err = capsys.readouterr().err
        assert "could not be read as PEM certificates" in err and "Traceback" not in err, argv
    config.write_text('[profiles.t]\nbase_url = "https://lms.example.org"\nusername = "admin"\npoll_interval = "often"\n')
    for argv in commands:
        assert main(argv) == 1, argv
        assert "profiles.t.poll_interval" in capsys.readouterr().err, argv
